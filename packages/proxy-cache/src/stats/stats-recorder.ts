import { type CacheResult, type PullEvent } from '@entrepot/registry-core';
import type { Clock, Db, Logger } from '../core-types';
import { STATS_COLUMNS, type StatsColumn } from '../config/lifecycle-migration';
import type { UpstreamResponseInfo } from '../upstream/http-transport';

export const HOUR_MS = 3600_000;
/** Statistics are kept this long. */
export const STATS_RETENTION_MS = 90 * 24 * HOUR_MS;

type Counters = Partial<Record<StatsColumn, number>>;

interface PendingRow {
  orgId: number;
  hour: number;
  repo: string;
  counters: Counters;
}

interface UpstreamStatus {
  ratelimitRemaining?: number;
  ratelimitAt?: number;
  lastErrorKind?: string;
  lastErrorAt?: number;
}

/** Answers served from storage; the others came from the upstream. */
const FROM_CACHE: ReadonlySet<CacheResult> = new Set(['hit', 'revalidated', 'stale']);
/** Failures that say nothing about the upstream's health. */
const NOT_ERRORS: ReadonlySet<string> = new Set(['notfound', 'cancelled']);

/**
 * Cache statistics in hourly buckets per organization and repository (and
 * upstream errors per host): counted in memory on the hot path and added to
 * the database's rows in batches, so a pull never writes a row and every
 * replica's counts add up in the same rows. Rows older than 90 days are pruned.
 */
