/**
 * The floor of a pull through any Node process. A cold blob GET is fetched
 * from the upstream with undici and streamed to the client with the client's
 * backpressure, doing with each byte only what `RELAY_WORK` names:
 * - `store` (default): what a pull-through cache must do, hashing it (SHA-256,
 *   checked at the end) and writing it to a file; a later GET of that blob is
 *   served from the file by Node's own file stream, the floor of a warm pull;
 * - `hash`: hashing only, storing nothing (every GET is cold);
 * - `none`: relaying only, like Distribution's proxy, whose client stream
 *   neither hashes nor stores (it stores from a second upstream GET).
 * No database, no storage commit, no readers beside the one client. Run as
 * its own process by the benchmark (scenario 11):
 * `UPSTREAM=http://… PORT=… SCRATCH_DIR=… RELAY_WORK=store node node-relay.js`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';

type RelayWork = 'store' | 'hash' | 'none';

const upstream = process.env.UPSTREAM ?? '';
const scratchDir = process.env.SCRATCH_DIR ?? '/tmp';
const work = (process.env.RELAY_WORK ?? 'store') as RelayWork;
/** Entrepot's read size for stored files, so the warm floor differs from it only in what Entrepot adds. */
const FILE_READ_BYTES = 512 * 1024;
/** `stored`: the blobs stored so far and their sizes (store mode). */
function startRelay(stored: Map<string, number>): void {
  createServer((req, res) => {
    const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '')?.[1];
    if (req.method !== 'GET' || !digest) {
      res.writeHead(req.url === '/v2/' ? 200 : 404).end();
      return;
    }
    const size = stored.get(digest);
    const served = size === undefined ? relay(digest, req.url!, res, stored) : serveStored(digest, size, res);
    void served.catch((err: unknown) => {
      // A client that closes as its last bytes arrive can end the response early: nothing was lost then.
      if (!res.writableEnded) process.stderr.write(`relay ${digest}: ${String(err)}\n`);
      res.destroy();
    });
  }).listen(Number(process.env.PORT), '127.0.0.1');
}

function fileOf(digest: string): string {
  return join(scratchDir, digest.replace(':', '-'));
}

async function serveStored(digest: string, size: number, res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-length': String(size), 'docker-content-digest': digest });
  await pipeline(createReadStream(fileOf(digest), { highWaterMark: FILE_READ_BYTES }), res);
}

async function relay(digest: string, path: string, res: ServerResponse, stored: Map<string, number>): Promise<void> {
  const up = await request(`${upstream}${path}`);
  if (up.statusCode !== 200) {
    res.writeHead(up.statusCode).end();
    await up.body.dump();
    return;
  }
  res.writeHead(200, { 'content-length': String(up.headers['content-length']), 'docker-content-digest': digest });
  const hash = work === 'none' ? undefined : createHash('sha256');
  const file = work === 'store' ? createWriteStream(fileOf(digest)) : undefined;
  let size = 0;
  up.body.on('data', (chunk: Buffer) => {
    size += chunk.length;
    hash?.update(chunk);
    file?.write(chunk);
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
  if (file) await new Promise<void>((resolve) => file.end(resolve));
  if (hash && `sha256:${hash.digest('hex')}` !== digest) {
    process.stderr.write(`relay ${digest}: digest mismatch\n`);
    await rm(fileOf(digest), { force: true });
    return;
  }
  if (file) stored.set(digest, size);
}

startRelay(new Map());
