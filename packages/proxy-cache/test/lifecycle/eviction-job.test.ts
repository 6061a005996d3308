import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';

import { jobRuns, lifecycleOverrides, pull, pushTestImage } from './lifecycle-fixture';
import { eventually } from '../../../../testing/tools';

const LAYER = 4_000_000;

describe.each(['embedded', 'scale-out'] as const)('cache.evict: eviction in the background (%s backends)', (backend) => {
  let fx: CacheFixture;
  const pushed: Record<string, string> = {};

  beforeAll(async () => {
    fx = await startCacheFixture({ backend, auth: { mode: 'anonymous' }, entrepot: { overrides: lifecycleOverrides() } });
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']) pushed[name] = (await pushTestImage(fx.upstream, fx.work, `library/${name}`, '1', { layerSize: LAYER })).pushed;
    await fx.createCacheOrg('ev', { expiration_s: 3600 });
    expect((await fx.entrepot.api('POST', '/organization/ev/quota', { limit_bytes: 30_000_000 })).status).toBe(201);
  }, 120_000);

  afterAll(() => fx.stop());

  async function usage(): Promise<number> {
    const services = fx.entrepot.entrepot.services;
    return services.quotas.usage((await services.repositories.findOrg('ev'))!.id);
  }

  it('lowering a quota returns at once; the job evicts under the new limit while pulls complete with correct bytes', async () => {
    for (const name of ['a', 'b', 'c', 'd']) expect(await pull(fx.entrepot, fx.work, `ev/library/${name}:1`)).toBe(pushed[name]);
    expect(await usage()).toBeGreaterThan(4 * LAYER);
    const quota = ((await fx.entrepot.api('GET', '/organization/ev/quota')).body as Array<{ id: string }>)[0];
    const lowered = fx.entrepot.api('PUT', `/organization/ev/quota/${quota.id}`, { limit_bytes: 10_000_000 });
    // Pulls of cached and uncached images run while the eviction does.
    const pulls = ['d', 'e', 'a', 'f'].map((name) => pull(fx.entrepot, fx.work, `ev/library/${name}:1`).then((digest) => [name, digest]));
    expect((await lowered).status).toBe(200);
    for (const [name, digest] of await Promise.all(pulls)) expect(digest).toBe(pushed[name]);
    // The job is queued after the request that asks for it answers: wait until it has run, not only until the queue is empty.
    await eventually(async () => {
      await fx.entrepot.entrepot.services.queue.drain(60_000);
      return (await usage()) <= 10_000_000;
    }, 60_000);
    const runs = await jobRuns(fx.entrepot, 'ev', 'cache.evict');
    // Newest first: the run for the lowered limit (an earlier one followed the quota's creation).
    const run = runs[0];
    expect(run.state).toBe('completed');
    expect(Number(run.summary.target_bytes)).toBe(10_000_000);
    expect(Number(run.summary.usage_after)).toBeLessThanOrEqual(10_000_000);
    const metrics = await (await fetch(`${fx.entrepot.url}/metrics`)).text();
    expect(metrics).toMatch(/entrepot_cache_jobs_total\{job="cache.evict",state="completed"\} [1-9]/);
    expect(metrics).toMatch(/entrepot_cache_evictions_total\{org="ev",policy="lru"\} [1-9]/);
  }, 180_000);

  it('evicts down to the low watermark in the background once an admission goes above it', async () => {
    const config = await fx.entrepot.api('GET', '/organization/ev/proxycache');
    const body: Record<string, unknown> = { ...(config.body as Record<string, unknown>), low_watermark: 0.5 };
    // Fields the server derives are not settings: send back only what POST takes.
    delete body.upstream_registry_password_set;
    delete body.signature_key_fingerprints;
    expect((await fx.entrepot.api('POST', '/organization/ev/proxycache', body)).status).toBe(201);
    const quota = ((await fx.entrepot.api('GET', '/organization/ev/quota')).body as Array<{ id: string }>)[0];
    expect((await fx.entrepot.api('PUT', `/organization/ev/quota/${quota.id}`, { limit_bytes: 20_000_000 })).status).toBe(200);
    await fx.entrepot.entrepot.services.queue.drain(60_000);
    // Images the first test never pulled: each pull is an admission, whatever that test's eviction kept.
    for (const name of ['g', 'h', 'i']) expect(await pull(fx.entrepot, fx.work, `ev/library/${name}:1`)).toBe(pushed[name]);
    // The job is queued after the request that asks for it answers: wait until it has run, not only until the queue is empty.
    await eventually(async () => {
      await fx.entrepot.entrepot.services.queue.drain(60_000);
      return (await usage()) <= 10_000_000;
    }, 60_000);
    // The image pulled last is the most recently used: it stays.
    fx.upstream.resetLog();
    expect(await pull(fx.entrepot, fx.work, 'ev/library/i:1')).toBe(pushed.i);
    expect((await fx.upstream.settledRequests()).filter((r) => r.method === 'GET')).toEqual([]);
    const runs = await jobRuns(fx.entrepot, 'ev', 'cache.evict');
    expect(runs[0].summary).toMatchObject({ target_bytes: 10_000_000 });
  }, 180_000);
});
