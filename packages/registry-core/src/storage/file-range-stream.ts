import { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import type { BufferPool } from './buffer-pool';

/** A file still being written (an upstream fill): how far it may be read, and a way to wait for more. */
export interface GrowingFile {
  /** Bytes that may be read so far. */
  readonly readable: number;
  readonly failed: Error | null;
  /** Resolves once more than `position` bytes are readable, or the writer ended. */
  waitForBytes(position: number): Promise<void>;
  /**
   * Up to `max` bytes at `position` the writer still holds in memory, or null.
   * Readable bytes it does not hold must already be in the file.
   */
  inMemory?(position: number, max: number): Buffer | null;
  /** Takes back a view `inMemory` handed out, once it has been sent; false for memory that is not the writer's. */
  recycle?(view: Buffer): boolean;
}

/** A stream whose chunks the consumer may hand back for reuse once it is done with their bytes. */
export interface RecyclingStream extends Readable {
  recycle(chunk: Buffer): void;
  /** Bytes of its chunks worth queuing in a socket ahead of the one being sent; each holds a pool buffer. */
  readonly queueBytes: number;
}

export function isRecyclingStream(stream: Readable): stream is RecyclingStream {
  return typeof (stream as Partial<RecyclingStream>).recycle === 'function';
}

/**
 * Makes `stream` hand back, once it has closed, the chunks it still queues:
 * a transfer given up costs the pool no buffer. After 'close' no consumer is
 * handed a chunk or told of an end any more, so reading them out cannot reach
 * one. Several chunks of a byte stream come out as one copy, which recycling
 * ignores: their buffers are left to the collector.
 */
export function recycleQueuedOnClose(stream: RecyclingStream): void {
  stream.once('close', () => {
    for (let left = stream.readableLength; left > 0; ) {
      const chunk = stream.read() as Buffer | null;
      if (chunk === null) return;
      left -= stream.readableObjectMode ? 1 : chunk.length;
      stream.recycle(chunk);
    }
  });
}

export interface FileRangeOptions {
  /** First byte (default 0). */
  start?: number;
  /** Last byte, inclusive (default: up to the end of the file). */
  end?: number;
  /** Set when the file is still growing: reads wait for its bytes. */
  growing?: GrowingFile;
  /** Called once when the stream is destroyed or ends (e.g. to close the file). */
  onClose?: () => void;
}

/**
 * Bytes [start, end] of a file, read by position into pooled buffers (many
 * streams may share one descriptor). A consumer that calls `recycle(chunk)`
 * after writing a chunk lets the next read reuse its buffer.
 */
export class FileRangeStream extends Readable implements RecyclingStream {
  readonly queueBytes: number;
  private position: number;
  private readonly end: number;
  private reading = false;
  /** A read was asked for while the pump was still running: it runs again once done. */
  private readAgain = false;

  constructor(
    private readonly file: FileHandle,
    private readonly pool: BufferPool,
    private readonly options: FileRangeOptions = {},
  ) {
    // One chunk read ahead of the one being sent.
    super({ highWaterMark: pool.chunkSize });
    // Two chunks: small chunks of a growing file's memory should not each wait for the socket.
    this.queueBytes = 2 * pool.chunkSize;
    this.position = options.start ?? 0;
    this.end = options.end ?? Number.POSITIVE_INFINITY;
    recycleQueuedOnClose(this);
  }

  recycle(chunk: Buffer): void {
    if (this.options.growing?.recycle?.(chunk)) return;
    this.pool.release(chunk);
  }

  override _read(): void {
    if (this.reading) {
      // A flowing consumer can ask synchronously from within push(), before the pump has returned.
      this.readAgain = true;
      return;
    }
    this.reading = true;
    this.readAgain = false;
    this.pump().then(
      () => {
        this.reading = false;
        // Not when the chunk just pushed filled the stream: a chunk more would only wait, holding a buffer.
        if (this.readAgain && !this.destroyed && this.readableLength < this.readableHighWaterMark) this._read();
      },
      (err: unknown) => {
        this.reading = false;
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private async pump(): Promise<void> {
    const growing = this.options.growing;
    while (!this.destroyed) {
      if (this.position > this.end) {
        this.push(null);
        return;
      }
      let length = Math.min(this.end + 1 - this.position, this.pool.chunkSize);
      if (growing) {
        const available = Math.min(growing.readable, this.end + 1) - this.position;
        if (available <= 0) {
          if (growing.failed) throw growing.failed;
          await growing.waitForBytes(this.position);
          continue;
        }
        length = Math.min(length, available);
        const held = growing.inMemory?.(this.position, length);
        if (held) {
          this.position += held.length;
          if (!this.push(held)) return;
          continue;
        }
      }
      const buffer = this.pool.acquire();
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.file.read(buffer, 0, length, this.position));
      } catch (err) {
        this.pool.release(buffer);
        throw err;
      }
      if (bytesRead === 0) {
        this.pool.release(buffer);
        if (growing || Number.isFinite(this.end)) throw new Error(`file ended at byte ${this.position}, before byte ${this.end}`);
        this.push(null);
        return;
      }
      this.position += bytesRead;
      if (this.destroyed) {
        this.pool.release(buffer);
        return;
      }
      if (!this.push(buffer.subarray(0, bytesRead))) return;
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.options.onClose?.();
    callback(err);
  }
}
