import { startScaleOutBackends, type ScaleOutBackends } from '../../../registry-core/test/scale-out/scale-out-backends';
import type { TestInstance } from '../../../../testing/entrepot-instance';
import { sleep, TempDir } from '../../../../testing/tools';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { createPlugin } from '../../src/index';
import { pushTestImage } from '../lifecycle/lifecycle-fixture';

const FLUSH_MS = 300;

describe('cache statistics with two replicas (MariaDB + Redis/BullMQ + S3)', () => {
  let backends: ScaleOutBackends;
  let upstream: UpstreamRegistry;
  let a: TestInstance;
  let b: TestInstance;
  let work: TempDir;

  beforeAll(async () => {
    backends = await startScaleOutBackends();
    upstream = await UpstreamRegistry.start({ auth: { mode: 'anonymous' }, headers: { 'RateLimit-Remaining': '97;w=21600' } });
    work = await TempDir.create('entrepot-stats-replicas-');
    const options = { plugins: [createPlugin], env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' }, overrides: { proxy_cache: { stats_flush_ms: FLUSH_MS } } };
    a = await backends.startReplica(options);
    b = await backends.startReplica(options);
    expect((await a.api('POST', '/organization/', { name: 'shared' })).status).toBe(201);
    expect((await a.api('POST', '/organization/shared/proxycache', { upstream_registry: 'docker.io', upstream_endpoint: upstream.url, insecure: true, expiration_s: 3600 })).status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await backends?.cleanup();
    await upstream?.stop();
    await work?.remove();
  });

  it('adds up what each replica served, and both answer the same figures', async () => {
    const image = await pushTestImage(upstream, work.path, 'library/app', '1');
    const manifest = async (replica: TestInstance) => {
      const res = await fetch(`${replica.url}/v2/shared/library/app/manifests/1`, { headers: { authorization: replica.adminAuth, accept: image.mediaType } });
      expect(res.status).toBe(200);
      return (await res.arrayBuffer()).byteLength;
    };
    const size = await manifest(a);
    await manifest(b);
    await manifest(b);
    await manifest(a);
    // Each replica writes what it counted within its flush interval.
    await sleep(3 * FLUSH_MS);
    const fromA = (await a.api('GET', '/organization/shared/proxycache/stats')).body as Record<string, unknown>;
    const fromB = (await b.api('GET', '/organization/shared/proxycache/stats')).body as Record<string, unknown>;
    expect(fromA.requests).toEqual({ cache: 3, upstream: 1, hit_ratio: 0.75 });
    expect(fromA.bytes).toMatchObject({ cache: 3 * size, upstream: size });
    expect(fromA.pulls).toBe(4);
    expect((fromA.upstream as { rate_limit: { remaining: number } }).rate_limit.remaining).toBe(97);
    const { upstream: upA, ...restA } = fromA;
    const { upstream: upB, ...restB } = fromB;
    expect(restB).toEqual(restA);
    expect((upB as { rate_limit: { remaining: number } }).rate_limit.remaining).toBe(97);
    expect(upA).toMatchObject({ host: new URL(upstream.url).host });
  }, 120_000);
});
