/**
 * Bytes every parallel fill of the process together may hold in pieces
 * downloaded ahead of what their readers have taken. Each fill bounds its own
 * (twice its connections' pieces); this bounds their sum, so many concurrent
 * cold pulls from a capped upstream cannot multiply that into gigabytes. A
 * fill always has the piece its reader is on, budget or not: the budget only
 * decides how far ahead it may run.
 */
export class PieceBudget {
  private held = 0;

  constructor(private readonly maxBytes: number) {}

  /** Takes `bytes` when they fit; false leaves the budget as it was. */
  tryTake(bytes: number): boolean {
    if (this.held + bytes > this.maxBytes) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
  }

  /** Bytes taken now (for the gauge). */
  get taken(): number {
    return this.held;
  }
}
