/**
 * R-OFFLINE against a real upstream behind a fault proxy: while the upstream
 * black-holes requests, refuses connections, answers 503 or 429, cached tags
 * past their staleness period are still served (stale-if-error) and whole
 * cached images keep pulling; uncached content fails within seconds with a
 * clear OCI error naming the upstream (and its Retry-After).
 */
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { skopeoCopyOut } from '../../../../testing/oci-images';
import { sleep } from '../../../../testing/tools';
import { auditResults, metricValue, registryGet, scratchEntries, startFaultFixture, storedBlob, type FaultFixture } from './fault-fixture';
import type { FaultMode } from './fault-proxy';
import { eventually } from '../../../../testing/tools';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;
/** Generous: the configured timeouts are 1–1.5 s. */
const FAST_MS = 8000;

interface OutageCase {
  name: string;
  mode: FaultMode;
  status: number;
  code: string;
  retryAfter?: string;
}

const CASES: OutageCase[] = [
  { name: 'blackhole', mode: { kind: 'blackhole' }, status: 503, code: 'UNAVAILABLE' },
  { name: 'refused', mode: { kind: 'refuse' }, status: 503, code: 'UNAVAILABLE' },
  { name: 'status503', mode: { kind: 'status', status: 503, headers: { 'retry-after': '5' } }, status: 503, code: 'UNAVAILABLE', retryAfter: '5' },
  { name: 'status429', mode: { kind: 'status', status: 429, headers: { 'retry-after': '7' } }, status: 429, code: 'TOOMANYREQUESTS', retryAfter: '7' },
];

describe('upstream outages: stale-if-error for cached tags, fast clear errors otherwise', () => {
  let ff: FaultFixture;

  // The breaker is tested on its own; here every request must meet the fault itself.
  beforeAll(async () => {
    ff = await startFaultFixture({ breaker_failures: 50 });
  });

  afterAll(() => ff.stop());

  it.each(CASES)('$name: serves the cached tag stale, pulls the cached image, fails uncached content fast', async (c) => {
    const org = `out${c.name}`;
    const repo = `library/${org}`;
    const proxy = await ff.cacheOrg(org, { expiration_s: 1, stale_if_error_s: 3600 });
    const v1 = await ff.pushUpstream(repo, 'v1', [200_000, 100_000]);
    const v2 = await ff.pushUpstream(repo, 'v2', [150_000]);
    const ref = `${ff.fx.entrepot.host}/${org}/${repo}:v1`;
    expect(await skopeoCopyOut(ref, join(ff.fx.work, `${org}-warm`), { creds })).toBe(v1.digest);
    await sleep(1100); // past the staleness period

    await proxy.set(c.mode);
    proxy.resetLog();
    const connectionsBefore = proxy.connections;

    const stale = await registryGet(ff.fx, `${org}/${repo}/manifests/v1`);
    expect(stale.status).toBe(200);
    expect(stale.digest).toBe(v1.digest);
    expect(stale.elapsedMs).toBeLessThan(FAST_MS);
    expect(await metricValue(ff.fx, 'entrepot_cache_requests_total', { org, result: 'stale', kind: 'manifest' })).toBeGreaterThanOrEqual(1);
    await eventually(async () => (await auditResults(ff.fx, org)).includes('stale'));
    // The revalidation HEAD met the fault (a black-holed one may never become a logged request).
    if (c.mode.kind === 'status') expect(proxy.count({ method: 'HEAD', path: `/v2/${repo}/manifests/v1` })).toBe(1);
    if (c.mode.kind === 'blackhole') expect(proxy.requests().length + proxy.connections).toBeGreaterThan(connectionsBefore);

    // The whole cached image still pulls with a real client.
    expect(await skopeoCopyOut(ref, join(ff.fx.work, `${org}-offline`), { creds })).toBe(v1.digest);

    // Uncached: a manifest and a blob, each a clear OCI error naming the upstream, quickly.
    const uncached = [`${org}/${repo}/manifests/v2`, `${org}/${repo}/blobs/${v2.manifests[0].layers[0].digest}`];
    for (const path of uncached) {
      const failed = await registryGet(ff.fx, path);
      expect(failed.status).toBe(c.status);
      expect(failed.elapsedMs).toBeLessThan(FAST_MS);
      expect(failed.errors?.[0].code).toBe(c.code);
      expect(failed.errors?.[0].message).toContain(proxy.host);
      if (c.retryAfter !== undefined) expect(failed.headers.get('retry-after')).toBe(c.retryAfter);
    }
    expect(await storedBlob(ff.fx, v2.manifests[0].layers[0].digest)).toBeNull();
    await eventually(async () => (await scratchEntries(ff.fx)).length === 0, 5000);

    // The upstream is back: the tag revalidates and uncached content fills.
    await proxy.set({ kind: 'pass' });
    const back = await registryGet(ff.fx, `${org}/${repo}/manifests/v2`);
    expect(back.status).toBe(200);
    expect(back.digest).toBe(v2.digest);
  });

  it('returns the error instead of stale content once the stale-serving window has expired', async () => {
    const org = 'staleexpired';
    const repo = `library/${org}`;
    const proxy = await ff.cacheOrg(org, { expiration_s: 1, stale_if_error_s: 1 });
    const v1 = await ff.pushUpstream(repo, 'v1', [50_000]);
    const first = await registryGet(ff.fx, `${org}/${repo}/manifests/v1`);
    expect(first.status).toBe(200);
    expect(first.digest).toBe(v1.digest);

    await proxy.set({ kind: 'status', status: 503 });
    await sleep(1100); // stale, inside the stale-serving window
    const inside = await registryGet(ff.fx, `${org}/${repo}/manifests/v1`);
    expect(inside.status).toBe(200);
    expect(inside.digest).toBe(v1.digest);

    await sleep(1100); // past expiration_s + stale_if_error_s
    const outside = await registryGet(ff.fx, `${org}/${repo}/manifests/v1`);
    expect(outside.status).toBe(503);
    expect(outside.errors?.[0].code).toBe('UNAVAILABLE');
    expect(outside.errors?.[0].message).toContain(proxy.host);
  });

  it('answers NAME_UNKNOWN when the upstream refuses a never-cached repository (Docker Hub says 401), stale for a cached one', async () => {
    const org = 'refusal';
    const repo = `library/${org}`;
    const proxy = await ff.cacheOrg(org, { expiration_s: 1 });
    const v1 = await ff.pushUpstream(repo, 'v1', [50_000]);
    expect((await registryGet(ff.fx, `${org}/${repo}/manifests/v1`)).status).toBe(200);
    await sleep(1100);
    await proxy.set({ kind: 'status', status: 401, headers: { 'www-authenticate': 'Basic realm="upstream"' } });

    const missing = await registryGet(ff.fx, `${org}/library/doesnotexist/manifests/latest`);
    expect(missing.status).toBe(404);
    expect(missing.errors?.[0].code).toBe('NAME_UNKNOWN');
    expect(missing.errors?.[0].message).toContain(proxy.host);

    const cached = await registryGet(ff.fx, `${org}/${repo}/manifests/v1`);
    expect(cached.status).toBe(200);
    expect(cached.digest).toBe(v1.digest);
  });
});
