import { EventEmitter } from 'node:events';
import type { RangeOpener } from './piece-download';

export interface SharedRangeOptions {
  start: number;
  end: number;
  open: RangeOpener;
  /**
   * Asked when the upstream ignored Range: true drops the answer (the bytes will
   * come from the blob's fill, which downloads the same body anyway); false keeps
   * the requested part of the whole body.
   */
  dropWholeBody(): boolean;
  /** Bytes of the range as they arrive (for metrics). */
  onBytes?(bytes: number): void;
}

/**
 * Bytes [start, end] of a blob fetched once from the upstream with a Range
 * request and kept in memory, so every request for a part of them reads the
 * same download. Not verified (a range cannot be hashed alone) and never stored
 * as the blob; the blob's fill is what gets verified and stored.
 */
export class SharedRange {
  readonly start: number;
  readonly end: number;
  private readonly chunks: Array<{ at: number; data: Buffer }> = [];
  private received = 0;
  private finished = false;
  private failure: Error | null = null;
  /** True when the upstream ignored Range and the answer was dropped: read the fill instead. */
  dropped = false;
  private readonly events = new EventEmitter();
  private readonly abort = new AbortController();

  constructor(private readonly options: SharedRangeOptions) {
    this.start = options.start;
    this.end = options.end;
    this.events.setMaxListeners(0);
    void this.run();
  }

  get length(): number {
    return this.end - this.start + 1;
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  cancel(reason: Error): void {
    this.abort.abort(reason);
  }

  /** Bytes [from, to] (within the range) as they arrive; ends early, with nothing more, when the range was dropped. */
  async *read(from: number, to: number): AsyncGenerator<Buffer> {
    let pos = from;
    let index = 0;
    while (pos <= to) {
      while (index < this.chunks.length && pos <= to) {
        const { at, data } = this.chunks[index];
        const chunkEnd = at + data.length;
        if (pos >= chunkEnd) {
          index++;
          continue;
        }
        const piece = data.subarray(pos - at, Math.min(data.length, to + 1 - at));
        pos += piece.length;
        yield piece;
      }
      if (pos > to) return;
      if (this.failure) throw this.failure;
      if (this.finished) return;
      await new Promise<void>((resolve) => this.events.once('change', resolve));
    }
  }

  private async run(): Promise<void> {
    try {
      const res = await this.options.open(this.start, this.end, this.abort.signal);
      // A whole body (Range ignored) starts at byte 0.
      let skip = res.ranged ? 0 : this.start;
      if (!res.ranged && this.options.dropWholeBody()) {
        res.stream.destroy();
        this.dropped = true;
        return;
      }
      for await (const chunk of res.stream as AsyncIterable<Buffer>) {
        let data = chunk;
        if (skip > 0) {
          const dropped = Math.min(skip, data.length);
          skip -= dropped;
          data = data.subarray(dropped);
        }
        const room = this.length - this.received;
        if (data.length > room) data = data.subarray(0, room);
        if (data.length > 0) {
          this.chunks.push({ at: this.start + this.received, data });
          this.received += data.length;
          this.options.onBytes?.(data.length);
          this.events.emit('change');
        }
        if (this.received === this.length) {
          res.stream.destroy();
          break;
        }
      }
      if (this.received < this.length) throw new Error(`upstream ended range ${this.start}-${this.end} after ${this.received} bytes`);
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
    } finally {
      this.finished = true;
      this.events.emit('change');
    }
  }
}
