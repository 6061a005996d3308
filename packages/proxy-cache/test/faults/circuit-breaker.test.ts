/**
 * The per-upstream circuit breaker against a real failing upstream (R-OFFLINE):
 * it opens after `breaker_failures` consecutive outages, so later uncached
 * requests fail at once without reaching the upstream (counted at the fault
 * proxy), cached tags are still served, one probe goes through after the
 * cooldown, and the circuit closes once the upstream answers again.
 */
import { sleep } from '../../../../testing/tools';
import { FAULT_SETTINGS, metricValue, registryGet, startFaultFixture, storedBlob, type FaultFixture } from './fault-fixture';
import type { FaultMode, FaultProxy } from './fault-proxy';
import { eventually } from '../../../../testing/tools';

const OPEN = 2;
const CLOSED = 0;

describe('circuit breaker per upstream', () => {
  let ff: FaultFixture;

  beforeAll(async () => {
    ff = await startFaultFixture({ breaker_failures: 3, breaker_cooldown_ms: 2000 });
  });

  afterAll(() => ff.stop());

  /** Upstream traffic the proxy saw: HTTP requests, and connections (black-holed ones never become requests). */
  function traffic(proxy: FaultProxy): { requests: number; connections: number } {
    return { requests: proxy.requests().length, connections: proxy.connections };
  }

  async function setUp(org: string) {
    const proxy = await ff.cacheOrg(org, { expiration_s: 1 });
    const repo = `library/${org}`;
    const v1 = await ff.pushUpstream(repo, 'v1', [50_000]);
    const v2 = await ff.pushUpstream(repo, 'v2', [60_000]);
    expect((await registryGet(ff.fx, `${org}/${repo}/manifests/v1`)).digest).toBe(v1.digest);
    await sleep(1100); // v1 is now past its staleness period
    return {
      proxy,
      v1,
      v2,
      cachedTag: `${org}/${repo}/manifests/v1`,
      uncached: [`${org}/${repo}/manifests/v2`, `${org}/${repo}/blobs/${v2.manifests[0].layers[0].digest}`],
    };
  }

  it.each<[string, FaultMode]>([
    ['503', { kind: 'status', status: 503 }],
    ['blackhole', { kind: 'blackhole' }],
  ])('opens after repeated %s failures, stops calling the upstream, and closes after the cooldown', async (name, mode) => {
    const org = `breaker${name}`;
    const { proxy, v1, v2, cachedTag, uncached } = await setUp(org);
    await proxy.set(mode);

    // Each failure until the threshold reaches the upstream.
    for (let i = 0; i < FAULT_SETTINGS.breaker_failures; i++) {
      const before = traffic(proxy);
      const failed = await registryGet(ff.fx, uncached[0]);
      expect(failed.status).toBe(503);
      expect(failed.errors?.[0].message).not.toMatch(/circuit open/);
      expect(traffic(proxy)).not.toEqual(before);
    }
    expect(await metricValue(ff.fx, 'entrepot_upstream_circuit_state', { upstream: proxy.host })).toBe(OPEN);

    // Open: uncached requests fail at once, naming the upstream, without reaching it.
    const opened = traffic(proxy);
    for (const path of uncached) {
      const failed = await registryGet(ff.fx, path);
      expect(failed.status).toBe(503);
      expect(failed.errors?.[0].code).toBe('UNAVAILABLE');
      expect(failed.errors?.[0].message).toContain(`upstream ${proxy.host} is unavailable (circuit open)`);
      expect(Number(failed.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(failed.elapsedMs).toBeLessThan(5000);
    }
    // The cached tag is served stale, also without an upstream request.
    const stale = await registryGet(ff.fx, cachedTag);
    expect(stale.status).toBe(200);
    expect(stale.digest).toBe(v1.digest);
    expect(traffic(proxy)).toEqual(opened);

    // After the cooldown one probe goes through; it fails, so the circuit opens again.
    await sleep(FAULT_SETTINGS.breaker_cooldown_ms + 200);
    expect((await registryGet(ff.fx, uncached[0])).status).toBe(503);
    expect(traffic(proxy)).not.toEqual(opened);
    const reopened = traffic(proxy);
    const refused = await registryGet(ff.fx, uncached[1]);
    expect(refused.errors?.[0].message).toContain('circuit open');
    expect(traffic(proxy)).toEqual(reopened);

    // The upstream is back: still open until the cooldown ends, then the probe succeeds and closes it.
    await proxy.set({ kind: 'pass' });
    expect((await registryGet(ff.fx, uncached[0])).errors?.[0].message).toContain('circuit open');
    await sleep(FAULT_SETTINGS.breaker_cooldown_ms + 200);
    const manifest = await registryGet(ff.fx, uncached[0]);
    expect(manifest.status).toBe(200);
    expect(manifest.digest).toBe(v2.digest);
    expect(await metricValue(ff.fx, 'entrepot_upstream_circuit_state', { upstream: proxy.host })).toBe(CLOSED);
    const blob = await registryGet(ff.fx, uncached[1]);
    expect(blob.status).toBe(200);
    expect(blob.digest).toBe(v2.manifests[0].layers[0].digest);
    await eventually(async () => (await storedBlob(ff.fx, blob.digest)) !== null);
  });
});
