import type { FileHandle } from 'node:fs/promises';

/** Received bytes a fill keeps in memory: for readers at the head, and while they wait for the disk. */
const DEFAULT_CAPACITY = 4 * 1024 * 1024;

/**
 * The most recent bytes of a fill in one reused buffer, and their way to the
 * scratch file. Each received chunk is copied in and dropped at once, so the
 * socket's buffers die young and a scavenge frees them. Kept until the disk
 * had them, they were promoted, and V8 ran a full collection for every 64 MB
 * received. While one write is in flight further chunks gather, so a fast
 * upstream costs a few large writes. `onDurable` is told each new end of the
 * data on disk, in order.
 */
export class FillRing {
  /** End of the bytes received (absolute position in the blob). */
  received: number;
  private durable: number;
  private readonly start: number;
  private readonly buffer: Buffer;
  private inFlight: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(
    private readonly file: FileHandle,
    start: number,
    private readonly onDurable: (end: number) => void,
    capacity = DEFAULT_CAPACITY,
  ) {
    this.start = start;
    this.received = start;
    this.durable = start;
    this.buffer = Buffer.allocUnsafeSlow(capacity);
  }

  /** Copies a chunk in; waits only while the ring is full of bytes not yet on disk. Throws a write failure. */
  async add(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      this.throwIfFailed();
      const room = this.buffer.length - (this.received - this.durable);
      if (room === 0) {
        await this.startDrain();
        continue;
      }
      const part = chunk.subarray(offset, offset + room);
      this.copyIn(part);
      offset += part.length;
      void this.startDrain();
    }
    this.throwIfFailed();
  }

  /** Writes everything received so far; throws a write failure. Safe to call twice. */
  async finish(): Promise<void> {
    while (this.inFlight) await this.inFlight;
    if (this.durable < this.received && !this.failure) await this.startDrain();
    this.throwIfFailed();
  }

  /**
   * Copies held bytes from `position` on into `target`, as many as fit; returns
   * how many (0 when `position` is not held). Anything received before what is
   * held is already on disk.
   */
  copyTo(position: number, target: Buffer): number {
    const heldFrom = Math.max(this.start, this.received - this.buffer.length);
    if (position < heldFrom || position >= this.received) return 0;
    const length = Math.min(target.length, this.received - position);
    let copied = 0;
    for (const segment of this.segments(position, position + length)) copied += segment.copy(target, copied);
    return copied;
  }

  private copyIn(part: Buffer): void {
    const at = this.received % this.buffer.length;
    const first = Math.min(part.length, this.buffer.length - at);
    part.copy(this.buffer, at, 0, first);
    if (first < part.length) part.copy(this.buffer, 0, first);
    this.received += part.length;
  }

  /** The ring's bytes for positions [from, to), as one or two views (it may wrap). */
  private segments(from: number, to: number): Buffer[] {
    const at = from % this.buffer.length;
    const length = to - from;
    if (at + length <= this.buffer.length) return [this.buffer.subarray(at, at + length)];
    return [this.buffer.subarray(at), this.buffer.subarray(0, length - (this.buffer.length - at))];
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** The write in flight, or a new one. Cleared only after the assignment (a drain may end at once). */
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
      // Bytes in [durable, received) are never overwritten (add leaves them room), so the
      // kernel may read them while further chunks are copied in behind them.
      while (this.durable < this.received && !this.failure) {
        const { bytesWritten } = await this.file.writev(this.segments(this.durable, this.received), this.durable);
        // writev may write less than asked (e.g. a full disk): the loop continues from where it stopped.
        if (bytesWritten === 0) throw new Error('scratch file write made no progress');
        this.durable += bytesWritten;
        this.onDurable(this.durable);
      }
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
    }
  }
}
