import { oci } from '@entrepot/registry-core';
import { sleep } from '../../../../testing/tools';
import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';
import { jobRuns, lifecycleOverrides, pull, pushTestImage, runJob, tagsOf } from './lifecycle-fixture';

describe('cache.expire: idle expiry (embedded backends)', () => {
  let fx: CacheFixture;

  beforeAll(async () => {
    fx = await startCacheFixture({ auth: { mode: 'anonymous' }, entrepot: { overrides: lifecycleOverrides() } });
  }, 60_000);

  afterAll(() => fx.stop());

  it('removes tags nobody pulled for idle_expiration_s and their blobs, keeps pulled, pinned and shared content', async () => {
    const idle = await pushTestImage(fx.upstream, fx.work, 'library/idle', '1');
    const hot = await pushTestImage(fx.upstream, fx.work, 'library/hot', '1');
    const pinned = await pushTestImage(fx.upstream, fx.work, 'library/pinned', '1');
    const shared = await pushTestImage(fx.upstream, fx.work, 'library/shared', '1');
    await fx.createCacheOrg('exp', { expiration_s: 3600, idle_expiration_s: 4 });
    await fx.createCacheOrg('keeper', { expiration_s: 3600 });
    for (const name of ['idle', 'hot', 'pinned', 'shared']) await pull(fx.entrepot, fx.work, `exp/library/${name}:1`);
    // Another organization caches the same image as exp's idle `shared` tag.
    expect(await pull(fx.entrepot, fx.work, 'keeper/library/shared:1')).toBe(shared.pushed);
    expect((await fx.entrepot.api('PUT', '/repository/exp/library/pinned/tag/1/pin')).status).toBe(200);
    const storage = fx.entrepot.entrepot.services.storage;
    const idleLayer = oci.parseDigest(idle.manifests[0].layers[0].digest);
    const sharedLayer = oci.parseDigest(shared.manifests[0].layers[0].digest);
    expect(await storage.blobs.stat(idleLayer)).not.toBeNull();

    // Only `hot` is pulled while the others go idle.
    for (let i = 0; i < 5; i++) {
      await sleep(1000);
      expect(await pull(fx.entrepot, fx.work, 'exp/library/hot:1')).toBe(hot.pushed);
    }
    await runJob(fx.entrepot, 'cache.expire', 'exp');
    // The collection the expiry asked for runs on the same queue.
    await fx.entrepot.entrepot.services.queue.drain(30_000);

    expect(await tagsOf(fx.entrepot, 'exp/library/idle')).toEqual([]);
    expect(await tagsOf(fx.entrepot, 'exp/library/shared')).toEqual([]);
    expect(await tagsOf(fx.entrepot, 'exp/library/hot')).toEqual(['1']);
    expect(await tagsOf(fx.entrepot, 'exp/library/pinned')).toEqual(['1']);
    expect(await storage.blobs.stat(idleLayer)).toBeNull();
    expect(await storage.blobs.stat(sharedLayer)).not.toBeNull();

    // What stayed is served from the cache alone, in both organizations.
    fx.upstream.resetLog();
    expect(await pull(fx.entrepot, fx.work, 'keeper/library/shared:1')).toBe(shared.pushed);
    expect(await pull(fx.entrepot, fx.work, 'exp/library/pinned:1')).toBe(pinned.pushed);
    expect((await fx.upstream.settledRequests()).filter((r) => r.method === 'GET')).toEqual([]);

    const logs = await fx.entrepot.api('GET', '/organization/exp/logs?kind=expire_cache');
    const text = JSON.stringify(logs.body);
    expect(text).toContain('library/idle:1');
    expect(text).toContain('library/shared:1');
    expect(text).not.toContain('library/hot');
    expect(text).not.toContain('library/pinned');
    const runs = await jobRuns(fx.entrepot, 'exp', 'cache.expire');
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ job: 'cache.expire', state: 'completed', summary: { tags: 2, idle_expiration_s: 4 } });
    // The idle layer and its manifest and config were counted against exp; the shared one too (exp no longer counts it).
    expect(Number(runs[0].summary.bytes)).toBeGreaterThan(2 * 200_000);
    const metrics = await (await fetch(`${fx.entrepot.url}/metrics`)).text();
    expect(metrics).toMatch(/entrepot_cache_expired_total\{org="exp"\} 2\b/);
    expect(metrics).toMatch(new RegExp(`entrepot_cache_expired_bytes_total\\{org="exp"\\} ${runs[0].summary.bytes}\\b`));
    expect(metrics).toMatch(/entrepot_cache_jobs_total\{job="cache.expire",state="completed"\} 1\b/);

    // Idempotent: a second run finds nothing to remove (hot is pulled again so it stays hot).
    expect(await pull(fx.entrepot, fx.work, 'exp/library/hot:1')).toBe(hot.pushed);
    await runJob(fx.entrepot, 'cache.expire', 'exp');
    const again = await jobRuns(fx.entrepot, 'exp', 'cache.expire');
    expect(again).toHaveLength(2);
    expect(again[0].state).toBe('completed');
    expect(again[0].summary).toEqual({});
    expect(await tagsOf(fx.entrepot, 'exp/library/hot')).toEqual(['1']);
  }, 120_000);

  it('is off by default, and the setting is validated', async () => {
    const config = await fx.entrepot.api('GET', '/organization/keeper/proxycache');
    expect(config.body).toMatchObject({ idle_expiration_s: null, refresh_min_pulls: null, prefetch_changed_tags: false, low_watermark: null });
    const bad = await fx.entrepot.api('POST', '/organization/keeper/proxycache', { upstream_registry: 'docker.io', upstream_endpoint: fx.upstream.url, insecure: true, idle_expiration_s: -1 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('idle_expiration_s');
    const badMark = await fx.entrepot.api('POST', '/organization/keeper/proxycache', { upstream_registry: 'docker.io', upstream_endpoint: fx.upstream.url, insecure: true, low_watermark: 1.5 });
    expect(badMark.status).toBe(400);
    const jobsBad = await fx.entrepot.api('GET', '/organization/keeper/proxycache/jobs?job=nope');
    expect(jobsBad.status).toBe(400);
    await runJob(fx.entrepot, 'cache.expire', 'keeper');
    expect(await tagsOf(fx.entrepot, 'keeper/library/shared')).toEqual(['1']);
  }, 60_000);
});