export class StatsRecorder {
  private rows = new Map<string, PendingRow>();
  private errors = new Map<string, { host: string; hour: number; kind: string; count: number }>();
  private upstream = new Map<string, UpstreamStatus>();
  private timer: NodeJS.Timeout | null = null;
  private lastPruneHour = 0;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly flushIntervalMs: number,
  ) {}

  /** A cache organization's answer to a client (from the core's pull observer). */
  pull(orgId: number, event: PullEvent): void {
    const cache = FROM_CACHE.has(event.cacheResult);
    this.add(orgId, event.target.repoName, {
      pulls: event.kind === 'manifest' && event.tag !== undefined ? 1 : 0,
      [cache ? 'cache_requests' : 'upstream_requests']: 1,
      [cache ? 'cache_bytes' : 'upstream_bytes']: event.bytes,
    });
  }

  revalidation(orgId: number, repo: string, changed: boolean): void {
    this.add(orgId, repo, { [changed ? 'revalidated_changed' : 'revalidated_unchanged']: 1 });
  }

  staleServe(orgId: number, repo: string): void {
    this.add(orgId, repo, { stale_serves: 1 });
  }

  eviction(orgId: number, count: number, bytes: number): void {
    this.add(orgId, '', { evictions: count, evicted_bytes: bytes });
  }

  expiry(orgId: number, count: number, bytes: number): void {
    this.add(orgId, '', { expiries: count, expired_bytes: bytes });
  }

  /** A RateLimit-Remaining another replica saw (the upstream counts every replica's requests together). */
  rateLimit(host: string, remaining: number, at: number): void {
    const status = this.upstream.get(host) ?? {};
    if (status.ratelimitAt !== undefined && status.ratelimitAt > at) return;
    status.ratelimitRemaining = remaining;
    status.ratelimitAt = at;
    this.upstream.set(host, status);
  }

  /** Every upstream response or failure: errors by kind, and the last RateLimit-Remaining. */
  upstreamResponse(info: UpstreamResponseInfo): void {
    const now = this.clock.now();
    const status = this.upstream.get(info.host) ?? {};
    if (info.rateLimitRemaining !== undefined) {
      status.ratelimitRemaining = info.rateLimitRemaining;
      status.ratelimitAt = now;
    }
    const kind = errorKind(info);
    if (kind) {
      status.lastErrorKind = kind;
      status.lastErrorAt = now;
      const hour = hourOf(now);
      const key = `${info.host}|${hour}|${kind}`;
      const entry = this.errors.get(key) ?? { host: info.host, hour, kind, count: 0 };
      entry.count++;
      this.errors.set(key, entry);
    }
    if (status.ratelimitAt !== undefined || status.lastErrorAt !== undefined) this.upstream.set(info.host, status);
  }

  private add(orgId: number, repo: string, counters: Counters): void {
    if (!Object.values(counters).some((v) => v)) return;
    const hour = hourOf(this.clock.now());
    const key = `${orgId}|${hour}|${repo}`;
    const row = this.rows.get(key) ?? { orgId, hour, repo, counters: {} };
    for (const [column, value] of Object.entries(counters) as Array<[StatsColumn, number]>) {
      if (value) row.counters[column] = (row.counters[column] ?? 0) + value;
    }
    this.rows.set(key, row);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush().catch((err: unknown) => this.logger.warn('cache statistics not written; will retry', { error: String(err) })), this.flushIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush().catch((err: unknown) => this.logger.error('cache statistics lost at shutdown', { error: String(err) }));
  }

  /** Adds what was counted so far to the database (the stats API calls it before reading). One flush at a time. */
  flush(): Promise<void> {
    const next = this.flushing.then(() => this.write());
    this.flushing = next.catch(() => undefined);
    return next;
  }

  private async write(): Promise<void> {
    const rows = this.rows;
    const errors = this.errors;
    const upstream = this.upstream;
    this.rows = new Map();
    this.errors = new Map();
    this.upstream = new Map();
    try {
      await this.db.transaction(async (trx) => {
        // One order on every replica, so concurrent flushes never deadlock on the same rows.
        for (const row of [...rows.values()].sort(byKey)) {
          const increments: Record<string, unknown> = {};
          for (const [column, value] of Object.entries(row.counters)) increments[column] = trx.raw(`proxy_cache_stats.${column} + ?`, [value]);
          await trx('proxy_cache_stats').insert({ org_id: row.orgId, hour: row.hour, repo: row.repo, ...row.counters }).onConflict(['org_id', 'hour', 'repo']).merge(increments);
        }
        for (const e of [...errors.values()].sort((a, b) => `${a.host}|${a.hour}|${a.kind}`.localeCompare(`${b.host}|${b.hour}|${b.kind}`))) {
          await trx('proxy_cache_upstream_errors')
            .insert({ host: e.host, hour: e.hour, kind: e.kind, count: e.count })
            .onConflict(['host', 'hour', 'kind'])
            .merge({ count: trx.raw('proxy_cache_upstream_errors.count + ?', [e.count]) });
        }
        for (const [host, s] of [...upstream].sort(([a], [b]) => a.localeCompare(b))) {
          const patch: Record<string, unknown> = {};
          if (s.ratelimitAt !== undefined) Object.assign(patch, { ratelimit_remaining: s.ratelimitRemaining, ratelimit_at: s.ratelimitAt });
          if (s.lastErrorAt !== undefined) Object.assign(patch, { last_error_kind: s.lastErrorKind, last_error_at: s.lastErrorAt });
          await trx('proxy_cache_upstream_status').insert({ host, ...patch }).onConflict('host').merge(patch);
        }
      });
    } catch (err) {
      // Put the unwritten counts back so a database blip loses nothing.
      for (const row of rows.values()) for (const [column, value] of Object.entries(row.counters) as Array<[StatsColumn, number]>) this.addAt(row, column, value);
      for (const [key, e] of errors) {
        const newer = this.errors.get(key);
        if (newer) newer.count += e.count;
        else this.errors.set(key, e);
      }
      for (const [host, s] of upstream) if (!this.upstream.has(host)) this.upstream.set(host, s);
      throw err;
    }
    await this.prune();
  }

  private addAt(row: PendingRow, column: StatsColumn, value: number): void {
    const key = `${row.orgId}|${row.hour}|${row.repo}`;
    const pending = this.rows.get(key) ?? { orgId: row.orgId, hour: row.hour, repo: row.repo, counters: {} };
    pending.counters[column] = (pending.counters[column] ?? 0) + value;
    this.rows.set(key, pending);
  }

  /** Drops rows past the retention, at most once an hour per process. */
  private async prune(): Promise<void> {
    const hour = hourOf(this.clock.now());
    if (hour === this.lastPruneHour) return;
    this.lastPruneHour = hour;
    const cutoff = hour - STATS_RETENTION_MS;
    await this.db('proxy_cache_stats').where('hour', '<', cutoff).delete();
    await this.db('proxy_cache_upstream_errors').where('hour', '<', cutoff).delete();
  }
}

export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

function byKey(a: PendingRow, b: PendingRow): number {
  return a.orgId - b.orgId || a.hour - b.hour || (a.repo < b.repo ? -1 : a.repo > b.repo ? 1 : 0);
}

/** What counts as an upstream error: failures (not "does not exist"), 429 and 5xx answers. */
function errorKind(info: UpstreamResponseInfo): string | null {
  if (info.failure) return NOT_ERRORS.has(info.failure) ? null : info.failure;
  if (info.status === 429) return 'ratelimit';
  if (info.status >= 500) return 'status';
  return null;
}

export { STATS_COLUMNS };
