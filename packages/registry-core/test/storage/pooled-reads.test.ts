import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BufferPool } from '../../src/storage/buffer-pool';
import { FileRangeStream, type GrowingFile } from '../../src/storage/file-range-stream';
import { sendBody } from '../../src/http/send-body';

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe('BufferPool', () => {
  test('a released buffer is lent again instead of allocating', () => {
    const pool = new BufferPool(16);
    const a = pool.acquire();
    pool.release(a.subarray(0, 5));
    expect(pool.acquire().buffer).toBe(a.buffer);
    expect(pool.allocated).toBe(1);
  });

  test('a buffer released twice is lent only once; foreign buffers are ignored', () => {
    const pool = new BufferPool(16);
    const a = pool.acquire();
    pool.release(a);
    pool.release(a);
    pool.release(Buffer.alloc(16));
    const first = pool.acquire();
    const second = pool.acquire();
    expect(first.buffer).toBe(a.buffer);
    expect(second.buffer).not.toBe(a.buffer);
    expect(pool.allocated).toBe(2);
  });

  test('keeps at most maxFreeBytes of idle buffers', () => {
    const pool = new BufferPool(16, 32);
    const lent = [pool.acquire(), pool.acquire(), pool.acquire()];
    for (const b of lent) pool.release(b);
    const again = [pool.acquire(), pool.acquire(), pool.acquire()];
    expect(pool.allocated).toBe(4);
    expect(new Set(again.map((b) => b.buffer)).size).toBe(3);
  });

  test('shrink lets go of kept buffers; buffers still lent return to the pool afterwards', () => {
    const pool = new BufferPool(16);
    const kept = pool.acquire();
    const lent = pool.acquire();
    pool.release(kept);
    expect(pool.kept).toBe(1);
    pool.shrink();
    expect(pool.kept).toBe(0);
    expect(pool.acquire().buffer).not.toBe(kept.buffer);
    pool.release(lent);
    expect(pool.kept).toBe(1);
    expect(pool.acquire().buffer).toBe(lent.buffer);
  });
});

describe('FileRangeStream', () => {
  let dir: string;
  let file: FileHandle;
  const data = randomBytes(10_000);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'entrepot-range-'));
    await writeFile(join(dir, 'blob'), data);
    file = await open(join(dir, 'blob'), 'r');
  });

  afterEach(async () => {
    await file.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  test.each([
    [undefined, undefined],
    [0, 9_999],
    [1, 1],
    [777, 4_096],
    [9_999, 9_999],
  ])('bytes %s-%s, chunks smaller than the range', async (start, end) => {
    let closed = 0;
    const stream = new FileRangeStream(file, new BufferPool(333), { start, end, onClose: () => closed++ });
    const body = await readAll(stream);
    expect(body.equals(data.subarray(start ?? 0, (end ?? data.length - 1) + 1))).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(1);
  });

  test('a range past the end of the file fails instead of ending short', async () => {
    const stream = new FileRangeStream(file, new BufferPool(4096), { start: 0, end: data.length + 10 });
    await expect(readAll(stream)).rejects.toThrow(/file ended at byte 10000/);
  });

  test('a growing file is read as far as it is readable, then waits, then fails with the writer', async () => {
    const events = new EventEmitter();
    const growing: GrowingFile & { readable: number; failed: Error | null } = {
      readable: 100,
      failed: null,
      waitForBytes: (position) => new Promise((resolve) => (growing.readable > position || growing.failed ? resolve() : events.once('more', resolve))),
    };
    const stream = new FileRangeStream(file, new BufferPool(64), { start: 0, end: data.length - 1, growing });
    const received: Buffer[] = [];
    stream.on('data', (c: Buffer) => received.push(Buffer.from(c)));
    const failed = new Promise((resolve) => stream.on('error', resolve));
    // Each 64-byte read goes through the thread pool, which a busy machine can hold up: wait for the bytes, then a moment more.
    const readTo = async (bytes: number): Promise<void> => {
      for (const deadline = Date.now() + 10_000; Buffer.concat(received).length < bytes && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50));
    };
    await readTo(100);
    expect(Buffer.concat(received).equals(data.subarray(0, 100))).toBe(true);
    growing.readable = 5_000;
    events.emit('more');
    await readTo(5_000);
    expect(Buffer.concat(received).equals(data.subarray(0, 5_000))).toBe(true);
    growing.failed = new Error('upstream went away');
    events.emit('more');
    await expect(failed).resolves.toMatchObject({ message: 'upstream went away' });
  });
});

