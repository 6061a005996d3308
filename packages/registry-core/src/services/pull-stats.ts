import { inTransaction, yieldToRequests, type Db } from '../db/database';
import type { Logger } from '../logging/logger';
import type { Clock } from './clock';

/** Tags updated per transaction when statistics are written. */
const FLUSH_CHUNK = 50;
const ADD_PULLS = 'UPDATE tags SET pull_count = pull_count + ?, last_pulled_at = ? WHERE repo_id = ? AND name = ?';

interface PendingPulls {
  repoId: number;
  tag: string;
  count: number;
  lastAt: number;
}

/**
 * Per-tag pull statistics (last pulled, pull count), recorded in memory on the
 * hot path and written in batches, so a pull costs no database write.
 */
export class PullStats {
  private pending = new Map<string, PendingPulls>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly flushIntervalMs: number,
  ) {}

  record(repoId: number, tag: string): void {
    const key = `${repoId}\u0000${tag}`;
    const entry = this.pending.get(key);
    const now = this.clock.now();
    if (entry) {
      entry.count++;
      entry.lastAt = now;
    } else {
      this.pending.set(key, { repoId, tag, count: 1, lastAt: now });
    }
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.flush().catch((err: unknown) => this.logger.warn('pull statistics not written; will retry', { error: String(err) }));
    }, this.flushIntervalMs);
    this.timer.unref();
  }

  /** Writes what was recorded so far (eviction calls this before ranking tags). */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      // Short transactions: one commit per chunk instead of per tag, and requests
      // get the event loop and the (single, on SQLite) connection between chunks.
      // One order on every replica, so concurrent flushes never deadlock on the same rows.
      const entries = [...batch].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      for (let i = 0; i < entries.length; i += FLUSH_CHUNK) {
        const chunk = entries.slice(i, i + FLUSH_CHUNK);
        await inTransaction(this.db, async (trx) => {
          // Fixed SQL: a query builder per tag cost twice what the update itself does.
          for (const [, entry] of chunk) await trx.raw(ADD_PULLS, [entry.count, entry.lastAt, entry.repoId, entry.tag]);
        });
        for (const [key] of chunk) batch.delete(key);
        await yieldToRequests();
      }
    } catch (err) {
      // Put the unwritten counts back so a database blip loses nothing.
      for (const [key, entry] of batch) {
        const newer = this.pending.get(key);
        if (newer) {
          newer.count += entry.count;
          newer.lastAt = Math.max(newer.lastAt, entry.lastAt);
        } else this.pending.set(key, entry);
      }
      throw err;
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush().catch((err: unknown) => this.logger.error('pull statistics lost at shutdown', { error: String(err) }));
  }
}
