import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';
import { lifecycleOverrides } from '../lifecycle/lifecycle-fixture';
import { StatsRecorder } from '../../src/stats/stats-recorder';
import { runKnownSequence, type ExpectedStats } from './stats-fixture';

describe('cache statistics API (embedded backends)', () => {
  let fx: CacheFixture;
  let expected: ExpectedStats;

  beforeAll(async () => {
    fx = await startCacheFixture({ auth: { mode: 'anonymous' }, entrepot: { overrides: lifecycleOverrides() } });
    await fx.createCacheOrg('st', { expiration_s: 2 });
    await fx.createCacheOrg('quiet', { expiration_s: 3600 });
    expected = await runKnownSequence(fx.entrepot, fx.upstream, fx.work, 'st');
  }, 120_000);

  afterAll(() => fx.stop());

  it('returns exact counts and bytes after a known sequence of misses, hits and a stale serve', async () => {
    const res = await fx.entrepot.api('GET', '/organization/st/proxycache/stats?window=24h');
    expect(res.status).toBe(200);
    const stats = res.body as Record<string, any>;
    const e = expected;
    expect(stats.requests).toEqual({ cache: e.cacheRequests, upstream: e.upstreamRequests, hit_ratio: e.cacheRequests / (e.cacheRequests + e.upstreamRequests) });
    expect(stats.bytes).toEqual({ cache: e.cacheBytes, upstream: e.upstreamBytes, saved: e.cacheBytes, hit_ratio: e.cacheBytes / (e.cacheBytes + e.upstreamBytes) });
    expect(stats.pulls).toBe(e.pulls);
    expect(stats.stale_serves).toBe(e.staleServes);
    expect(stats.revalidations).toEqual({ unchanged: 0, changed: 0 });
    expect(stats.upstream.host).toBe(new URL(fx.upstream.url).host);
    expect(stats.upstream.errors.network).toBeGreaterThanOrEqual(1);
    expect(stats.upstream.last_error).toMatchObject({ kind: 'network' });
    expect(stats.top_repositories.by_pulls).toEqual([{ repository: 'library/app', pulls: e.pulls, bytes_saved: e.cacheBytes, cache_requests: e.cacheRequests, upstream_requests: e.upstreamRequests }]);
    expect(stats.top_repositories.by_bytes_saved[0]).toMatchObject({ repository: 'library/app', bytes_saved: e.cacheBytes });
    expect(stats.quota).toMatchObject({ limit_bytes: null });
    expect(stats.quota.usage_bytes).toBeGreaterThan(300_000);
    // 24 hourly buckets; everything happened in the last one (or the two last, across an hour).
    expect(stats.series).toHaveLength(24);
    expect(stats.bucket_seconds).toBe(3600);
    const summed = (stats.series as Array<Record<string, number>>).reduce((a, b) => a + b.cache_bytes, 0);
    expect(summed).toBe(e.cacheBytes);
  });

  it('switches windows, keeps organizations apart and refuses a bad window', async () => {
    const week = (await fx.entrepot.api('GET', '/organization/st/proxycache/stats?window=7d')).body as Record<string, any>;
    expect(week.series).toHaveLength(28);
    expect(week.bucket_seconds).toBe(6 * 3600);
    expect(week.requests.cache).toBe(expected.cacheRequests);
    const month = (await fx.entrepot.api('GET', '/organization/st/proxycache/stats?window=30d')).body as Record<string, any>;
    expect(month.series).toHaveLength(30);
    expect(month.bytes.upstream).toBe(expected.upstreamBytes);
    const quiet = (await fx.entrepot.api('GET', '/organization/quiet/proxycache/stats')).body as Record<string, any>;
    expect(quiet.requests).toEqual({ cache: 0, upstream: 0, hit_ratio: null });
    expect(quiet.top_repositories).toEqual({ by_pulls: [], by_bytes_saved: [] });
    const bad = await fx.entrepot.api('GET', '/organization/st/proxycache/stats?window=1y');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('window');
  });

  it('keeps hourly rows in the database and prunes them after 90 days', async () => {
    const db = fx.entrepot.entrepot.services.db;
    const org = await fx.entrepot.entrepot.services.repositories.findOrg('st');
    const rows = await db('proxy_cache_stats').where({ org_id: org!.id });
    // One row per hour and repository, not one per pull.
    expect(rows.length).toBeLessThanOrEqual(2);
    const old = Date.now() - 91 * 24 * 3600_000;
    await db('proxy_cache_stats').insert({ org_id: org!.id, hour: Math.floor(old / 3600_000) * 3600_000, repo: 'library/old', pulls: 5 });
    // A recorder's first write of an hour prunes what is past the retention.
    const recorder = new StatsRecorder(db, { now: () => Date.now() }, fx.entrepot.entrepot.services.logger, 60_000);
    recorder.expiry(org!.id, 1, 10);
    await recorder.flush();
    expect(await db('proxy_cache_stats').where({ repo: 'library/old' })).toEqual([]);
    const after = (await fx.entrepot.api('GET', '/organization/st/proxycache/stats')).body as Record<string, any>;
    expect(after.expiries).toEqual({ count: 1, bytes: 10 });
  });
});
