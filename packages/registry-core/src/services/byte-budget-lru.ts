/**
 * A least-recently-used map bounded by the total size of its values, for
 * immutable content addressed by digest (manifest bodies): entries never go
 * stale, they only make room.
 */
export class ByteBudgetLru<K> {
  private readonly entries = new Map<K, Buffer>();
  private bytes = 0;

  constructor(private readonly budget: number) {}

  get(key: K): Buffer | undefined {
    const value = this.entries.get(key);
    if (value) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: Buffer): void {
    if (value.length > this.budget / 8) return;
    const previous = this.entries.get(key);
    if (previous) {
      this.bytes -= previous.length;
      this.entries.delete(key);
    }
    this.entries.set(key, value);
    this.bytes += value.length;
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= this.budget) break;
      this.entries.delete(oldest);
      this.bytes -= old.length;
    }
  }

  delete(key: K): void {
    const value = this.entries.get(key);
    if (!value) return;
    this.entries.delete(key);
    this.bytes -= value.length;
  }
}
