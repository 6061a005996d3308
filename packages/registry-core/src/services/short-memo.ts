import { LRUCache } from 'lru-cache';
import type { ChangeNotices } from '../coordination/change-notices';
import type { Clock } from './clock';

export interface ShortMemoOptions {
  ttlMs: number;
  maxEntries: number;
  /**
   * When given, `forget` reaches every replica through these notices, so a
   * change applies everywhere at once; `ttlMs` then only bounds how long a
   * missed notice can leave a copy stale.
   */
  shared?: { notices: ChangeNotices; topic: string };
}

/**
 * Answers read from the database kept for a moment, for lookups every pull
 * makes whose rows change rarely (an organization and its repository, a cache
 * organization's settings, when a tag was last checked upstream). A change
 * made through the owner applies at once on this replica (`set` / `forget`),
 * on the others at once when the memo is shared and within `ttlMs` otherwise.
 * Bounded by entry count, least recently used first out.
 */
export class ShortMemo<K extends string | number, V> {
  /** Keyed by the key's string form, which is also what a change notice carries. */
  private readonly entries: LRUCache<string, { value: V; expires: number }>;
  /** Counts forgets, so that a read that was under way during one does not keep what it read. */
  private forgets = 0;

  constructor(
    private readonly clock: Clock,
    private readonly options: ShortMemoOptions,
  ) {
    this.entries = new LRUCache({ max: options.maxEntries });
    options.shared?.notices.subscribe(options.shared.topic, (key) => this.drop(key));
  }

  private drop(key: string | null): void {
    this.forgets += 1;
    if (key === null) this.entries.clear();
    else this.entries.delete(key);
  }

  /**
   * The kept answer when `reuse` accepts it, or else `load()`'s, kept when
   * `keep` allows it and nothing was forgotten while it loaded (the read may
   * have seen the row before the change).
   */
  async getOrLoad(key: K, load: () => Promise<V>, when: { keep?: (value: V) => boolean; reuse?: (kept: V) => boolean } = {}): Promise<V> {
    const kept = this.get(key);
    if (kept !== undefined && (!when.reuse || when.reuse(kept))) return kept;
    const forgetsBefore = this.forgets;
    const value = await load();
    if (this.forgets === forgetsBefore && (!when.keep || when.keep(value))) this.set(key, value);
    return value;
  }

  /** The kept answer (which may be null: "no such row"), or undefined when none is kept or it expired. */
  get(key: K): V | undefined {
    const entry = this.entries.get(String(key));
    if (!entry) return undefined;
    if (entry.expires > this.clock.now()) return entry.value;
    this.entries.delete(String(key));
    return undefined;
  }

  set(key: K, value: V): void {
    this.entries.set(String(key), { value, expires: this.clock.now() + this.options.ttlMs });
  }

  /** Drops the kept answer for `key` here and, when shared, on every replica. */
  async forget(key: K): Promise<void> {
    if (this.options.shared) await this.options.shared.notices.publish(this.options.shared.topic, String(key));
    else this.drop(String(key));
  }

  /** Drops every kept answer here and, when shared, on every replica. */
  async forgetAll(): Promise<void> {
    if (this.options.shared) await this.options.shared.notices.publish(this.options.shared.topic, null);
    else this.drop(null);
  }

  /** Drops the kept answer here only: for a change that other replicas learn of by other means. */
  delete(key: K): void {
    this.drop(String(key));
  }
}
