import { type CorePorts, type OrganizationRow } from '@entrepot/registry-core';
import { STATS_COLUMNS, type StatsColumn } from '../config/lifecycle-migration';
import { HOUR_MS, hourOf } from './stats-recorder';

export type StatsWindow = '24h' | '7d' | '30d';

/** Each window's length and the width of its chart buckets. */
export const WINDOWS: Record<StatsWindow, { hours: number; bucketHours: number }> = {
  '24h': { hours: 24, bucketHours: 1 },
  '7d': { hours: 7 * 24, bucketHours: 6 },
  '30d': { hours: 30 * 24, bucketHours: 24 },
};

const TOP_REPOSITORIES = 10;

type Totals = Record<StatsColumn, number>;

export interface UpstreamHealth {
  host: string;
  breaker: string;
}

function zero(): Totals {
  return Object.fromEntries(STATS_COLUMNS.map((c) => [c, 0])) as Totals;
}

function ratio(part: number, whole: number): number | null {
  return whole === 0 ? null : part / whole;
}

function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/**
 * The statistics API's answer for one organization and window, from the
 * hourly rows every replica adds to (see StatsRecorder). The window ends with
 * the current hour; chart buckets are `bucketHours` wide.
 */
export async function cacheStats(core: CorePorts, org: OrganizationRow, window: StatsWindow, health: UpstreamHealth): Promise<Record<string, unknown>> {
  const db = core.db;
  const now = core.clock.now();
  const { hours, bucketHours } = WINDOWS[window];
  const to = hourOf(now) + HOUR_MS;
  const from = to - hours * HOUR_MS;
  const sums = STATS_COLUMNS.map((c) => db.raw(`SUM(${c}) AS ${c}`));
  const byHour = (await db('proxy_cache_stats').where({ org_id: org.id }).where('hour', '>=', from).where('hour', '<', to).groupBy('hour').select('hour', ...sums)) as Array<Record<string, unknown>>;
  const totals = zero();
  const buckets = Array.from({ length: hours / bucketHours }, (_, i) => ({ start: from + i * bucketHours * HOUR_MS, ...zero() }));
  for (const row of byHour) {
    const bucket = buckets[Math.floor((Number(row.hour) - from) / (bucketHours * HOUR_MS))];
    for (const c of STATS_COLUMNS) {
      const value = Number(row[c] ?? 0);
      totals[c] += value;
      if (bucket) bucket[c] += value;
    }
  }
  const repoRows = (await db('proxy_cache_stats')
    .where({ org_id: org.id })
    .where('hour', '>=', from)
    .where('hour', '<', to)
    .whereNot('repo', '')
    .groupBy('repo')
    .select('repo', db.raw('SUM(pulls) AS pulls'), db.raw('SUM(cache_bytes) AS saved'), db.raw('SUM(cache_requests) AS hits'), db.raw('SUM(upstream_requests) AS misses'))) as Array<Record<string, unknown>>;
  const repos = repoRows.map((r) => ({ repository: String(r.repo), pulls: Number(r.pulls), bytes_saved: Number(r.saved), cache_requests: Number(r.hits), upstream_requests: Number(r.misses) }));
  const errorRows = (await db('proxy_cache_upstream_errors').where({ host: health.host }).where('hour', '>=', from).where('hour', '<', to).groupBy('kind').select('kind', db.raw('SUM(count) AS n'))) as Array<Record<string, unknown>>;
  const status = (await db('proxy_cache_upstream_status').where({ host: health.host }).first()) as Record<string, unknown> | undefined;
  const quota = await core.quotas.get(org.id);
  const usage = await core.quotas.usage(org.id);
  const ratelimitAt = status?.ratelimit_at === null || status?.ratelimit_at === undefined ? null : Number(status.ratelimit_at);
  const errorAt = status?.last_error_at === null || status?.last_error_at === undefined ? null : Number(status.last_error_at);
  return {
    organization: org.name,
    window,
    from: iso(from),
    to: iso(to),
    bucket_seconds: bucketHours * 3600,
    requests: { cache: totals.cache_requests, upstream: totals.upstream_requests, hit_ratio: ratio(totals.cache_requests, totals.cache_requests + totals.upstream_requests) },
    bytes: { cache: totals.cache_bytes, upstream: totals.upstream_bytes, saved: totals.cache_bytes, hit_ratio: ratio(totals.cache_bytes, totals.cache_bytes + totals.upstream_bytes) },
    pulls: totals.pulls,
    revalidations: { unchanged: totals.revalidated_unchanged, changed: totals.revalidated_changed },
    stale_serves: totals.stale_serves,
    evictions: { count: totals.evictions, bytes: totals.evicted_bytes },
    expiries: { count: totals.expiries, bytes: totals.expired_bytes },
    upstream: {
      host: health.host,
      breaker: health.breaker,
      errors: Object.fromEntries(errorRows.map((r) => [String(r.kind), Number(r.n)])),
      last_error: errorAt === null ? null : { kind: String(status?.last_error_kind), at: iso(errorAt) },
      rate_limit: ratelimitAt === null ? null : { remaining: Number(status?.ratelimit_remaining), at: iso(ratelimitAt), age_s: Math.max(0, Math.round((now - ratelimitAt) / 1000)) },
    },
    quota: { limit_bytes: quota?.limitBytes ?? null, usage_bytes: usage, usage_ratio: quota ? ratio(usage, quota.limitBytes) : null },
    top_repositories: {
      by_pulls: [...repos].filter((r) => r.pulls > 0).sort((a, b) => b.pulls - a.pulls || a.repository.localeCompare(b.repository)).slice(0, TOP_REPOSITORIES),
      by_bytes_saved: [...repos].filter((r) => r.bytes_saved > 0).sort((a, b) => b.bytes_saved - a.bytes_saved || a.repository.localeCompare(b.repository)).slice(0, TOP_REPOSITORIES),
    },
    series: buckets.map(({ start, ...counts }) => ({ start: iso(start), ...counts })),
  };
}
