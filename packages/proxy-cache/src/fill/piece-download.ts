import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { isRecyclingStream } from '@entrepot/registry-core';

/** A ranged upstream GET of bytes [start, end]; `ranged` false when the upstream answered 200 with the whole blob; `size` the whole blob's. */
export type RangeOpener = (start: number, end: number, signal: AbortSignal) => Promise<{ stream: Readable; ranged: boolean; size: number }>;

export interface PieceDownloadOptions {
  start: number;
  end: number;
  open: RangeOpener;
  /** Whether a failure may be retried (network, timeout, 5xx). */
  isRetryable(err: unknown): boolean;
  maxRetries: number;
  onBytes?(bytes: number): void;
  /** Called once when the download has ended (the piece may still be unread); `complete` false when it failed or Range was ignored. */
  onSettled?(complete: boolean): void;
  /** Called once when the download starts and once when it ends, whatever the outcome. */
  onActive?(active: boolean): void;
  /**
   * Called once when what is left of the piece would arrive within about one
   * request's time to first byte (or when the download settled first), so the
   * next request on this connection's behalf goes out before this one ends.
   * Not called for a piece that failed or was refused.
   */
  onNearlyDone?(): void;
}

/**
 * One piece of a blob fetched with a Range request and kept in memory until
 * read. A connection that breaks is resumed from the piece's last byte, up to
 * `maxRetries` times, without touching the other pieces. When the upstream
 * ignores Range, the piece ends at once with `ranged` false and no bytes.
 */
export class PieceDownload {
  readonly start: number;
  readonly end: number;
  /** Resolves with false when the upstream ignored Range, true once a 206 arrived; rejects when the piece failed. */
  readonly honoured: Promise<boolean>;
  private readonly chunks: Buffer[] = [];
  /** Hands a chunk back to the reusable buffers it arrived in (pooled upstream bodies). */
  private recycle: ((chunk: Buffer) => void) | null = null;
  private received = 0;
  private finished = false;
  private failure: Error | null = null;
  private readonly events = new EventEmitter();
  private readonly abort = new AbortController();
  private settleHonoured!: (ranged: boolean) => void;
  private failHonoured!: (err: Error) => void;
  private nearlyDoneCalled = false;
  /** Whether the upstream answered 206 (true) or 200 (false); null before it answered. */
  answeredRanged: boolean | null = null;

  constructor(private readonly options: PieceDownloadOptions) {
    this.start = options.start;
    this.end = options.end;
    this.events.setMaxListeners(0);
    this.honoured = new Promise<boolean>((resolve, reject) => {
      this.settleHonoured = resolve;
      this.failHonoured = reject;
    });
    this.honoured.catch(() => undefined);
    options.onActive?.(true);
    void this.run().then(
      (complete) => {
        options.onActive?.(false);
        if (complete) this.nearlyDone();
        options.onSettled?.(complete);
      },
      () => undefined,
    );
  }

  get length(): number {
    return this.end - this.start + 1;
  }

  /** Stops the download; readers get an error. Chunks nobody took go back to their buffers. */
  cancel(reason: Error): void {
    this.abort.abort(reason);
    for (let i = 0; i < this.chunks.length; i++) {
      if (this.chunks[i] !== EMPTY) this.recycle?.(this.chunks[i]);
      this.chunks[i] = EMPTY;
    }
  }

  /** The piece's bytes in order as they arrive; each chunk is handed out once and then forgotten. */
  async *take(): AsyncGenerator<Buffer> {
    let next = 0;
    for (;;) {
      while (next < this.chunks.length) {
        const chunk = this.chunks[next];
        this.chunks[next++] = EMPTY;
        // Emptied by a cancel: its bytes are back in their buffer.
        if (chunk !== EMPTY) yield chunk;
      }
      if (this.failure) throw this.failure;
      if (this.finished) return;
      await new Promise<void>((resolve) => this.events.once('change', resolve));
    }
  }

  /** True when every byte arrived in 206 answers. */
  private async run(): Promise<boolean> {
    let retries = 0;
    for (;;) {
      try {
        const askedAt = performance.now();
        const res = await this.options.open(this.start + this.received, this.end, this.abort.signal);
        if (!res.ranged) {
          res.stream.destroy();
          // Half a piece then a whole body: the rest cannot be placed; the fill resumes instead.
          if (this.received > 0) throw new Error(`upstream stopped honouring Range within piece ${this.start}-${this.end}`);
          this.answeredRanged = false;
          this.settleHonoured(false);
          this.finish();
          return false;
        }
        this.answeredRanged = true;
        this.settleHonoured(true);
        let firstAt = -1;
        let firstBytes = 0;
        if (isRecyclingStream(res.stream)) {
          const source = res.stream;
          this.recycle = (chunk) => source.recycle(chunk);
        }
        for await (const chunk of res.stream as AsyncIterable<Buffer>) {
          if (this.abort.signal.aborted) {
            // Arrived after a cancel: nobody will take it.
            this.recycle?.(chunk);
            throw this.abort.signal.reason;
          }
          if (firstAt < 0) {
            firstAt = performance.now();
            firstBytes = this.received;
          }
          this.chunks.push(chunk);
          this.received += chunk.length;
          this.options.onBytes?.(chunk.length);
          this.events.emit('change');
          this.checkNearlyDone(firstAt - askedAt, this.received - firstBytes, performance.now() - firstAt);
        }
        this.finish();
        return true;
      } catch (err) {
        if (!this.abort.signal.aborted && retries < this.options.maxRetries && this.options.isRetryable(err)) {
          retries++;
          continue;
        }
        this.failure = err instanceof Error ? err : new Error(String(err));
        this.failHonoured(this.failure);
        this.events.emit('change');
        return false;
      }
    }
  }

  /** Whether the rest, at the rate seen so far, arrives within the time this request took to its first byte. */
  private checkNearlyDone(ttfbMs: number, bytes: number, elapsedMs: number): void {
    if (this.nearlyDoneCalled) return;
    const left = this.length - this.received;
    if (nearlyThere(left, this.length, bytes, elapsedMs, ttfbMs)) this.nearlyDone();
  }

  private nearlyDone(): void {
    if (this.nearlyDoneCalled) return;
    this.nearlyDoneCalled = true;
    this.options.onNearlyDone?.();
  }

  private finish(): void {
    this.finished = true;
    this.events.emit('change');
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Whether `left` bytes of a download of `length` arrive within `leadMs` at the
 * rate seen so far (`bytes` in `elapsedMs`). The rate counts only once half
 * the download has arrived (the first chunks come in bursts), and never more
 * than the last eighth overlaps the next request (a slow answer is no reason
 * to hold two connections for long).
 */
export function nearlyThere(left: number, length: number, bytes: number, elapsedMs: number, leadMs: number): boolean {
  if (left <= 0) return true;
  if (left > length / 8 || elapsedMs <= 0) return false;
  return left <= (bytes / elapsedMs) * leadMs;
}
