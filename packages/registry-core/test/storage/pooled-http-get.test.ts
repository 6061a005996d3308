/**
 * The pooled GET against a real TCP server that answers byte for byte as each
 * test scripts it: the faults an S3 server does not produce on demand (heads
 * split across reads, bodies cut short or too long, stalls).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BufferPool } from '../../src/storage/buffer-pool';
import { pooledGet, UnsupportedFramingError, type PooledGetTimeouts } from '../../src/storage/pooled-http-get';

const TIMEOUTS: PooledGetTimeouts = { connectMs: 2_000, headersMs: 2_000, bodyIdleMs: 2_000, closeGraceMs: 2_000 };

let server: Server;
let url: URL;
let respond: (socket: Socket, request: string) => void;
const requests: string[] = [];
const closed: Promise<void>[] = [];

beforeEach(async () => {
  requests.length = 0;
  closed.length = 0;
  server = createServer((socket) => {
    closed.push(new Promise((resolve) => socket.once('close', () => resolve())));
    let text = '';
    socket.on('error', () => undefined);
    socket.on('data', (data) => {
      text += data.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      requests.push(text);
      respond(socket, text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/bucket/key?X-Amz-Signature=abc`);
});

afterEach(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function head(status: string, headers: Record<string, string | number>): string {
  return `HTTP/1.1 ${status}\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
}

async function drain(body: AsyncIterable<Buffer>, pool?: BufferPool): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    chunks.push(Buffer.from(chunk));
    pool?.release(chunk);
  }
  return Buffer.concat(chunks);
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

test('sends one GET of the path and query with the given headers, then closes', async () => {
  respond = (socket) => socket.end(head('206 Partial Content', { 'Content-Length': 4, 'Content-Type': 'application/octet-stream' }) + 'abcd');
  const response = await pooledGet(url, { range: 'bytes=1-4' }, new BufferPool(1024), TIMEOUTS);
  expect(response.statusCode).toBe(206);
  expect(response.headers['content-type']).toBe('application/octet-stream');
  expect((await drain(response.body)).toString()).toBe('abcd');
  expect(requests).toHaveLength(1);
  expect(requests[0]).toMatch(/^GET \/bucket\/key\?X-Amz-Signature=abc HTTP\/1\.1\r\n/);
  expect(requests[0]).toContain(`\r\nHost: ${url.host}\r\n`);
  expect(requests[0]).toContain('\r\nConnection: close\r\n');
  expect(requests[0]).toContain('\r\nrange: bytes=1-4\r\n');
});

test('a large body arrives intact in pool buffers that, handed back, are read into again', async () => {
  const content = randomBytes(24 * 1024 * 1024);
  respond = (socket) => {
    socket.write(head('200 OK', { 'Content-Length': content.length }));
    socket.end(content);
  };
  const pool = new BufferPool(256 * 1024);
  const response = await pooledGet(url, {}, pool, TIMEOUTS);
  const received = await drain(response.body, pool);
  expect(received.length).toBe(content.length);
  expect(sha(received)).toBe(sha(content));
  // 96 reads' worth of bytes went through a handful of buffers.
  expect(pool.allocated).toBeLessThanOrEqual(4);
});

test('a head split across many reads, and a body starting in the read that ends it, are parsed', async () => {
  const text = head('200 OK', { 'Content-Length': 11, ETag: '"x"' }) + 'hello world';
  respond = (socket) => {
    void (async () => {
      for (const byte of text.slice(0, -6)) {
        socket.write(byte);
        await sleep(1);
      }
      socket.end(text.slice(-6));
    })();
  };
  const response = await pooledGet(url, {}, new BufferPool(1024), TIMEOUTS);
  expect(response.headers.etag).toBe('"x"');
  expect((await drain(response.body)).toString()).toBe('hello world');
});

test('a body without Content-Length runs to the close; Content-Length 0 is empty', async () => {
  respond = (socket) => socket.end(head('404 Not Found', {}) + '<Error><Code>NoSuchKey</Code></Error>');
  const missing = await pooledGet(url, {}, new BufferPool(1024), TIMEOUTS);
  expect(missing.statusCode).toBe(404);
  expect((await drain(missing.body)).toString()).toBe('<Error><Code>NoSuchKey</Code></Error>');
  respond = (socket) => socket.end(head('200 OK', { 'Content-Length': 0 }));
  expect((await drain((await pooledGet(url, {}, new BufferPool(1024), TIMEOUTS)).body)).length).toBe(0);
});

test('a body cut short is an error, not a short success', async () => {
  respond = (socket) => socket.end(head('200 OK', { 'Content-Length': 100 }) + 'x'.repeat(60));
  const response = await pooledGet(url, {}, new BufferPool(1024), TIMEOUTS);
  await expect(drain(response.body)).rejects.toThrow(/closed the connection 40 bytes before the end of the body/);
});

test('a connection reset after the whole body, before it is read, leaves the body whole', async () => {
  respond = (socket) => socket.write(head('200 OK', { 'Content-Length': 11 }) + 'whole bytes', () => setTimeout(() => socket.resetAndDestroy(), 50));
  const response = await pooledGet(url, {}, new BufferPool(1024), TIMEOUTS);
  await closed[0];
  await sleep(50);
  expect((await drain(response.body)).toString()).toBe('whole bytes');
});

test('bytes beyond Content-Length are an error', async () => {
  respond = (socket) => socket.end(head('200 OK', { 'Content-Length': 5 }) + 'x'.repeat(60));
  const response = await pooledGet(url, {}, new BufferPool(1024), TIMEOUTS);
  await expect(drain(response.body)).rejects.toThrow(/more bytes than its Content-Length/);
});

test('a chunked success is refused as unsupported framing; a chunked error is readable for its code', async () => {
  respond = (socket) => socket.end(head('200 OK', { 'Transfer-Encoding': 'chunked' }) + '5\r\nhello\r\n0\r\n\r\n');
  await expect(pooledGet(url, {}, new BufferPool(1024), TIMEOUTS)).rejects.toBeInstanceOf(UnsupportedFramingError);
  respond = (socket) => socket.end(head('503 Slow Down', { 'Transfer-Encoding': 'chunked' }) + '1a\r\n<Error><Code>SlowDown</Code>\r\n0\r\n\r\n');
  const response = await pooledGet(url, {}, new BufferPool(1024), TIMEOUTS);
  expect(response.statusCode).toBe(503);
  expect((await drain(response.body)).toString()).toContain('<Code>SlowDown</Code>');
});

test.each([
  ['a status line that is not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n', /unexpected status line/],
  ['an interim 100 status', 'HTTP/1.1 100 Continue\r\n\r\n', /unexpected status line/],
  ['a header line without a colon', 'HTTP/1.1 200 OK\r\nContent-Length 5\r\n\r\nhello', /malformed header line/],
  ['a Content-Length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n', /invalid Content-Length/],
  ['a head over 64 KiB', `HTTP/1.1 200 OK\r\nX-Padding: ${'p'.repeat(70 * 1024)}\r\n\r\n`, /head is over 65536 bytes/],
  ['a close before the head ends', 'HTTP/1.1 200 OK\r\nContent-Len', /closed the connection before answering/],
])('%s is refused', async (_name, answer, message) => {
  respond = (socket) => socket.end(answer);
  await expect(pooledGet(url, {}, new BufferPool(1024), TIMEOUTS)).rejects.toThrow(message);
});

test('a refused connection and a server that never answers fail within their timeouts', async () => {
  const refused = new URL(url);
  await new Promise((resolve) => server.close(resolve));
  await expect(pooledGet(refused, {}, new BufferPool(1024), TIMEOUTS)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  // Reads the request (and the client's close) but never answers.
  server = createServer((socket) => socket.on('error', () => undefined).resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const silent = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/k`);
  await expect(pooledGet(silent, {}, new BufferPool(1024), { ...TIMEOUTS, headersMs: 200 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
});

test('a body that stalls fails after the idle timeout; a consumer that pauses longer does not', async () => {
  respond = (socket) => socket.write(head('200 OK', { 'Content-Length': 10 }) + 'abc');
  const stalled = await pooledGet(url, {}, new BufferPool(1024), { ...TIMEOUTS, bodyIdleMs: 200 });
  await expect(drain(stalled.body)).rejects.toThrow(/did not answer in time/);

  const content = randomBytes(4 * 1024 * 1024);
  respond = (socket) => socket.end(Buffer.concat([Buffer.from(head('200 OK', { 'Content-Length': content.length })), content]));
  const pool = new BufferPool(64 * 1024);
  const slowlyRead = await pooledGet(url, {}, pool, { ...TIMEOUTS, bodyIdleMs: 200 });
  // Far more than the body's buffer is waiting in the socket while nobody reads.
  await sleep(600);
  expect(sha(await drain(slowlyRead.body, pool))).toBe(sha(content));
});

test('destroying the body closes the connection and returns the buffer the socket held', async () => {
  respond = (socket) => socket.write(head('200 OK', { 'Content-Length': 1_000_000 }) + 'first bytes');
  const pool = new BufferPool(1024);
  const response = await pooledGet(url, {}, pool, TIMEOUTS);
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    pool.release(chunk);
    break;
  }
  await closed[0];
  await sleep(10);
  expect(pool.kept).toBe(pool.allocated);
});

test('after a whole body the server closes first, so no local port waits out TIME_WAIT; one that does not is closed after the grace', async () => {
  let clientClosedFirst: boolean | undefined;
  respond = (socket) => {
    let serverEnded = false;
    socket.once('end', () => (clientClosedFirst ??= !serverEnded));
    socket.write(head('200 OK', { 'Content-Length': 5 }) + 'whole');
    setTimeout(() => {
      serverEnded = true;
      socket.end();
    }, 300);
  };
  const pool = new BufferPool(1024);
  const response = await pooledGet(url, {}, pool, TIMEOUTS);
  expect((await drain(response.body, pool)).toString()).toBe('whole');
  await closed[0];
  expect(clientClosedFirst).toBe(false);
  expect(pool.kept).toBe(pool.allocated);

  respond = (socket) => socket.write(head('200 OK', { 'Content-Length': 5 }) + 'whole');
  const lingering = await pooledGet(url, {}, pool, { ...TIMEOUTS, closeGraceMs: 200 });
  expect((await drain(lingering.body, pool)).toString()).toBe('whole');
  await closed[1];
});

test('an IPv6 literal endpoint is reached without its URL brackets', async () => {
  const v6 = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end(head('200 OK', { 'Content-Length': 2 }) + 'v6'));
  });
  await new Promise<void>((resolve) => v6.listen(0, '::1', resolve));
  try {
    const response = await pooledGet(new URL(`http://[::1]:${(v6.address() as AddressInfo).port}/k`), {}, new BufferPool(1024), TIMEOUTS);
    expect((await drain(response.body)).toString()).toBe('v6');
  } finally {
    await new Promise((resolve) => v6.close(resolve));
  }
});
