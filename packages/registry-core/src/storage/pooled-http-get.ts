import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { BufferPool } from './buffer-pool';
import type { RecyclingStream } from './file-range-stream';

export interface PooledGetTimeouts {
  connectMs: number;
  /** From the connection to the end of the response head. */
  headersMs: number;
  /** Without a byte from the server while the consumer is reading; time it waits on a slow consumer does not count. */
  bodyIdleMs: number;
  /** After a whole body, for the server to close the connection before this side does. */
  closeGraceMs: number;
}

export interface PooledGetResponse {
  statusCode: number;
  /** Lower-case names; a repeated header keeps its last value. */
  headers: Record<string, string>;
  /**
   * The body, framed by Content-Length (up to the server's close when there
   * is none). Its chunks are pool buffers: hand each back with `recycle`.
   */
  body: RecyclingStream;
}

/** A successful response whose body is not framed by Content-Length (chunked): this reader does not decode it. */
export class UnsupportedFramingError extends Error {}

const MAX_HEAD_BYTES = 64 * 1024;
const HEAD_END = '\r\n\r\n';
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/;

/**
 * One HTTP/1.1 GET over plain TCP whose body is read from the socket straight
 * into pool buffers (`onread`), which the consumer hands back once written.
 * Node's HTTP clients read every socket into a fresh 64 KiB buffer, and
 * copying into that cold memory was the largest cost of relaying S3 objects
 * (docs/BENCHMARKS.md, S3 reads). One request per connection (`Connection:
 * close`): the body ends at Content-Length or at the server's close.
 */
