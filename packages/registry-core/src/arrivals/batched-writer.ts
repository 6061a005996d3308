import type { FileHandle } from 'node:fs/promises';

/** Received bytes allowed to wait for the disk before the download is paused. */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * Appends received chunks to a file without waiting for each write: while one
 * `writev` is in flight, further chunks gather and go in the next one, so a fast
 * upstream costs a few large writes instead of one syscall per 64 KiB, and a slow
 * one still reaches the disk (and the readers) chunk by chunk. `onDurable` is
 * told each new end of the written data, in order.
 */
export class BatchedWriter {
  received: number;
  private durable: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inFlight: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(
    private readonly file: FileHandle,
    start: number,
    private readonly onDurable: (end: number) => void,
  ) {
    this.received = start;
    this.durable = start;
  }

  /** Queues a chunk; waits only when too much is waiting for the disk. Throws a write failure. */
  async add(chunk: Buffer): Promise<void> {
    this.throwIfFailed();
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.received += chunk.length;
    const writing = this.startDrain();
    if (this.pendingBytes > MAX_PENDING_BYTES) await writing;
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Writes everything received so far; throws a write failure. Safe to call twice. */
  async finish(): Promise<void> {
    while (this.inFlight) await this.inFlight;
    if (this.pending.length > 0 && !this.failure) await this.startDrain();
    this.throwIfFailed();
  }

  /**
   * The write in flight, or a new one. It is cleared only after the assignment:
   * a drain with nothing it may write ends at once, and clearing inside it would
   * leave a settled promise behind that `finish` waits on forever.
   */
  private startDrain(): Promise<void> {
    if (!this.inFlight) {
      const drained: Promise<void> = this.drain().finally(() => {
        if (this.inFlight === drained) this.inFlight = null;
      });
      this.inFlight = drained;
    }
    return this.inFlight;
  }

  /** Never rejects: a failure is kept for the next add or finish. */
  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0 && !this.failure) {
        const batch = this.pending;
        const bytes = this.pendingBytes;
        this.pending = [];
        this.pendingBytes = 0;
        let position = this.durable;
        let rest = batch;
        // writev may write less than asked (e.g. a full disk): continue from where it stopped.
        for (let left = bytes; left > 0; ) {
          const { bytesWritten } = await this.file.writev(rest, position);
          if (bytesWritten === 0) throw new Error('scratch file write made no progress');
          position += bytesWritten;
          left -= bytesWritten;
          rest = skipBytes(rest, bytesWritten);
        }
        this.durable = position;
        this.onDurable(position);
      }
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
    }
  }
}

function skipBytes(buffers: Buffer[], count: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = count;
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    out.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return out;
}
