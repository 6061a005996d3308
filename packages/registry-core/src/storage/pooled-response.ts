import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { BufferPool } from './buffer-pool';
import { recycleQueuedOnClose, type RecyclingStream } from './file-range-stream';

type Controller = Dispatcher.DispatchController;

export interface PooledResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** Its chunks are pool buffers (or views of them): hand each back with `recycle`. */
  body: RecyclingStream;
}

/**
 * A response body whose chunks are pool buffers. A chunk that is a pool
 * buffer's (the socket read into it: plain-HTTP sockets of `createPooledAgent`)
 * passes through as it is; other bytes (TLS records, a second piece of one
 * read, which must not be recycled with the first, short reads of a slow
 * link) are copied into a pool buffer, handed on once full or once the bytes
 * of that turn of the event loop are in. Chunks are handed to the stream one
 * at a time, as it asks for them: two queued in it would be read as one
 * concatenated copy. Any chunk waiting here pauses the connection.
 */
class PooledBody extends Readable implements RecyclingStream {
  /** One chunk: the socket's next read is the read-ahead, so more would only hold memory. */
  readonly queueBytes: number;
  private readonly waiting: Buffer[] = [];
  private wanted = false;
  private filling: Buffer | undefined;
  private filled = 0;
  private flushScheduled = false;
  /** The memory of the last chunk passed through: a later piece of the same read is copied, as the first may be recycled already. */
  private lastPassed: ArrayBufferLike | undefined;
  /** Every byte arrived (or the response failed): destroying the body no longer aborts anything. */
  private settled = false;

  constructor(
    private readonly pool: BufferPool,
    private readonly controller: Controller,
    /**
     * Whether reads may be passed on as they are. Not for a chunked body: one
     * read can then hold several pieces, and undici keeps the rest of a read
     * it paused in, so recycling the first piece could expose the rest to the
     * next read into that buffer.
     */
    private readonly passThrough: boolean,
  ) {
    super({ highWaterMark: 1 });
    this.queueBytes = pool.chunkSize;
    // A failure before a consumer listens still reaches the consumer (the stream is errored).
    this.on('error', () => undefined);
    recycleQueuedOnClose(this);
  }

  recycle(chunk: Buffer): void {
    this.pool.release(chunk);
  }

  deliver(chunk: Buffer): void {
    if (this.destroyed) return;
    const wholeRead = this.passThrough && this.isWholeRead(chunk);
    if (wholeRead && chunk.length >= this.pool.chunkSize / 2) {
      this.flush();
      this.lastPassed = chunk.buffer;
      this.pool.claim(chunk);
      this.handOn(chunk);
      return;
    }
    let offset = 0;
    while (offset < chunk.length) {
      this.filling ??= this.pool.acquire();
      const copied = chunk.copy(this.filling, this.filled, offset);
      this.filled += copied;
      offset += copied;
      if (this.filled === this.filling.length) this.flush();
    }
    // A short read (a slow link) is gathered with the next ones rather than holding a whole buffer: its own goes back at once.
    if (wholeRead) this.pool.release(chunk);
    if (this.filled > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        if (!this.destroyed) this.flush();
      });
    }
  }

  finish(): void {
    this.settled = true;
    if (this.destroyed) return;
    this.flush();
    // Left empty by a flush that copied its bytes out.
    if (this.filling) this.pool.release(this.filling);
    this.filling = undefined;
    this.handOver();
  }

  fail(err: Error): void {
    this.settled = true;
    this.destroy(err);
  }

  override _read(): void {
    this.wanted = true;
    this.handOver();
    // Not once settled: the connection may be carrying another response by then.
    if (this.waiting.length === 0 && !this.settled && this.controller.paused) this.controller.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    for (const chunk of this.waiting.splice(0)) this.pool.release(chunk);
    if (this.filling) this.pool.release(this.filling);
    this.filling = undefined;
    // Stops the transfer when the consumer gives up early; nothing happens once the response ended.
    if (!this.settled) this.controller.abort(err ?? new Error('S3 response body closed before its end'));
    callback(err);
  }

  /**
   * Pool buffers are the only memory of exactly their size here (a stranger
   * of that size passing through is harmless). A read into a pool buffer
   * starts at its first byte, except a response's first read, where the head
   * comes first.
   */
  private isWholeRead(chunk: Buffer): boolean {
    if (chunk.buffer.byteLength !== this.pool.chunkSize) return false;
    return this.lastPassed === undefined || chunk.buffer !== this.lastPassed || chunk.byteOffset === 0;
  }

  /**
   * Hands on what was gathered. A buffer less than half full (a slow link's
   * bytes of one turn of the event loop) goes on as a copy of its size and is
   * filled again: a consumer holding many such chunks (a fill's recent window)
   * would otherwise hold whole pool buffers for a few kilobytes each.
   */
  private flush(): void {
    if (!this.filling || this.filled === 0) return;
    if (this.filled < this.pool.chunkSize / 2) {
      // Memory of its own, not a slice of Node's shared slab: holders tell chunks apart by their memory.
      const chunk = Buffer.allocUnsafeSlow(this.filled);
      this.filling.copy(chunk, 0, 0, this.filled);
      this.filled = 0;
      this.handOn(chunk);
      return;
    }
    const chunk = this.filling.subarray(0, this.filled);
    this.filling = undefined;
    this.filled = 0;
    this.handOn(chunk);
  }

  private handOn(chunk: Buffer): void {
    this.waiting.push(chunk);
    this.handOver();
    if (this.waiting.length > 0 && !this.settled) this.controller.pause();
  }

  /** One waiting chunk (or the end) to the stream, if it asked for one. */
  private handOver(): void {
    if (!this.wanted || this.destroyed) return;
    const chunk = this.waiting.shift();
    if (chunk) {
      this.wanted = false;
      this.push(chunk);
    } else if (this.settled && this.filled === 0) {
      this.wanted = false;
      this.push(null);
    }
  }
}

/**
 * Sends one request through `dispatcher` and resolves with the response head
 * once it arrives; the body follows in pool buffers (see PooledBody). Aborting
 * `signal` fails the request, or the body once it has begun.
 */
export function requestIntoPool(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, pool: BufferPool, signal?: AbortSignal): Promise<PooledResponse> {
  return new Promise((resolve, reject) => {
    let body: PooledBody | undefined;
    let stopAborting = (): void => undefined;
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(controller) {
        if (!signal) return;
        const abort = (): void => controller.abort(signal.reason);
        if (signal.aborted) {
          abort();
          return;
        }
        signal.addEventListener('abort', abort, { once: true });
        stopAborting = () => signal.removeEventListener('abort', abort);
      },
      onResponseStart(controller, statusCode, headers) {
        body = new PooledBody(pool, controller, !/chunked/i.test(String(headers['transfer-encoding'] ?? '')));
        resolve({ statusCode, headers, body });
      },
      onResponseData(_controller, chunk) {
        body?.deliver(chunk);
      },
      onResponseEnd() {
        stopAborting();
        body?.finish();
      },
      onResponseError(_controller, err) {
        stopAborting();
        if (body) body.fail(err);
        else reject(err);
      },
    };
    dispatcher.dispatch(options, handler);
  });
}
