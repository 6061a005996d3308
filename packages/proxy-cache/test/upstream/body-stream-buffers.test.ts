/**
 * An upstream body read from a real HTTP server into the core's pool buffers,
 * as the upstream client reads blobs: what its buffers become when the fill
 * gives up on it while chunks wait to be read.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { BufferPool } from '../../../registry-core/src/storage/buffer-pool';
import { createPooledAgent } from '../../../registry-core/src/storage/pooled-agent';
import { requestIntoPool } from '../../../registry-core/src/storage/pooled-response';
import { upstreamBodyStream } from '../../src/upstream/body-stream';
import { TestServer } from './helpers';

const MiB = 1024 * 1024;
const BLOB = 16 * MiB;
const TIMEOUTS = { connectMs: 2_000, headersMs: 2_000, bodyIdleMs: 10_000 };

let server: TestServer;
let origin: string;

beforeAll(async () => {
  // Sends the first 4 MiB of the blob at once, then holds the rest back: the body stays in progress.
  server = await TestServer.start((_req, res) => {
    res.writeHead(200, { 'content-length': BLOB });
    res.write(Buffer.alloc(4 * MiB, 7));
  });
  origin = server.origin;
});

afterAll(() => server.stop());

/** A body whose first chunk has been read (and handed back) and whose next chunks wait, unread, in its queues. */
async function bodyWithChunksWaiting(pool: BufferPool, agent: ReturnType<typeof createPooledAgent>): Promise<Readable> {
  const res = await requestIntoPool(agent, { origin, path: '/blob', method: 'GET' }, pool);
  const stream = upstreamBodyStream(res.body, { host: '127.0.0.1', timeouts: { connectMs: 2_000, headersMs: 2_000, idleMs: 10_000 }, expectedLength: BLOB });
  const reader = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  pool.release((await reader.next()).value as Buffer);
  await sleep(200);
  expect(stream.readableLength).toBeGreaterThan(0);
  return stream;
}

async function allBack(pool: BufferPool): Promise<void> {
  for (let waited = 0; pool.kept < pool.allocated && waited < 5_000; waited += 10) await sleep(10);
  expect(`${pool.kept} of ${pool.allocated} back`).toBe(`${pool.allocated} of ${pool.allocated} back`);
}

test('a body the fill gives up on hands back every buffer it holds', async () => {
  const pool = new BufferPool(256 * 1024);
  const agent = createPooledAgent(pool, { timeouts: TIMEOUTS });
  const stream = await bodyWithChunksWaiting(pool, agent);
  stream.destroy();
  await allBack(pool);
  await agent.close();
});
