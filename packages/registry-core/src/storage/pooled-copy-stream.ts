import { Readable } from 'node:stream';
import type { BufferPool } from './buffer-pool';
import type { RecyclingStream } from './file-range-stream';

/**
 * The bytes of a network stream (an S3 object body), copied into pooled
 * buffers as they arrive.
 *
 * Node allocates every socket read with malloc and frees it only when the
 * garbage collector finds the chunk unreachable. A chunk still queued on a
 * slow client socket survives young collections and lands in the old
 * generation; many such chunks interleaved with short-lived ones leave the
 * C heap fragmented, and glibc keeps that memory after the burst. Copied at
 * once, each socket read dies young, and what waits on the client socket is
 * a few reused buffers.
 *
 * Each read returns what arrived since the last one, up to the end of a
 * pooled buffer, so a slow source is never held back to fill a buffer;
 * later bytes go to the rest of the same buffer. A buffer returns to the
 * pool once no more bytes will go into it and every view of it was handed
 * back with `recycle`.
 */
export class PooledCopyStream extends Readable implements RecyclingStream {
  private current: Buffer | null = null;
  /** Bytes of `current` holding data, and how many of those were pushed. */
  private filled = 0;
  private pushed = 0;
  /** Views of full buffers not yet pushed. */
  private readonly ready: Buffer[] = [];
  /** The part of the source's last chunk not copied yet (it waits while a full buffer does). */
  private rest: Buffer | null = null;
  /** Views created and not yet recycled, per pooled buffer. */
  private readonly outstanding = new Map<ArrayBufferLike, number>();
  /** The consumer asked for bytes that were not there yet. */
  private wanted = false;
  private sourceEnded = false;

  constructor(
    private readonly source: Readable,
    private readonly pool: BufferPool,
  ) {
    // Object mode: a read returns one view as pushed, where a byte stream
    // would concatenate the views it holds into a fresh buffer.
    super({ objectMode: true, highWaterMark: 1 });
    source.on('data', (chunk: Buffer) => this.copyIn(chunk));
    source.once('end', () => {
      this.sourceEnded = true;
      this.offer();
    });
    source.once('error', (err: Error) => this.destroy(err));
    source.once('close', () => {
      if (!this.sourceEnded) this.destroy(new Error('the source closed before its end'));
    });
  }

  recycle(chunk: Buffer): void {
    const memory = chunk.buffer;
    const views = this.outstanding.get(memory);
    if (views === undefined) return;
    if (views > 1) {
      this.outstanding.set(memory, views - 1);
      return;
    }
    this.outstanding.delete(memory);
    if (memory !== this.current?.buffer) this.pool.release(chunk);
  }

  override _read(): void {
    this.wanted = true;
    this.offer();
  }

  private copyIn(chunk: Buffer): void {
    this.rest = chunk;
    this.fill();
    this.offer();
  }

  /** Copies the source's bytes at hand until a full buffer waits for the consumer. */
  private fill(): void {
    while (this.rest && this.ready.length === 0) {
      if (!this.current) {
        this.current = this.pool.acquire();
        this.filled = 0;
        this.pushed = 0;
      }
      const copied = this.rest.copy(this.current, this.filled);
      this.filled += copied;
      this.rest = copied < this.rest.length ? this.rest.subarray(copied) : null;
      if (this.filled === this.current.length) {
        this.ready.push(this.unpushedView());
        this.retireCurrent();
      }
    }
    // A full buffer waiting is enough read-ahead; the source's own buffer and the socket hold the rest.
    if (this.ready.length > 0) this.source.pause();
  }

  /** Pushes one view if the consumer wants one and there are bytes, or the end. */
  private offer(): void {
    if (!this.wanted || this.destroyed) return;
    const view = this.ready.shift() ?? (this.current && this.filled > this.pushed ? this.unpushedView() : null);
    if (view) {
      this.wanted = false;
      this.fill();
      if (this.ready.length === 0 && this.source.isPaused()) this.source.resume();
      this.push(view);
      return;
    }
    if (this.sourceEnded && !this.rest) {
      this.wanted = false;
      this.retireCurrent();
      this.push(null);
    }
  }

  private unpushedView(): Buffer {
    const buffer = this.current as Buffer;
    const view = buffer.subarray(this.pushed, this.filled);
    this.pushed = this.filled;
    this.outstanding.set(buffer.buffer, (this.outstanding.get(buffer.buffer) ?? 0) + 1);
    return view;
  }

  /** No more bytes go to the current buffer: it returns to the pool now if no view of it is out. */
  private retireCurrent(): void {
    const buffer = this.current;
    if (!buffer) return;
    this.current = null;
    if (!this.outstanding.has(buffer.buffer)) this.pool.release(buffer);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Views already pushed may still be read by their holder: their buffers are not reused.
    this.ready.length = 0;
    this.rest = null;
    this.retireCurrent();
    this.source.destroy();
    callback(err);
  }
}
