import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { RangeOpener } from './piece-download';

/** A ranged upstream GET of the last `length` bytes (`bytes=-length`); `start` and `size` from its Content-Range (or the whole body's length). */
export type SuffixOpener = (length: number, signal: AbortSignal) => Promise<{ stream: Readable; ranged: boolean; start: number; size: number }>;

/** Which bytes to ask for: an absolute range, or a blob's last `length` bytes when its size is not known yet. */
export type RangeWanted = { start: number; end: number; open: RangeOpener } | { suffix: number; openSuffix: SuffixOpener };

export type SharedRangeOptions = RangeWanted & {
  /**
   * Asked when the upstream ignored Range: true drops the answer (the bytes will
   * come from the blob's fill, which downloads the same body anyway); false keeps
   * the requested part of the whole body.
   */
  dropWholeBody(): boolean;
  /** Bytes of the range as they arrive (for metrics). */
  onBytes?(bytes: number): void;
};

/**
 * Bytes [start, end] of a blob fetched once from the upstream with a Range
 * request and kept in memory, so every request for a part of them reads the
 * same download. Not verified (a range cannot be hashed alone) and never stored
 * as the blob; the blob's fill is what gets verified and stored.
 * A suffix range (a blob's tail, asked before its size is known) learns where
 * it starts from the upstream's answer, or from the blob's size once someone
 * knows it, whichever comes first.
 */
export class SharedRange {
  /** -1 until a suffix range's position is known. */
  private first: number;
  private last: number;
  /** Bytes kept in memory at most (a suffix range's length before its position is known). */
  readonly length: number;
  /** The `bytes=-N` this range was asked as, or null for an absolute range. */
  readonly suffix: number | null;
  /** Resolves once start and end are known (at once for an absolute range; even when the request fails). */
  readonly placed: Promise<void>;
  private markPlaced!: () => void;
  /** The whole blob's size once the upstream answered (null when the request failed first). */
  readonly answered: Promise<number | null>;
  private markAnswered!: (size: number | null) => void;
  private readonly chunks: Array<{ at: number; data: Buffer }> = [];
  private received = 0;
  private finished = false;
  private failure: Error | null = null;
  /** True when the upstream ignored Range and the answer was dropped: read the fill instead. */
  dropped = false;
  private readonly events = new EventEmitter();
  private readonly abort = new AbortController();

  constructor(private readonly options: SharedRangeOptions) {
    this.placed = new Promise<void>((resolve) => (this.markPlaced = resolve));
    this.answered = new Promise<number | null>((resolve) => (this.markAnswered = resolve));
    if ('suffix' in options) {
      this.suffix = options.suffix;
      this.first = -1;
      this.last = -1;
      this.length = options.suffix;
    } else {
      this.suffix = null;
      this.first = options.start;
      this.last = options.end;
      this.length = options.end - options.start + 1;
      this.markPlaced();
    }
    this.events.setMaxListeners(0);
    void this.run();
  }

  get start(): number {
    return this.first;
  }

  get end(): number {
    return this.last;
  }

  /** The position of the next byte to arrive (the start until the upstream answers). */
  get reached(): number {
    return this.first + this.received;
  }

  get isPlaced(): boolean {
    return this.first >= 0;
  }

  /** Places a suffix range once the blob's size is known, before the upstream answered. */
  placeIn(size: number): void {
    if (this.suffix === null || this.isPlaced) return;
    this.place(Math.max(0, size - this.suffix), size - 1);
  }

  private place(start: number, end: number): void {
    this.first = start;
    this.last = end;
    this.markPlaced();
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
      const res = await this.request();
      this.markAnswered(res.size);
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
        const room = this.end - this.start + 1 - this.received;
        if (data.length > room) data = data.subarray(0, room);
        if (data.length > 0) {
          this.chunks.push({ at: this.start + this.received, data });
          this.received += data.length;
          this.options.onBytes?.(data.length);
          this.events.emit('change');
        }
        if (this.received === this.end - this.start + 1) {
          res.stream.destroy();
          break;
        }
      }
      if (this.received < this.end - this.start + 1) throw new Error(`upstream ended range ${this.start}-${this.end} after ${this.received} bytes`);
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
    } finally {
      this.finished = true;
      this.markPlaced();
      this.markAnswered(null);
      this.events.emit('change');
    }
  }

  /** The upstream answer, with the range placed (a suffix range by the answer, checked against a size learnt meanwhile). */
  private async request(): Promise<{ stream: Readable; ranged: boolean; size: number }> {
    const options = this.options;
    if (!('suffix' in options)) return options.open(this.start, this.end, this.abort.signal);
    const res = await options.openSuffix(options.suffix, this.abort.signal);
    const start = Math.max(0, res.size - options.suffix);
    if (res.ranged && res.start !== start) {
      res.stream.destroy();
      throw new Error(`upstream answered bytes=-${options.suffix} from byte ${res.start} of ${res.size}`);
    }
    if (!this.isPlaced) this.place(start, res.size - 1);
    else if (this.start !== start || this.end !== res.size - 1) {
      res.stream.destroy();
      throw new Error(`upstream answered bytes=-${options.suffix} for a blob of ${res.size} bytes, not ${this.end + 1}`);
    }
    return res;
  }
}
