import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage, skopeoCopyOut, type BuiltImage } from '../../../../testing/oci-images';
import { sleep } from '../../../../testing/tools';
import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';
import { metricValue } from '../faults/fault-fixture';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;
const LIMIT = 25_000_000;
const LAYER = 8_000_000;

interface TagInfo {
  name: string;
  pinned: boolean;
}

const CASES = [
  ['lru', 'embedded'],
  ['lfu', 'embedded'],
  ['lru', 'scale-out'],
] as const;

describe.each(CASES)('quota with %s eviction (%s backends)', (policy, backend) => {
  let fx: CacheFixture;
  const images: Record<string, BuiltImage & { pushed: string }> = {};

  beforeAll(async () => {
    fx = await startCacheFixture({ backend, auth: { mode: 'anonymous' }, entrepot: { overrides: { gc: { grace_seconds: 0, interval_seconds: 3600 } } } });
    for (const name of ['a', 'b', 'c', 'd', 'e']) {
      const image = await createOciImage(join(fx.work, name), { tag: '1', layerCount: 1, layerSize: LAYER });
      images[name] = { ...image, pushed: await pushImage(image.layoutDir, '1', fx.upstream.ref(`library/${name}`, '1')) };
    }
    await fx.createCacheOrg('qq', { expiration_s: 3600 });
    const quota = await fx.entrepot.api('POST', '/organization/qq/quota', { limit_bytes: LIMIT, eviction_policy: policy });
    expect(quota.status).toBe(201);
  }, 120_000);

  afterAll(() => fx.stop());

  async function orgUsage(): Promise<number> {
    const org = await fx.entrepot.entrepot.services.repositories.findOrg('qq');
    return fx.entrepot.entrepot.services.quotas.usage(org!.id);
  }
  async function pull(name: string): Promise<string> {
    return skopeoCopyOut(`${fx.entrepot.host}/qq/library/${name}:1`, join(fx.work, `out-${name}-${Math.random()}`), { creds });
  }
  async function cachedTags(): Promise<string[]> {
    const names: string[] = [];
    for (const name of ['a', 'b', 'c', 'd', 'e']) {
      const res = await fx.entrepot.api('GET', `/repository/qq/library/${name}/tag/`);
      if (res.status === 200 && (res.body as { tags: TagInfo[] }).tags.length > 0) names.push(name);
    }
    return names;
  }

  it('evicts the least valuable image and never exceeds the limit, even while pulling', async () => {
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await orgUsage());
        await sleep(20);
      }
    })();
    try {
      expect(await pull('a')).toBe(images.a.pushed);
      expect(await pull('b')).toBe(images.b.pushed);
      expect(await pull('c')).toBe(images.c.pushed);
      await sleep(20);
      expect(await pull('a')).toBe(images.a.pushed);
      expect(await pull('d')).toBe(images.d.pushed);
    } finally {
      sampling = false;
      await sampler;
    }
    expect(peak).toBeGreaterThan(3 * LAYER);
    expect(peak).toBeLessThanOrEqual(LIMIT);
    expect(await orgUsage()).toBeLessThanOrEqual(LIMIT);
    expect(await cachedTags()).toEqual(['a', 'c', 'd']);
    // Every remaining image still pulls byte-identical, from the cache alone.
    fx.upstream.resetLog();
    for (const name of ['a', 'c', 'd']) expect(await pull(name)).toBe(images[name].pushed);
    expect((await fx.upstream.settledRequests()).filter((r) => r.method === 'GET')).toEqual([]);
    const logs = await fx.entrepot.api('GET', '/organization/qq/logs?kind=evict_cache');
    expect(JSON.stringify(logs.body)).toContain('library/b');
    const metrics = await (await fetch(`${fx.entrepot.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`entrepot_cache_evictions_total\\{org="qq",policy="${policy}"\\} [1-9]`));
  }, 180_000);

  it('keeps a pinned tag under pressure that evicts everything else', async () => {
    const pin = await fx.entrepot.api('PUT', '/repository/qq/library/c/tag/1/pin');
    expect(pin.status).toBe(200);
    expect(await pull('e')).toBe(images.e.pushed);
    expect(await pull('b')).toBe(images.b.pushed);
    expect(await pull('a')).toBe(images.a.pushed);
    expect(await cachedTags()).toContain('c');
    expect(await orgUsage()).toBeLessThanOrEqual(LIMIT);
    fx.upstream.resetLog();
    expect(await pull('c')).toBe(images.c.pushed);
    expect((await fx.upstream.settledRequests()).filter((r) => r.method === 'GET')).toEqual([]);
  }, 180_000);
});

describe.each(['embedded', 'scale-out'] as const)('quota edge cases (%s backends)', (backend) => {
  let fx: CacheFixture;

  beforeAll(async () => {
    fx = await startCacheFixture({ backend, auth: { mode: 'anonymous' }, entrepot: { overrides: { gc: { grace_seconds: 0, interval_seconds: 3600 } } } });
  }, 60_000);

  afterAll(() => fx.stop());

  it('serves an image larger than the whole quota without keeping it', async () => {
    const big = await createOciImage(join(fx.work, 'big'), { tag: '1', layerCount: 2, layerSize: 3_000_000 });
    const pushed = await pushImage(big.layoutDir, '1', fx.upstream.ref('library/big', '1'));
    await fx.createCacheOrg('small', { expiration_s: 3600 });
    expect((await fx.entrepot.api('POST', '/organization/small/quota', { limit_bytes: 5_000_000 })).status).toBe(201);
    expect(await skopeoCopyOut(`${fx.entrepot.host}/small/library/big:1`, join(fx.work, 'big-out'), { creds })).toBe(pushed);
    const services = fx.entrepot.entrepot.services;
    const org = await services.repositories.findOrg('small');
    expect(await services.quotas.usage(org!.id)).toBe(0);
    // The fills commit (an upload, on S3) after the client has its bytes: wait for them, then collect until the blobs are gone.
    const fillsInFlight = async () => {
      const text = await (await fetch(`${fx.entrepot.url}/metrics`, { headers: { authorization: fx.entrepot.adminAuth } })).text();
      const line = text.split('\n').find((l) => l.startsWith('entrepot_cache_fills_in_flight '));
      return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    for (let i = 0; i < 200 && (await fillsInFlight()) !== 0; i++) await sleep(100);
    expect(await fillsInFlight()).toBe(0);
    const stored = async () => (await Promise.all(big.manifests[0].layers.map((l) => services.storage.blobs.stat(l.digest as never)))).filter(Boolean).length;
    for (let i = 0; i < 200 && (await stored()) > 0; i++) {
      await services.requestGc();
      await services.audit.flush();
      await services.queue.drain();
      await sleep(100);
    }
    expect(await stored()).toBe(0);
    const logs = await fx.entrepot.api('GET', '/organization/small/logs?kind=pull_repo');
    expect(JSON.stringify(logs.body)).toContain('"cache_result":"bypass"');
  }, 120_000);

  it('evicts blobs fetched by digest alone (no cached manifest refers to them) when room is needed', async () => {
    const image = await createOciImage(join(fx.work, 'loose'), { tag: '1', layerCount: 3, layerSize: 1_000_000 });
    await pushImage(image.layoutDir, '1', fx.upstream.ref('library/loose', '1'));
    await fx.createCacheOrg('loose', { expiration_s: 3600 });
    expect((await fx.entrepot.api('POST', '/organization/loose/quota', { limit_bytes: 10_000_000 })).status).toBe(201);
    const layers = image.manifests[0].layers;
    const services = fx.entrepot.entrepot.services;
    const org = (await services.repositories.findOrg('loose'))!;
    // A tool fetching layers by digest (a lazy-pulling snapshotter, `oras blob fetch`): each is kept, linked to the repository alone.
    let total = 0;
    for (const layer of layers) {
      const res = await fetch(`${fx.entrepot.url}/v2/loose/library/loose/blobs/${layer.digest}`, { headers: { authorization: fx.entrepot.adminAuth } });
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(layer.size);
      // Linked once stored (after the client has its bytes): one after the other, so the oldest link is the first layer's.
      total += layer.size;
      for (let i = 0; i < 200 && (await services.quotas.usage(org.id)) < total; i++) await sleep(50);
      expect(await services.quotas.usage(org.id)).toBe(total);
    }
    // Room for one layer: the two linked first go.
    const quota = ((await fx.entrepot.api('GET', '/organization/loose/quota')).body as Array<{ id: string }>)[0];
    expect((await fx.entrepot.api('PUT', `/organization/loose/quota/${quota.id}`, { limit_bytes: 1_500_000 })).status).toBe(200);
    for (let i = 0; i < 200 && (await services.quotas.usage(org.id)) > 1_500_000; i++) {
      await services.queue.drain(60_000);
      await sleep(50);
    }
    expect(await services.quotas.usage(org.id)).toBe(layers[2].size);
    await services.audit.flush();
    const logs = await fx.entrepot.api('GET', '/organization/loose/logs?kind=evict_cache');
    const evicted = (logs.body as { logs: Array<{ metadata: { blob_digest?: string } }> }).logs.map((l) => l.metadata.blob_digest).sort();
    expect(evicted).toEqual([layers[0].digest, layers[1].digest].sort());
  }, 120_000);

  it('admits the fill a Range request starts under the quota as for a whole GET: kept, counted, evicted first when room is needed', async () => {
    const image = await createOciImage(join(fx.work, 'ranged'), { tag: '1', layerCount: 2, layerSize: 3_000_000 });
    await pushImage(image.layoutDir, '1', fx.upstream.ref('library/ranged', '1'));
    await fx.createCacheOrg('ranged', { expiration_s: 3600 });
    expect((await fx.entrepot.api('POST', '/organization/ranged/quota', { limit_bytes: 5_000_000 })).status).toBe(201);
    const services = fx.entrepot.entrepot.services;
    const org = (await services.repositories.findOrg('ranged'))!;
    const layers = image.manifests[0].layers;
    const rangeOf = async (base: string, repo: string, digest: string, range: string): Promise<{ status: number; body: Buffer }> => {
      const res = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { headers: { authorization: fx.entrepot.adminAuth, range } });
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
    };
    for (const [i, layer] of layers.entries()) {
      // A lazy-pulling client's first reads of a cold layer: its tail, then a chunk.
      for (const range of ['bytes=-10240', 'bytes=1000000-1065535']) {
        const got = await rangeOf(fx.entrepot.url, 'ranged/library/ranged', layer.digest, range);
        const direct = await rangeOf(fx.upstream.url, 'library/ranged', layer.digest, range);
        expect(got.status).toBe(206);
        expect(got.body.equals(direct.body)).toBe(true);
      }
      // The background fill is kept under the quota once stored; the second layer needs the room the first holds.
      // Its reservation ends just after the link, and until then holds that room a second time: wait for both.
      const settled = async (): Promise<boolean> => (await services.quotas.usage(org.id)) === layer.size && (await services.quotas.measure(org.id)) === layer.size;
      // Storing waits on the disk (fsync, the S3 server's writes), which other jobs on a CI machine can hold for seconds.
      for (const deadline = Date.now() + 90_000; Date.now() < deadline && !(await settled()); ) {
        await services.queue.drain(60_000);
        await sleep(50);
      }
      expect(await services.quotas.usage(org.id)).toBe(layer.size);
      expect(await services.content.isBlobLinked((await services.repositories.find(org.id, 'library/ranged'))!.id, layer.digest as never)).toBe(true);
      if (i === 0) continue;
      await services.audit.flush();
      const logs = await fx.entrepot.api('GET', '/organization/ranged/logs?kind=evict_cache');
      expect((logs.body as { logs: Array<{ metadata: { blob_digest?: string } }> }).logs.map((l) => l.metadata.blob_digest)).toEqual([layers[0].digest]);
    }
    // A ranged pull of a cold blob is a miss: the first range of each layer, and the second too when it came
    // before the fill had started (the fill starts once the first range is answered).
    const misses = await metricValue(fx, 'entrepot_cache_requests_total', { org: 'ranged', kind: 'blob', result: 'miss' });
    expect(misses).toBeGreaterThanOrEqual(2);
    expect(misses).toBeLessThanOrEqual(4);
  }, 240_000);

  it('reports usage and limit in the organization description', async () => {
    const res = await fx.entrepot.api('GET', '/organization/small');
    expect((res.body as { quota_report: unknown }).quota_report).toEqual({ quota_bytes: 0, configured_quota: 5_000_000 });
  });

  it('keeps content shared with another organization when one is flushed', async () => {
    const shared = await createOciImage(join(fx.work, 'shared'), { tag: '1', layerCount: 2, layerSize: 1_000_000 });
    const pushed = await pushImage(shared.layoutDir, '1', fx.upstream.ref('library/shared', '1'));
    await fx.createCacheOrg('one', { expiration_s: 3600 });
    await fx.createCacheOrg('two', { expiration_s: 3600 });
    expect(await skopeoCopyOut(`${fx.entrepot.host}/one/library/shared:1`, join(fx.work, 's1'), { creds })).toBe(pushed);
    expect(await skopeoCopyOut(`${fx.entrepot.host}/two/library/shared:1`, join(fx.work, 's2'), { creds })).toBe(pushed);
    const flushed = await fx.entrepot.api('DELETE', '/organization/one/proxycache/cache');
    expect(flushed.status).toBe(200);
    const services = fx.entrepot.entrepot.services;
    await services.requestGc();
    await services.audit.flush();
    await services.queue.drain();
    fx.upstream.resetLog();
    expect(await skopeoCopyOut(`${fx.entrepot.host}/two/library/shared:1`, join(fx.work, 's3'), { creds })).toBe(pushed);
    expect((await fx.upstream.settledRequests()).filter((r) => r.method === 'GET')).toEqual([]);
    // The flushed organization refetches what it pulls next.
    expect(await skopeoCopyOut(`${fx.entrepot.host}/one/library/shared:1`, join(fx.work, 's4'), { creds })).toBe(pushed);
  }, 120_000);

  it('gives every client a complete image when the organization is flushed during pulls', async () => {
    const image = await createOciImage(join(fx.work, 'busy'), { tag: '1', layerCount: 3, layerSize: 2_000_000 });
    const pushed = await pushImage(image.layoutDir, '1', fx.upstream.ref('library/busy', '1'));
    await fx.createCacheOrg('busy', { expiration_s: 3600 });
    const pulls = Array.from({ length: 10 }, (_, i) =>
      sleep(i * 30).then(() => skopeoCopyOut(`${fx.entrepot.host}/busy/library/busy:1`, join(fx.work, `busy-${i}`), { creds })),
    );
    await sleep(120);
    const flushed = await fx.entrepot.api('DELETE', '/organization/busy/proxycache/cache');
    expect(flushed.status).toBe(200);
    await fx.entrepot.entrepot.services.requestGc();
    const results = await Promise.all(pulls);
    expect(results).toEqual(Array(10).fill(pushed));
  }, 180_000);
});
