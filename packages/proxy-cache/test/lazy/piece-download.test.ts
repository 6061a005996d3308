/**
 * A piece of a parallel fill, read from a real HTTP server into the core's
 * pool buffers as the upstream client reads blobs: what a cancelled piece
 * does with the bytes it holds.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BufferPool } from '../../../registry-core/src/storage/buffer-pool';
import { createPooledAgent } from '../../../registry-core/src/storage/pooled-agent';
import { requestIntoPool } from '../../../registry-core/src/storage/pooled-response';
import { PieceDownload } from '../../src/fill/piece-download';

const MiB = 1024 * 1024;
const PIECE = 16 * MiB;

let server: Server;
let origin: string;
const open: ServerResponse[] = [];

beforeAll(async () => {
  // Sends the first 4 MiB of a piece at once, then holds the rest back: the piece stays in progress.
  server = createServer((_req, res) => {
    open.push(res);
    res.writeHead(206, { 'content-length': PIECE, 'content-range': `bytes 0-${PIECE - 1}/${PIECE}` });
    res.write(Buffer.alloc(4 * MiB, 7));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of open) res.destroy();
  await new Promise((resolve) => server.close(resolve));
});

test('a cancelled piece hands the chunks nobody took back to the pool', async () => {
  const pool = new BufferPool(256 * 1024);
  const agent = createPooledAgent(pool, { timeouts: { connectMs: 2_000, headersMs: 2_000, bodyIdleMs: 10_000 } });
  let received = 0;
  const piece = new PieceDownload({
    start: 0,
    end: PIECE - 1,
    maxRetries: 0,
    isRetryable: () => false,
    onBytes: (bytes) => (received += bytes),
    open: async (_start, _end, signal) => {
      const res = await requestIntoPool(agent, { origin, path: '/blob', method: 'GET' }, pool, signal);
      return { stream: res.body, ranged: true, size: PIECE };
    },
  });
  for (let waited = 0; received < 4 * MiB && waited < 10_000; waited += 10) await sleep(10);
  expect(received).toBe(4 * MiB);
  // A reader takes the first chunks and hands them back, as the fill does once it has sent them.
  const reader = piece.take();
  for (let i = 0; i < 3; i++) {
    const next = await reader.next();
    pool.release(next.value as Buffer);
  }
  const held = pool.allocated - pool.kept;
  expect(held).toBeGreaterThan(4);

  piece.cancel(new Error('fill body closed'));
  await expect(piece.honoured).resolves.toBe(true);
  for (let waited = 0; pool.kept < pool.allocated && waited < 5_000; waited += 10) await sleep(10);
  expect(pool.kept).toBe(pool.allocated);
  await agent.close();
});
