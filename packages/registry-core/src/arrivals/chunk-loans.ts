import type { RecyclingStream } from '../storage/file-range-stream';

/**
 * Chunks a fill received in its source's reusable buffers (see
 * `RecyclingStream`), counted by their memory: the fill holds each while it
 * sits in the recent window, and every reader handed a view of one holds it
 * until the reader gives the view back. The last holder's return hands the
 * buffer back to its source. A holder that never returns a view only keeps
 * the buffer from reuse (the garbage collector takes it); an early return
 * would let the next socket read overwrite bytes still being sent, so every
 * view is counted, never guessed.
 */
export class ChunkLoans {
  private readonly held = new Map<ArrayBufferLike, { chunk: Buffer; holders: number; source: RecyclingStream }>();

  /** A chunk just received from `source`: held once, by the fill. */
  receive(chunk: Buffer, source: RecyclingStream): void {
    const loan = this.held.get(chunk.buffer);
    if (loan) loan.holders++;
    else this.held.set(chunk.buffer, { chunk, holders: 1, source });
  }

  /** Whether `view` is memory of a chunk on loan; if so it is held once more. */
  share(view: Buffer): boolean {
    const loan = this.held.get(view.buffer);
    if (!loan) return false;
    loan.holders++;
    return true;
  }

  /** Gives one hold on `view`'s chunk back; false when its memory is not on loan here. */
  giveBack(view: Buffer): boolean {
    const loan = this.held.get(view.buffer);
    if (!loan) return false;
    if (--loan.holders === 0) {
      this.held.delete(view.buffer);
      loan.source.recycle(loan.chunk);
    }
    return true;
  }
}