export function pooledGet(url: URL, headers: Record<string, string>, pool: BufferPool, timeouts: PooledGetTimeouts): Promise<PooledGetResponse> {
  return new Promise((resolve, reject) => {
    let body: SocketBody | undefined;
    let head = Buffer.alloc(0);
    // The buffer the next read goes into; the socket holds it until then.
    let next: Buffer | undefined;
    const socket: Socket = connect({
      // An IPv6 literal comes bracketed in a URL, not in a socket address.
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(url.port || 80),
      onread: {
        buffer: () => (next = pool.acquire()),
        callback: (length: number, buffer: Uint8Array): boolean => {
          next = undefined;
          const bytes = buffer as Buffer;
          if (body) return body.deliver(bytes.subarray(0, length));
          head = Buffer.concat([head, bytes.subarray(0, length)]);
          const end = head.indexOf(HEAD_END);
          if (end < 0) {
            pool.release(bytes);
            if (head.length > MAX_HEAD_BYTES) fail(new Error(`S3 response head is over ${MAX_HEAD_BYTES} bytes`));
            return true;
          }
          let response: Omit<PooledGetResponse, 'body'>;
          let announced: number | undefined;
          try {
            response = parseHead(head.subarray(0, end).toString('latin1'));
            announced = bodyLength(response);
          } catch (err) {
            pool.release(bytes);
            fail(err as Error);
            return false;
          }
          body = new SocketBody(socket, pool, timeouts, announced);
          socket.setTimeout(timeouts.bodyIdleMs);
          resolve({ ...response, body });
          const bodyStart = length - (head.length - end - HEAD_END.length);
          if (bodyStart < length) return body.deliver(bytes.subarray(bodyStart, length));
          pool.release(bytes);
          // No body bytes yet: this ends a Content-Length 0 body at once.
          body.deliver(Buffer.alloc(0));
          return true;
        },
      },
    });
    const fail = (err: Error): void => {
      socket.destroy();
      // A whole body stays whole, even if the connection then breaks or lingers.
      if (body?.complete) return;
      if (body) body.destroy(err);
      else reject(err);
    };
    socket.setTimeout(timeouts.connectMs);
    socket.on('timeout', () => fail(Object.assign(new Error(`S3 at ${url.host} did not answer in time`), { code: 'ETIMEDOUT' })));
    socket.on('error', fail);
    socket.once('connect', () => {
      socket.setTimeout(timeouts.headersMs);
      const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
      socket.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n${lines.join('')}\r\n`);
    });
    socket.once('close', () => {
      if (next) pool.release(next);
      if (body) body.serverClosed();
      else reject(new Error(`S3 at ${url.host} closed the connection before answering`));
    });
  });
}

function parseHead(text: string): Omit<PooledGetResponse, 'body'> {
  const [statusLine, ...lines] = text.split('\r\n');
  const status = STATUS_LINE.exec(statusLine);
  if (!status || Number(status[1]) < 200) throw new Error(`S3 sent an unexpected status line: ${statusLine.slice(0, 100)}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`S3 sent a malformed header line: ${line.slice(0, 100)}`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { statusCode: Number(status[1]), headers };
}

/** Bytes of body the head announces; undefined when the body runs to the close. */
function bodyLength({ statusCode, headers }: Omit<PooledGetResponse, 'body'>): number | undefined {
  if (headers['transfer-encoding'] !== undefined) {
    // Error bodies are only scanned for their code, so their framing bytes do no harm.
    if (statusCode < 300) throw new UnsupportedFramingError(`S3 answered ${statusCode} with transfer-encoding ${headers['transfer-encoding']}`);
    return undefined;
  }
  const declared = headers['content-length'];
  if (declared === undefined) return undefined;
  if (!/^\d{1,15}$/.test(declared)) throw new Error(`S3 sent an invalid Content-Length: ${declared.slice(0, 40)}`);
  return Number(declared);
}

/** A response body fed by the socket's reads; pausing it stops reading from the socket. */
class SocketBody extends Readable implements RecyclingStream {
  /** One chunk: the socket holds the next read's buffer already, so more would only hold memory. */
  readonly queueBytes: number;
  private remaining: number;
  private waiting = false;
  private whole = false;

  constructor(
    private readonly socket: Socket,
    private readonly pool: BufferPool,
    private readonly timeouts: PooledGetTimeouts,
    length: number | undefined,
  ) {
    // Holds one chunk; the socket's next read is the read-ahead.
    super({ highWaterMark: 1 });
    this.queueBytes = pool.chunkSize;
    this.remaining = length ?? Number.POSITIVE_INFINITY;
    // The socket may fail the body before a consumer listens; the consumer still sees the error (the stream is errored).
    this.on('error', () => undefined);
  }

  /** Every byte of a Content-Length body has arrived and been passed on. */
  get complete(): boolean {
    return this.whole;
  }

  recycle(chunk: Buffer): void {
    this.pool.release(chunk);
  }

  /** Takes bytes read from the socket; false stops reading until the consumer wants more. */
  deliver(chunk: Buffer): boolean {
    if (this.destroyed || this.complete) {
      this.pool.release(chunk);
      if (this.complete) this.socket.destroy();
      return false;
    }
    if (chunk.length > this.remaining) {
      this.pool.release(chunk);
      this.destroy(new Error('S3 sent more bytes than its Content-Length'));
      return false;
    }
    this.remaining -= chunk.length;
    const wantsMore = chunk.length === 0 || this.push(chunk);
    if (this.remaining === 0) {
      this.whole = true;
      this.push(null);
      // The server closes first (Connection: close), so the TIME_WAIT of each read stays on its side, not on a local port.
      this.socket.setTimeout(this.timeouts.closeGraceMs);
      return true;
    }
    if (!wantsMore) {
      // Waiting on a slow consumer is not S3 being idle.
      this.waiting = true;
      this.socket.setTimeout(0);
    }
    return wantsMore;
  }

  override _read(): void {
    if (!this.waiting) return;
    this.waiting = false;
    this.socket.setTimeout(this.timeouts.bodyIdleMs);
    this.socket.resume();
  }

  /** The connection is gone: the body is whole only if it was fully received or framed by the close. */
  serverClosed(): void {
    if (this.remaining === Number.POSITIVE_INFINITY) this.push(null);
    else if (this.remaining > 0) this.destroy(new Error(`S3 closed the connection ${this.remaining} bytes before the end of the body`));
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // A whole body leaves the close to the server.
    if (!this.complete) this.socket.destroy();
    callback(err);
  }
}