describe('sendBody with recycled buffers', () => {
  let dir: string;
  let server: Server;
  let port: number;
  const pool = new BufferPool(64 * 1024);
  const data = randomBytes(3 * 1024 * 1024);
  const closes: number[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'entrepot-send-'));
    await writeFile(join(dir, 'blob'), data);
    server = createServer((req, res) => {
      void (async () => {
        const file = await open(join(dir, 'blob'), 'r');
        const start = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('start') ?? 0);
        const body = new FileRangeStream(file, pool, { start, onClose: () => void file.close().then(() => closes.push(start)) });
        res.writeHead(200, { 'content-length': String(data.length - start) });
        await sendBody(body, res).catch(() => res.destroy());
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  function fetchBody(start: number, abortAfter?: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: `/?start=${start}` }, (res) => {
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          received += c.length;
          if (abortAfter !== undefined && received >= abortAfter) res.destroy();
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('close', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      }).on('error', reject);
    });
  }

  test('16 concurrent bodies are byte-exact while a few buffers are reused', async () => {
    const starts = Array.from({ length: 16 }, (_, i) => i * 1000);
    const bodies = await Promise.all(starts.map((s) => fetchBody(s)));
    for (const [i, body] of bodies.entries()) {
      expect(createHash('sha256').update(body).digest('hex')).toBe(createHash('sha256').update(data.subarray(starts[i])).digest('hex'));
    }
    // 16 × 48 chunks went out; without reuse every chunk would be a new buffer.
    expect(pool.allocated).toBeLessThanOrEqual(16 * 4);
  });

  test('a client going away mid-body closes the file and leaves later bodies intact', async () => {
    closes.length = 0;
    const partial = await fetchBody(7, 256 * 1024);
    expect(partial.length).toBeLessThan(data.length);
    await new Promise((r) => setTimeout(r, 200));
    expect(closes).toContain(7);
    const whole = await fetchBody(0);
    expect(whole.equals(data)).toBe(true);
  });
});

describe('sendBody to clients that go away', () => {
  let dir: string;
  let server: Server;
  let port: number;
  const pool = new BufferPool(64 * 1024);
  const failedSends: unknown[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'entrepot-cut-'));
    // Larger than the socket buffers of both ends, so the server has writes queued when the client leaves.
    await writeFile(join(dir, 'blob'), randomBytes(48 * 1024 * 1024));
    server = createServer((_req, res) => {
      void (async () => {
        const file = await open(join(dir, 'blob'), 'r');
        const body = new FileRangeStream(file, pool, { onClose: () => void file.close() });
        res.writeHead(200);
        await sendBody(body, res).catch((err: unknown) => {
          failedSends.push(err);
          res.destroy();
        });
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  /** Reads a little, stops reading until the server is held up by the full socket, then leaves. */
  function readThenLeave(): Promise<void> {
    return new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/' }, (res) => {
        res.once('data', () => {
          res.pause();
          setTimeout(() => res.destroy(), 300);
        });
        res.on('close', resolve);
      }).on('error', reject);
    });
  }

  test('every buffer of a cut transfer goes back to the pool, the chunks not yet sent included', async () => {
    for (let i = 0; i < 5; i++) await readThenLeave();
    const deadline = Date.now() + 5_000;
    while ((failedSends.length < 5 || pool.kept !== pool.allocated) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(failedSends).toHaveLength(5);
    expect(pool.allocated).toBeGreaterThan(0);
    expect(pool.kept).toBe(pool.allocated);
  });
});
