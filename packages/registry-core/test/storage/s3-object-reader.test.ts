/**
 * S3 object reads through undici against a real TCP (or TLS) server that
 * answers byte for byte as each test scripts it: the faults an S3 server does
 * not produce on demand (heads split across reads, bodies cut short, stalls),
 * connection reuse, and TLS trust. The S3 store's reads against SeaweedFS,
 * plain and TLS, are in s3-store.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer as createTlsServer } from 'node:tls';
import { Client } from 'minio';
import { RegistryError } from '../../src/errors/registry-error';
import { BufferPool } from '../../src/storage/buffer-pool';
import { createPooledAgent, type PooledAgentTimeouts } from '../../src/storage/pooled-agent';
import { S3ObjectReader } from '../../src/storage/s3-object-reader';

const TIMEOUTS: PooledAgentTimeouts = { connectMs: 2_000, headersMs: 2_000, bodyIdleMs: 2_000 };
const missing = (): RegistryError => new RegistryError('BLOB_UNKNOWN', 'not stored');

let server: Server;
let port: number;
let respond: (socket: Socket, request: string) => void;
const requests: string[] = [];
const sockets = new Set<Socket>();
let connections = 0;

function listenScripted(make: (onSocket: (socket: Socket) => void) => Server = (onSocket) => createServer(onSocket)): Promise<void> {
  server = make((socket) => {
    connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let text = '';
    socket.on('error', () => undefined);
    socket.on('data', (data) => {
      text += data.toString('latin1');
      // One request at a time per connection: each ends with its blank line (GETs carry no body).
      while (text.includes('\r\n\r\n')) {
        const end = text.indexOf('\r\n\r\n') + 4;
        const request = text.slice(0, end);
        text = text.slice(end);
        requests.push(request);
        respond(socket, request);
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      port = (server.address() as AddressInfo).port;
      resolve();
    }),
  );
}

beforeEach(async () => {
  requests.length = 0;
  connections = 0;
  await listenScripted();
});

afterEach(async () => {
  // The reader keeps connections open for the next read.
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

function head(status: string, headers: Record<string, string | number>): string {
  return `HTTP/1.1 ${status}\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
}

function readerFor(pool: BufferPool, options: { timeouts?: Partial<PooledAgentTimeouts>; useSSL?: boolean; ca?: string; host?: string } = {}): S3ObjectReader {
  // Signing is local (the region is given): the minio client never calls the server here.
  const client = new Client({ endPoint: options.host ?? '127.0.0.1', port, useSSL: options.useSSL ?? false, accessKey: 'AK', secretKey: 'SK', region: 'us-east-1' });
  return new S3ObjectReader(client, 'bucket', createPooledAgent(pool, { timeouts: { ...TIMEOUTS, ...options.timeouts }, ca: options.ca }), pool);
}

async function drain(body: Readable, pool?: BufferPool): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(Buffer.from(chunk));
    pool?.release(chunk);
  }
  return Buffer.concat(chunks);
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

test('a read is a signed GET of the key carrying the range; later reads reuse the connection', async () => {
  respond = (socket) => socket.write(head('206 Partial Content', { 'Content-Length': 4 }) + 'abcd');
  const pool = new BufferPool(1024);
  const reader = readerFor(pool);
  for (let i = 0; i < 3; i++) {
    expect((await drain(await reader.read('dir/key', { start: 1, end: 4 }, missing), pool)).toString()).toBe('abcd');
    // undici hands a connection to the next request a turn of the event loop after a response ends.
    await sleep(10);
  }
  expect(requests).toHaveLength(3);
  expect(requests[0]).toMatch(/^GET \/bucket\/dir\/key\?X-Amz-Algorithm=AWS4-HMAC-SHA256&.*X-Amz-Signature=[0-9a-f]{64} HTTP\/1\.1\r\n/);
  expect(requests[0].toLowerCase()).toContain('\r\nrange: bytes=1-4\r\n');
  expect(requests[0].toLowerCase()).toContain(`\r\nhost: 127.0.0.1:${port}\r\n`);
  expect(connections).toBe(1);
});

test('a large body arrives intact in pool buffers that, handed back, are read into again', async () => {
  const content = randomBytes(24 * 1024 * 1024);
  respond = (socket) => {
    socket.write(head('200 OK', { 'Content-Length': content.length }));
    socket.write(content);
  };
  const pool = new BufferPool(256 * 1024);
  const reader = readerFor(pool);
  for (let i = 0; i < 2; i++) {
    expect(sha(await drain(await reader.read('k', undefined, missing), pool))).toBe(sha(content));
    await sleep(10);
  }
  // 192 reads' worth of bytes went through a handful of buffers.
  expect(pool.allocated).toBeLessThanOrEqual(6);
  expect(connections).toBe(1);
});

test('a consumer that pauses holds five buffers: its chunk, the next one, one waiting in the body, a read waiting to be parsed and the socket\'s next', async () => {
  const content = randomBytes(8 * 1024 * 1024);
  respond = (socket) => socket.write(Buffer.concat([Buffer.from(head('200 OK', { 'Content-Length': content.length })), content]));
  const pool = new BufferPool(64 * 1024);
  const body = await readerFor(pool).read('k', undefined, missing);
  const received: Buffer[] = [];
  // As a response whose socket is full: the chunk is kept (not handed back) and the body paused until the socket drains.
  body.on('data', (chunk: Buffer) => {
    received.push(chunk);
    body.pause();
  });
  await sleep(300);
  expect(received).toHaveLength(1);
  expect(pool.allocated).toBeLessThanOrEqual(5);
  body.removeAllListeners('data');
  const first = Buffer.from(received[0]);
  pool.release(received[0]);
  const rest = await drain(body, pool);
  expect(sha(Buffer.concat([first, rest]))).toBe(sha(content));
});

test('a body trickling in small reads comes as copies of their size, the reads\' buffers going back at once', async () => {
  const pieces = Array.from({ length: 8 }, (_, i) => Buffer.alloc(100, 65 + i));
  respond = (socket) => {
    socket.write(head('200 OK', { 'Content-Length': 800 }));
    void (async () => {
      for (const piece of pieces) {
        await sleep(5);
        socket.write(piece);
      }
    })();
  };
  const pool = new BufferPool(1024);
  const body = await readerFor(pool).read('k', undefined, missing);
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  expect(Buffer.concat(chunks).equals(Buffer.concat(pieces))).toBe(true);
  // Each is memory of its own size, not a whole pool buffer held for 100 bytes.
  expect(chunks.every((chunk) => chunk.buffer.byteLength === chunk.length)).toBe(true);
  // The socket read every piece into a pool buffer and each came back: fewer buffers than reads served them all.
  expect(pool.allocated).toBeLessThan(pieces.length);
  expect(pool.kept).toBeGreaterThan(0);
});

test('a head split across many reads, and a body starting in the read that ends it, are parsed', async () => {
  const text = head('200 OK', { 'Content-Length': 11, ETag: '"x"' }) + 'hello world';
  respond = (socket) => {
    void (async () => {
      for (const byte of text.slice(0, -6)) {
        socket.write(byte);
        await sleep(1);
      }
      socket.write(text.slice(-6));
    })();
  };
  expect((await drain(await readerFor(new BufferPool(1024)).read('k', undefined, missing))).toString()).toBe('hello world');
});

test('a chunked body is decoded; its pieces are copied out, each into memory of its own', async () => {
  respond = (socket) => socket.write(head('200 OK', { 'Transfer-Encoding': 'chunked' }) + '8\r\nchunked \r\n4\r\nbody\r\n0\r\n\r\n');
  const pool = new BufferPool(1024);
  const body = await readerFor(pool).read('k', undefined, missing);
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  expect(Buffer.concat(chunks).toString()).toBe('chunked body');
  // None is a view of the socket's read (a pool buffer of 1024 bytes) nor shares memory with another:
  // a few bytes gathered in a turn go on as a copy of their size.
  expect(chunks.every((chunk) => chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length)).toBe(true);
  expect(new Set(chunks.map((chunk) => chunk.buffer)).size).toBe(chunks.length);
});

test('a body cut short is an error, not a short success', async () => {
  respond = (socket) => socket.end(head('200 OK', { 'Content-Length': 100 }) + 'x'.repeat(60));
  const body = await readerFor(new BufferPool(1024)).read('k', undefined, missing);
  await expect(drain(body)).rejects.toThrow(/other side closed|ended/);
});

test('bytes beyond Content-Length are not part of the body, and the next read gets a fresh connection', async () => {
  respond = (socket) => socket.write(head('200 OK', { 'Content-Length': 5 }) + 'whole' + 'x'.repeat(60));
  const reader = readerFor(new BufferPool(1024));
  expect((await drain(await reader.read('k', undefined, missing))).toString()).toBe('whole');
  respond = (socket) => socket.write(head('200 OK', { 'Content-Length': 4 }) + 'next');
  expect((await drain(await reader.read('k', undefined, missing))).toString()).toBe('next');
  expect(connections).toBe(2);
});

test('a refused connection and a server that never answers are UNAVAILABLE', async () => {
  const reader = readerFor(new BufferPool(1024), { timeouts: { headersMs: 200 } });
  await new Promise((resolve) => server.close(resolve));
  await expect(reader.read('k', undefined, missing)).rejects.toMatchObject({ code: 'UNAVAILABLE', cause: expect.objectContaining({ code: 'ECONNREFUSED' }) });
  // Reads the request but never answers.
  respond = () => undefined;
  server = createServer((socket) => socket.on('error', () => undefined).resume());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  await expect(reader.read('k', undefined, missing)).rejects.toMatchObject({ code: 'UNAVAILABLE', cause: expect.objectContaining({ code: 'UND_ERR_HEADERS_TIMEOUT' }) });
});

test('a body that stalls fails after the idle timeout; a consumer that pauses longer does not', async () => {
  respond = (socket) => socket.write(head('200 OK', { 'Content-Length': 10 }) + 'abc');
  const pool = new BufferPool(64 * 1024);
  const reader = readerFor(pool, { timeouts: { bodyIdleMs: 200 } });
  await expect(drain(await reader.read('k', undefined, missing))).rejects.toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT' });

  const content = randomBytes(4 * 1024 * 1024);
  respond = (socket) => socket.write(Buffer.concat([Buffer.from(head('200 OK', { 'Content-Length': content.length })), content]));
  const slowlyRead = await reader.read('k', undefined, missing);
  // Far more than the body's buffer is waiting in the socket while nobody reads.
  await sleep(600);
  expect(sha(await drain(slowlyRead, pool))).toBe(sha(content));
});

test('destroying the body early closes the connection; the next read still succeeds', async () => {
  let closed = 0;
  respond = (socket) => {
    socket.once('close', () => closed++);
    socket.write(head('200 OK', { 'Content-Length': 1_000_000 }) + 'first bytes');
  };
  const pool = new BufferPool(1024);
  const reader = readerFor(pool);
  const body = await reader.read('k', undefined, missing);
  for await (const chunk of body as AsyncIterable<Buffer>) {
    pool.release(chunk);
    break;
  }
  for (let i = 0; i < 100 && closed === 0; i++) await sleep(10);
  expect(closed).toBe(1);
  respond = (socket) => socket.write(head('200 OK', { 'Content-Length': 2 }) + 'ok');
  expect((await drain(await reader.read('k', undefined, missing))).toString()).toBe('ok');
});

test('a connection that closes hands back the buffer its socket held for the next read', async () => {
  const content = randomBytes(300 * 1024);
  // Every answer ends its connection, so each read opens a new one.
  respond = (socket) => socket.end(Buffer.concat([Buffer.from(head('200 OK', { 'Content-Length': content.length, Connection: 'close' })), content]));
  const pool = new BufferPool(64 * 1024);
  const reader = readerFor(pool);
  for (let i = 0; i < 10; i++) expect(sha(await drain(await reader.read('k', undefined, missing), pool))).toBe(sha(content));
  for (let i = 0; i < 100 && pool.kept < pool.allocated; i++) await sleep(10);
  expect(connections).toBe(10);
  expect(pool.kept).toBe(pool.allocated);
  // One connection's worth of buffers, reused by each in turn.
  expect(pool.allocated).toBeLessThanOrEqual(3);
});

test('a read the response did not hand on, a head arriving by itself, goes back to the pool', async () => {
  const content = randomBytes(300 * 1024);
  respond = (socket) => {
    void (async () => {
      socket.write(head('200 OK', { 'Content-Length': content.length }));
      // The head goes out in a read of its own.
      await sleep(20);
      socket.write(content);
    })();
  };
  const pool = new BufferPool(64 * 1024);
  const reader = readerFor(pool);
  for (let i = 0; i < 10; i++) {
    expect(sha(await drain(await reader.read('k', undefined, missing), pool))).toBe(sha(content));
    await sleep(10);
  }
  expect(connections).toBe(1);
  // The connection's next read holds one until it closes.
  expect(pool.kept).toBe(pool.allocated - 1);
  expect(pool.allocated).toBeLessThanOrEqual(4);
});

test('an IPv6 literal endpoint is reached', async () => {
  const v6 = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end(head('200 OK', { 'Content-Length': 2 }) + 'v6'));
  });
  await new Promise<void>((resolve) => v6.listen(0, '::1', resolve));
  try {
    port = (v6.address() as AddressInfo).port;
    expect((await drain(await readerFor(new BufferPool(1024), { host: '::1' }).read('k', undefined, missing))).toString()).toBe('v6');
  } finally {
    await new Promise((resolve) => v6.close(resolve));
  }
});

describe('over TLS', () => {
  let dir: string;
  let cert: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'entrepot-s3-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  beforeEach(async () => {
    await new Promise((resolve) => server.close(resolve));
    await listenScripted((onSocket) => createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, onSocket));
  });

  test('a self-signed endpoint is refused unless its certificate is given as a CA', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 5);
    respond = (socket) => socket.write(Buffer.concat([Buffer.from(head('206 Partial Content', { 'Content-Length': content.length })), content]));
    await expect(readerFor(new BufferPool(1024), { useSSL: true }).read('k', { start: 0, end: content.length - 1 }, missing)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      cause: expect.objectContaining({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
    });
    expect(requests).toHaveLength(0);
    const pool = new BufferPool(256 * 1024);
    const reader = readerFor(pool, { useSSL: true, ca: cert });
    for (let i = 0; i < 2; i++) {
      expect(sha(await drain(await reader.read('k', { start: 0, end: content.length - 1 }, missing), pool))).toBe(sha(content));
      await sleep(10);
    }
    expect(requests[0].toLowerCase()).toContain(`\r\nrange: bytes=0-${content.length - 1}\r\n`);
    // TLS records are gathered into whole pool buffers, reused once handed back.
    expect(pool.allocated).toBeLessThanOrEqual(4);
    expect(connections).toBe(1);
  });
});
