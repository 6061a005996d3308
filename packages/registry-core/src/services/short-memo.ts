import { LRUCache } from 'lru-cache';
import type { Clock } from './clock';

/**
 * Answers read from the database kept for a moment, for lookups every pull
 * makes whose rows change rarely (a cache organization's settings, when a tag
 * was last checked upstream). A change made through the owner applies at once
 * (`set` / `delete`); one made by another replica within `ttlMs`. Bounded by
 * entry count, least recently used first out.
 */
export class ShortMemo<K extends string | number, V> {
  private readonly entries: LRUCache<K, { value: V; expires: number }>;

  constructor(
    private readonly clock: Clock,
    private readonly options: { ttlMs: number; maxEntries: number },
  ) {
    this.entries = new LRUCache({ max: options.maxEntries });
  }

  /** The kept answer (which may be null: "no such row"), or undefined when none is kept or it expired. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expires > this.clock.now()) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  set(key: K, value: V): void {
    this.entries.set(key, { value, expires: this.clock.now() + this.options.ttlMs });
  }

  delete(key: K): void {
    this.entries.delete(key);
  }
}
