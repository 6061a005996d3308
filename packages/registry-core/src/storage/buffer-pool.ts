/**
 * Fixed-size buffers reused for streaming blob bytes. Allocating a fresh
 * buffer per chunk makes V8 count every served megabyte as new external
 * memory and collect garbage every few dozen megabytes, which halves the
 * throughput of a large heap; a buffer handed back after its bytes reached
 * the socket is read into again instead.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  /**
   * Buffers out on loan, each with the object it was lent as (a new one per
   * loan), so a stray or repeated release can never put a buffer in use twice.
   */
  private readonly loans = new WeakMap<ArrayBufferLike, Buffer>();
  /** Lent buffers whose bytes a consumer took on (`claim`), so that `releaseUnclaimed` leaves them be. */
  private readonly claimed = new WeakSet<ArrayBufferLike>();
  /** Buffers created so far (reuse keeps this near the number of concurrent streams). */
  allocated = 0;

  /** Free buffers kept for reuse; beyond that, returned ones are left to the garbage collector. */
  private readonly maxFree: number;

  constructor(
    readonly chunkSize = 512 * 1024,
    /**
     * Bytes of free buffers kept. Enough for the buffers a burst has out on
     * loan: dropping returned buffers while others are allocated left tens of
     * megabytes of them waiting for collection (docs/BENCHMARKS.md, memory).
     * The idle collection lets go of them all (`shrink`).
     */
    maxFreeBytes = 64 * 1024 * 1024,
  ) {
    this.maxFree = Math.max(1, Math.floor(maxFreeBytes / chunkSize));
  }

  acquire(): Buffer {
    let buffer = this.free.pop();
    if (!buffer) {
      buffer = Buffer.allocUnsafeSlow(this.chunkSize);
      this.allocated++;
    }
    this.loans.set(buffer.buffer, buffer);
    return buffer;
  }

  /**
   * Returns a buffer from `acquire` (or a view of it) once nothing reads its
   * bytes any more. Anything else is ignored.
   */
  release(chunk: Buffer): void {
    const memory = chunk.buffer;
    if (!this.loans.has(memory)) return;
    this.loans.delete(memory);
    this.claimed.delete(memory);
    if (this.free.length < this.maxFree) this.free.push(Buffer.from(memory, 0, this.chunkSize));
  }

  /** Marks a lent buffer as holding bytes a consumer passes on: only `release` brings it back. */
  claim(chunk: Buffer): void {
    if (this.loans.has(chunk.buffer)) this.claimed.add(chunk.buffer);
  }

  /**
   * Brings back `loan`, the very buffer `acquire` returned, if nobody claimed
   * it: one a reader filled and its parser has done with (a response head, a
   * body copied out) without handing it on. Nothing happens once it was
   * released, even if its memory is out on a new loan by now.
   */
  releaseUnclaimed(loan: Buffer): void {
    if (this.loans.get(loan.buffer) === loan && !this.claimed.has(loan.buffer)) this.release(loan);
  }

  /** Lets go of the free buffers (the process is idle: their memory may go back to the system). Lent ones are unaffected. */
  shrink(): void {
    this.free.length = 0;
  }

  /** Free buffers kept for reuse. */
  get kept(): number {
    return this.free.length;
  }
}
