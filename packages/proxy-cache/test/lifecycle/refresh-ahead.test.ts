import { join } from 'node:path';
import { oci } from '@entrepot/registry-core';
import { createOciImage, MULTI_ARCH, pushImage } from '../../../../testing/oci-images';
import { sleep } from '../../../../testing/tools';
import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';
import { jobRuns, lifecycleOverrides, pull, pushTestImage } from './lifecycle-fixture';

/**
 * The staleness period of the test organizations; hot tags are refreshed from
 * 2 s (two intervals) before its end, which leaves the tests time for pulls and
 * pushes before the refresh on a busy machine.
 */
const PERIOD_S = 10;

describe('cache.refresh: hot tags revalidated ahead of time (embedded backends)', () => {
  let fx: CacheFixture;

  beforeAll(async () => {
    fx = await startCacheFixture({ auth: { mode: 'anonymous' }, entrepot: { overrides: lifecycleOverrides(1) } });
  }, 60_000);

  afterAll(() => fx.stop());

  async function tagDigest(repo: string, tag: string): Promise<string | null> {
    const res = await fx.entrepot.api('GET', `/repository/${repo}/tag/`);
    const found = (res.body as { tags?: Array<{ name: string; manifest_digest: string }> }).tags?.find((t) => t.name === tag);
    return found?.manifest_digest ?? null;
  }

  async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(200);
    }
  }

  it('serves a hot tag past its period with no upstream request on the pull path', async () => {
    const first = await pushTestImage(fx.upstream, fx.work, 'library/app', '1', { seed: 'first' });
    await fx.createCacheOrg('hot', { expiration_s: PERIOD_S, refresh_min_pulls: 2 });
    const cachedAt = Date.now();
    for (let i = 0; i < 3; i++) expect(await pull(fx.entrepot, fx.work, 'hot/library/app:1')).toBe(first.pushed);
    fx.upstream.resetLog();
    // Past the period since the tag was cached (and checked).
    await sleep(cachedAt + (PERIOD_S + 1) * 1000 - Date.now());
    // The job's HEAD came before the pull...
    const before = await fx.upstream.settledRequests();
    expect(before.filter((r) => r.method === 'HEAD' && r.path === '/v2/library/app/manifests/1')).toHaveLength(1);
    expect(before.filter((r) => r.method === 'GET')).toEqual([]);
    // ...and the pull, past the period since the pulls that made the tag hot, makes none.
    fx.upstream.resetLog();
    expect(await pull(fx.entrepot, fx.work, 'hot/library/app:1')).toBe(first.pushed);
    expect(await fx.upstream.settledRequests()).toEqual([]);

  }, 120_000);

  it('picks up a hot tag that changed upstream, fetching its new manifest and no blob', async () => {
    const first = await pushTestImage(fx.upstream, fx.work, 'library/svc', '1', { seed: 'svc-1' });
    for (let i = 0; i < 3; i++) expect(await pull(fx.entrepot, fx.work, 'hot/library/svc:1')).toBe(first.pushed);
    // Changed upstream well before the end of the period (the job's window starts 2 s before it).
    const second = await pushTestImage(fx.upstream, fx.work, 'library/svc', '1', { seed: 'svc-2' });
    fx.upstream.resetLog();
    await waitFor('the refresh to pick up the new tag', async () => (await tagDigest('hot/library/svc', '1')) === second.pushed);
    const refresh = await fx.upstream.settledRequests();
    expect(refresh.filter((r) => r.method === 'GET' && r.path === '/v2/library/svc/manifests/1')).toHaveLength(1);
    expect(refresh.filter((r) => r.path.includes('/blobs/'))).toEqual([]);
    expect(await pull(fx.entrepot, fx.work, 'hot/library/svc:1')).toBe(second.pushed);
    const runs = await jobRuns(fx.entrepot, 'hot', 'cache.refresh');
    expect(runs.some((r) => r.state === 'completed' && Number(r.summary.changed) === 1 && Number(r.summary.prefetched_bytes) === 0)).toBe(true);
    const metrics = await (await fetch(`${fx.entrepot.url}/metrics`)).text();
    expect(metrics).toMatch(/entrepot_cache_refreshes_total\{org="hot",result="unchanged"\} [1-9]/);
    expect(metrics).toMatch(/entrepot_cache_refreshes_total\{org="hot",result="changed"\} 1\b/);
  }, 120_000);

  it('with prefetch_changed_tags, the first pull of a changed hot tag makes no upstream blob request', async () => {
    const first = await pushTestImage(fx.upstream, fx.work, 'library/tool', '1', { seed: 'tool-1' });
    await fx.createCacheOrg('warm', { expiration_s: PERIOD_S, refresh_min_pulls: 2, prefetch_changed_tags: true });
    for (let i = 0; i < 3; i++) expect(await pull(fx.entrepot, fx.work, 'warm/library/tool:1')).toBe(first.pushed);
    const second = await pushTestImage(fx.upstream, fx.work, 'library/tool', '1', { seed: 'tool-2', layerSize: 1_000_000 });
    await waitFor('the refresh to prefetch the changed image', async () =>
      (await jobRuns(fx.entrepot, 'warm', 'cache.refresh')).some((r) => Number(r.summary.changed) === 1 && Number(r.summary.prefetched_bytes) > 1_000_000),
    );
    fx.upstream.resetLog();
    expect(await pull(fx.entrepot, fx.work, 'warm/library/tool:1')).toBe(second.pushed);
    const requests = await fx.upstream.settledRequests();
    expect(requests.filter((r) => r.path.includes('/blobs/'))).toEqual([]);
    expect(requests.filter((r) => r.method === 'GET')).toEqual([]);
  }, 120_000);

  it('prefetches a changed multi-platform tag for the platforms pulled before only', async () => {
    const build = async (seed: string) => {
      const image = await createOciImage(join(fx.work, `multi-${seed}`), { tag: '1', platforms: MULTI_ARCH, layerSize: 300_000, seed });
      await pushImage(image.layoutDir, '1', fx.upstream.ref('library/multi', '1'), { all: true, creds: fx.upstream.creds });
      return image;
    };
    const get = async (path: string, accept?: string) => {
      const res = await fetch(`${fx.entrepot.url}/v2/warm/library/multi/${path}`, { headers: { authorization: fx.entrepot.adminAuth, ...(accept ? { accept } : {}) } });
      expect(res.status).toBe(200);
      return Buffer.from(await res.arrayBuffer());
    };
    const first = await build('multi-1');
    const amd64 = (image: typeof first) => image.manifests.find((m) => m.platform.architecture === 'amd64')!;
    const arm64 = (image: typeof first) => image.manifests.find((m) => m.platform.architecture === 'arm64')!;
    // Only linux/amd64 is pulled (the index, its manifest and blobs), three times: a hot tag.
    for (let i = 0; i < 3; i++) {
      await get('manifests/1', first.mediaType);
      await get(`manifests/${amd64(first).digest}`, amd64(first).mediaType);
    }
    for (const blob of [amd64(first).config, ...amd64(first).layers]) await get(`blobs/${blob.digest}`);
    const second = await build('multi-2');
    await waitFor('the refresh to prefetch the changed index', async () =>
      (await jobRuns(fx.entrepot, 'warm', 'cache.refresh')).some((r) => Array.isArray(r.summary.changed_tags) && (r.summary.changed_tags as string[]).includes('library/multi:1')),
    );
    const storage = fx.entrepot.entrepot.services.storage;
    for (const layer of arm64(second).layers) expect(await storage.blobs.stat(oci.parseDigest(layer.digest))).toBeNull();
    fx.upstream.resetLog();
    expect((await get('manifests/1', second.mediaType)).length).toBe(second.size);
    await get(`manifests/${amd64(second).digest}`, amd64(second).mediaType);
    for (const blob of [amd64(second).config, ...amd64(second).layers]) expect((await get(`blobs/${blob.digest}`)).length).toBe(blob.size);
    expect((await fx.upstream.settledRequests()).filter((r) => r.method === 'GET')).toEqual([]);
  }, 120_000);
});
