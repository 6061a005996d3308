/**
 * The floor of a cold pull through any Node process: what a pull-through
 * cache must do with each byte of a blob it does not hold, and nothing else.
 * A blob GET is fetched from the upstream with undici, hashed (SHA-256),
 * written to a scratch file and streamed to the client, with the client's
 * backpressure; the digest is checked at the end. No database, no storage
 * commit, no readers beside the one client. Run as its own process by the
 * benchmark (scenario 11): `UPSTREAM=http://… PORT=… SCRATCH_DIR=… node node-relay.js`.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { request } from 'undici';

const upstream = process.env.UPSTREAM ?? '';
const scratchDir = process.env.SCRATCH_DIR ?? '/tmp';
let files = 0;

const server = createServer((req, res) => {
  const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '')?.[1];
  if (req.method !== 'GET' || !digest) {
    res.writeHead(req.url === '/v2/' ? 200 : 404).end();
    return;
  }
  void relay(digest, req.url!, res).catch((err: unknown) => {
    process.stderr.write(`relay ${digest}: ${String(err)}\n`);
    res.destroy();
  });
});

async function relay(digest: string, path: string, res: import('node:http').ServerResponse): Promise<void> {
  const up = await request(`${upstream}${path}`);
  if (up.statusCode !== 200) {
    res.writeHead(up.statusCode).end();
    await up.body.dump();
    return;
  }
  res.writeHead(200, { 'content-length': String(up.headers['content-length']), 'docker-content-digest': digest });
  const hash = createHash('sha256');
  const scratch = join(scratchDir, `relay-${process.pid}-${files++}`);
  const file = createWriteStream(scratch);
  up.body.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    file.write(chunk);
    if (!res.write(chunk)) {
      up.body.pause();
      res.once('drain', () => up.body.resume());
    }
  });
  await new Promise<void>((resolve, reject) => {
    up.body.once('end', resolve);
    up.body.once('error', reject);
  });
  res.end();
  await new Promise<void>((resolve) => file.end(resolve));
  if (`sha256:${hash.digest('hex')}` !== digest) process.stderr.write(`relay ${digest}: digest mismatch\n`);
  await rm(scratch, { force: true });
}

server.listen(Number(process.env.PORT), '127.0.0.1');
