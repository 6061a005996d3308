import { createHash, randomBytes } from 'node:crypto';
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { BufferPool } from '../../src/storage/buffer-pool';
import { PooledCopyStream } from '../../src/storage/pooled-copy-stream';
import { sendBody } from '../../src/http/send-body';

const CHUNK = 64 * 1024;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function request(port: number, path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => get({ host: '127.0.0.1', port, path }, resolve).on('error', reject));
}

function collect(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
  });
}

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('PooledCopyStream over real HTTP', () => {
  const data = randomBytes(4 * 1024 * 1024 + 123);
  let origin: Server;
  let relay: Server;
  let originPort: number;
  let relayPort: number;
  const pool = new BufferPool(CHUNK);

  beforeAll(async () => {
    // The origin stands for S3: it sends the object in odd-sized writes; `?cut=N` resets the connection after N bytes.
    origin = createServer((req, res) => {
      const cut = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('cut') ?? data.length);
      res.writeHead(200, { 'content-length': String(data.length) });
      let sent = 0;
      const next = (): void => {
        if (sent >= cut) {
          res.socket?.destroy();
          return;
        }
        const end = Math.min(sent + 7_777 + (sent % 50_000), cut);
        const more = res.write(data.subarray(sent, end));
        sent = end;
        if (sent === data.length) res.end();
        else if (more) setImmediate(next);
        else res.once('drain', next);
      };
      next();
    });
    // The relay serves the origin's body the way blob GETs serve S3 objects.
    relay = createServer((req, res) => {
      void (async () => {
        const body = new PooledCopyStream(await request(originPort, req.url ?? '/'), pool);
        res.writeHead(200, { 'content-length': String(data.length) });
        await sendBody(body, res).catch(() => res.destroy());
      })();
    });
    originPort = await listen(origin);
    relayPort = await listen(relay);
  });

  afterAll(async () => {
    await new Promise((r) => relay.close(r));
    await new Promise((r) => origin.close(r));
  });

  test('12 concurrent bodies are byte-exact while a few pooled buffers are reused', async () => {
    const bodies = await Promise.all(Array.from({ length: 12 }, async () => collect(await request(relayPort, '/'))));
    for (const body of bodies) expect(sha256(body)).toBe(sha256(data));
    // 12 × 4 MiB went through 64 KiB buffers: 768 of them without reuse.
    expect(pool.allocated).toBeGreaterThan(0);
    expect(pool.allocated).toBeLessThanOrEqual(12 * 8);
  });

  test('a connection reset mid-body fails the stream instead of ending it short', async () => {
    const source = await request(originPort, '/?cut=1000000');
    const stream = new PooledCopyStream(source, new BufferPool(CHUNK));
    let received = 0;
    const outcome = new Promise<Error | 'ended'>((resolve) => {
      stream.on('data', (c: Buffer) => (received += c.length));
      stream.on('end', () => resolve('ended'));
      stream.on('error', resolve);
    });
    expect(await outcome).toMatchObject({ message: expect.any(String) });
    expect(received).toBeLessThanOrEqual(1_000_000);
  });
});

describe('PooledCopyStream', () => {
  test('a view is never written over while its holder has not recycled it', async () => {
    const data = randomBytes(10 * CHUNK + 5);
    const source = new PassThrough();
    const pool = new BufferPool(CHUNK);
    const stream = new PooledCopyStream(source, pool);
    void (async () => {
      for (let at = 0; at < data.length; at += 10_000) {
        source.write(data.subarray(at, at + 10_000));
        await tick(1);
      }
      source.end();
    })();
    const views: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      views.push(chunk);
      // Every other view is handed back; the buffers of the others must stay as they are.
      if (views.length % 2 === 0) stream.recycle(chunk);
    }
    expect(sha256(Buffer.concat(views))).toBe(sha256(data));
  });

  test('recycled buffers are filled again instead of allocating', async () => {
    const source = new PassThrough();
    const pool = new BufferPool(CHUNK);
    const stream = new PooledCopyStream(source, pool);
    const data = randomBytes(20 * CHUNK);
    source.end(data);
    const received: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      received.push(Buffer.from(chunk));
      stream.recycle(chunk);
    }
    expect(Buffer.concat(received).equals(data)).toBe(true);
    expect(pool.allocated).toBeLessThanOrEqual(3);
  });

  test('bytes of a slow source are passed on without waiting for a full buffer', async () => {
    const source = new PassThrough();
    const stream = new PooledCopyStream(source, new BufferPool(CHUNK));
    const first = new Promise<Buffer>((resolve) => stream.once('data', (c: Buffer) => resolve(Buffer.from(c))));
    source.write(Buffer.from('0123456789'));
    expect((await first).toString()).toBe('0123456789');
    const rest = new Promise<Buffer[]>((resolve) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
      stream.on('end', () => resolve(chunks));
    });
    source.end(Buffer.from('abc'));
    expect(Buffer.concat(await rest).toString()).toBe('abc');
  });

  test('a consumer that stops reading pauses the source after one full buffer', async () => {
    const source = new PassThrough();
    const pool = new BufferPool(CHUNK);
    const stream = new PooledCopyStream(source, pool);
    stream.pause();
    for (let i = 0; i < 10; i++) source.write(randomBytes(CHUNK));
    await tick();
    expect(source.isPaused()).toBe(true);
    expect(pool.allocated).toBeLessThanOrEqual(2);
    stream.destroy();
  });

  test('an error of the source fails the stream; destroying the stream destroys the source', async () => {
    const failing = new PassThrough();
    const failed = new PooledCopyStream(failing, new BufferPool(CHUNK));
    const error = new Promise((resolve) => failed.on('error', resolve));
    failing.write(Buffer.from('partial'));
    failing.destroy(new Error('reset by peer'));
    await expect(error).resolves.toMatchObject({ message: 'reset by peer' });

    const closing = new PassThrough();
    const closed = new PooledCopyStream(closing, new BufferPool(CHUNK));
    const early = new Promise((resolve) => closed.on('error', resolve));
    closing.destroy();
    await expect(early).resolves.toMatchObject({ message: /closed before its end/ });

    const source = new PassThrough();
    const stream = new PooledCopyStream(source, new BufferPool(CHUNK));
    stream.destroy();
    await tick();
    expect(source.destroyed).toBe(true);
  });
});
