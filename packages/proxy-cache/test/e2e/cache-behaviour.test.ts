import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage, skopeoCopyOut, type BuiltImage } from '../../../../testing/oci-images';
import { startCacheFixture, type CacheFixture } from './cache-fixture';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;
const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

interface LogEntry {
  kind: string;
  metadata: Record<string, unknown>;
  performer: { kind: string; name: string } | null;
  ip: string;
}

describe('pull-through cache against a token-auth upstream', () => {
  let fx: CacheFixture;
  let image: BuiltImage;
  let digest: string;

  beforeAll(async () => {
    fx = await startCacheFixture({ auth: { mode: 'token' } });
    image = await createOciImage(join(fx.work, 'tok'), { tag: '1.0', layerCount: 2, layerSize: 4 * 1024 * 1024 });
    digest = await pushImage(image.layoutDir, '1.0', fx.upstream.ref('library/tok', '1.0'), { creds: fx.upstream.creds });
    await fx.createCacheOrg('hub', { expiration_s: 3600 });
  });

  afterAll(() => fx.stop());

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${fx.entrepot.url}${path}`, { headers: { authorization: fx.entrepot.adminAuth, ...headers } });

  it('pulls through the Docker token flow, asking for one token per scope', async () => {
    fx.upstream.tokenServer!.reset();
    expect(await skopeoCopyOut(`${fx.entrepot.host}/hub/library/tok:1.0`, join(fx.work, 'p1'), { creds })).toBe(digest);
    const scopes = fx.upstream.tokenServer!.requests().map((r) => r.scopes.join(' '));
    expect(scopes.length).toBeGreaterThan(0);
    expect(new Set(scopes).size).toBe(scopes.length);
  });

  it('records hit and miss results with performer, address and user agent in the audit log', async () => {
    await get('/v2/hub/library/tok/manifests/1.0', { 'user-agent': 'audit-check/1.0' }).then((r) => r.arrayBuffer());
    await fx.entrepot.entrepot.services.audit.flush();
    await fx.entrepot.entrepot.services.queue.drain();
    const res = await fx.entrepot.api('GET', '/organization/hub/logs?kind=pull_repo');
    expect(res.status).toBe(200);
    const logs = (res.body as { logs: LogEntry[] }).logs;
    const results = logs.map((l) => l.metadata.cache_result);
    expect(results).toContain('miss');
    expect(results).toContain('hit');
    const hit = logs.find((l) => l.metadata.cache_result === 'hit')!;
    expect(hit.performer?.name).toBe(ADMIN_USER);
    expect(hit.ip).toMatch(/127\.0\.0\.1/);
    expect(hit.metadata.manifest_digest).toBe(digest);
    expect(logs.some((l) => l.metadata.user_agent === 'audit-check/1.0' || JSON.stringify(l).includes('audit-check/1.0'))).toBe(true);
  });

  it('answers a cold blob HEAD with one upstream HEAD and no download', async () => {
    const other = await createOciImage(join(fx.work, 'head'), { tag: 'h', layerCount: 1, layerSize: 1024 * 1024 });
    await pushImage(other.layoutDir, 'h', fx.upstream.ref('library/headonly', 'h'), { creds: fx.upstream.creds });
    const layer = other.manifests[0].layers[0];
    fx.upstream.resetLog();
    const res = await fetch(`${fx.entrepot.url}/v2/hub/library/headonly/blobs/${layer.digest}`, { method: 'HEAD', headers: { authorization: fx.entrepot.adminAuth } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(layer.size));
    const requests = (await fx.upstream.settledRequests()).filter((r) => r.path.includes('/blobs/'));
    expect(requests.map((r) => r.method)).toEqual(['HEAD']);
    expect(await fx.entrepot.entrepot.services.storage.blobs.stat(layer.digest as never)).toBeNull();
  });

  it('honours Range on cached blobs', async () => {
    const layer = image.manifests[0].layers[0];
    const whole = Buffer.from(await (await get(`/v2/hub/library/tok/blobs/${layer.digest}`)).arrayBuffer());
    expect(sha256(whole)).toBe(layer.digest);
    const part = await get(`/v2/hub/library/tok/blobs/${layer.digest}`, { range: 'bytes=1000-1999' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${layer.size}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(whole.subarray(1000, 2000));
    const bad = await get(`/v2/hub/library/tok/blobs/${layer.digest}`, { range: `bytes=${layer.size + 10}-` });
    expect(bad.status).toBe(416);
  });

  it('honours Range on a blob that is still being filled', async () => {
    const big = await createOciImage(join(fx.work, 'inflight'), { tag: 'r', layerCount: 1, layerSize: 30 * 1024 * 1024 });
    await pushImage(big.layoutDir, 'r', fx.upstream.ref('library/inflight', 'r'), { creds: fx.upstream.creds });
    const layer = big.manifests[0].layers[0];
    await get('/v2/hub/library/inflight/manifests/r').then((r) => r.arrayBuffer());
    const full = get(`/v2/hub/library/inflight/blobs/${layer.digest}`).then(async (r) => Buffer.from(await r.arrayBuffer()));
    const start = layer.size - 5000;
    const tail = await get(`/v2/hub/library/inflight/blobs/${layer.digest}`, { range: `bytes=${start}-` });
    expect(tail.status).toBe(206);
    const tailBytes = Buffer.from(await tail.arrayBuffer());
    const fullBytes = await full;
    expect(sha256(fullBytes)).toBe(layer.digest);
    expect(tailBytes).toEqual(fullBytes.subarray(start));
  });

  it('serves a blob cached for another repository only after the upstream confirms it', async () => {
    const layer = image.manifests[0].layers[0];
    // library/tok's layer is stored; library/headonly does not have it upstream.
    fx.upstream.resetLog();
    const denied = await get(`/v2/hub/library/headonly/blobs/${layer.digest}`);
    expect(denied.status).toBe(404);
    const requests = await fx.upstream.settledRequests();
    expect(requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'))).toEqual([]);
    // Pushed upstream under a second name, it is confirmed by HEAD and served from the cache.
    await pushImage(image.layoutDir, '1.0', fx.upstream.ref('library/tok-copy', '1.0'), { creds: fx.upstream.creds });
    fx.upstream.resetLog();
    const confirmed = await get(`/v2/hub/library/tok-copy/blobs/${layer.digest}`);
    expect(confirmed.status).toBe(200);
    expect(sha256(Buffer.from(await confirmed.arrayBuffer()))).toBe(layer.digest);
    const confirmRequests = (await fx.upstream.settledRequests()).filter((r) => r.path.includes('/blobs/'));
    expect(confirmRequests.map((r) => r.method)).toEqual(['HEAD']);
  });

  it('lists tags from the upstream and falls back to cached tags when it is down', async () => {
    const listed = await (await get('/v2/hub/library/tok/tags/list')).json();
    expect(listed).toEqual({ name: 'hub/library/tok', tags: ['1.0'] });
    await fx.upstream.down();
    try {
      const fallback = await get('/v2/hub/library/tok/tags/list');
      expect(fallback.status).toBe(200);
      expect(((await fallback.json()) as { tags: string[] }).tags).toEqual(['1.0']);
      // Cached content keeps being served while the upstream is down.
      const manifest = await get('/v2/hub/library/tok/manifests/1.0');
      expect(manifest.status).toBe(200);
      expect(manifest.headers.get('docker-content-digest')).toBe(digest);
    } finally {
      await fx.upstream.up();
    }
  });

  it('exposes cache metrics', async () => {
    const text = await (await fetch(`${fx.entrepot.url}/metrics`)).text();
    expect(text).toMatch(/entrepot_cache_requests_total\{org="hub",result="hit",kind="manifest"\} [1-9]/);
    expect(text).toMatch(/entrepot_cache_requests_total\{org="hub",result="miss",kind="blob"\} [1-9]/);
    expect(text).toMatch(/entrepot_cache_bytes_total\{org="hub",source="upstream"\} [1-9]/);
    expect(text).toMatch(/entrepot_upstream_requests_total\{upstream="127\.0\.0\.1:\d+",method="GET",status="200"\} [1-9]/);
    expect(text).toContain('entrepot_cache_fills_in_flight');
  });
});
