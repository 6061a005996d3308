/**
 * What three replicas behind nginx share besides fills: the RateLimit-Remaining
 * an upstream reported, the revalidation of a tag, cache configuration changes,
 * and the circuit breaker of a black-holed upstream (the other replicas then
 * fail fast without contacting it, and serve cached tags stale).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createOciImage, pushImage, type BuiltImage } from '../../../../testing/oci-images';
import { ThrottleRelay } from '../../../../testing/throttle-relay';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { LoadBalancedCluster, ORG, type Replica } from './load-balanced-cluster';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** Tags go stale after this long, so that the tests below see revalidations. */
const EXPIRATION_S = 4;

describe('state shared by three replicas behind nginx', () => {
  let upstream: UpstreamRegistry;
  let relay: ThrottleRelay;
  let cluster: LoadBalancedCluster;
  let work: string;
  let auth: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'entrepot-shared-'));
    upstream = await UpstreamRegistry.start({ auth: { mode: 'anonymous' } });
    relay = await ThrottleRelay.start(upstream.url, 'per-connection', 0);
    cluster = await LoadBalancedCluster.start(relay.url, 3, {
      // A black-holed upstream is noticed after two answers that never came, and stays open for the whole test.
      proxyCache: { headers_timeout_ms: 1500, breaker_failures: 2, breaker_cooldown_ms: 600_000, revalidation_deadline_ms: 500 },
      org: { expiration_s: EXPIRATION_S, stale_if_error_s: 3600 },
    });
    auth = cluster.replicas[0].process.adminAuth;
  }, 300_000);

  afterAll(async () => {
    await cluster?.stop();
    await relay?.stop();
    await upstream?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  async function pushSmall(name: string): Promise<BuiltImage> {
    const image = await createOciImage(join(work, name), { tag: '1', layerCount: 1, layerSize: 64 * 1024 });
    await pushImage(image.layoutDir, '1', upstream.ref(`library/${name}`, '1'));
    return image;
  }

  const manifestPath = (name: string, tag = '1'): string => `/v2/library/${name}/manifests/${tag}`;

  async function pullManifest(base: string, name: string, tag = '1'): Promise<{ status: number; digest: string | null }> {
    const res = await fetch(`${base}/v2/${ORG}/library/${name}/manifests/${tag}`, { headers: { authorization: auth, accept: OCI_MANIFEST } });
    await res.arrayBuffer();
    return { status: res.status, digest: res.headers.get('docker-content-digest') };
  }

  async function metric(replica: Replica, name: string): Promise<number | undefined> {
    const text = await (await fetch(`${replica.process.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`upstream="${new URL(relay.url).host}"`));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  /** Waits (bounded) until every replica's `name` gauge reads `value`; returns what each reads then. */
  async function gaugesReach(replicas: Replica[], name: string, value: number): Promise<Array<number | undefined>> {
    let seen: Array<number | undefined> = [];
    for (let i = 0; i < 100; i++) {
      seen = await Promise.all(replicas.map((r) => metric(r, name)));
      if (seen.every((v) => v === value)) break;
      await sleep(50);
    }
    return seen;
  }

  it('shows the RateLimit-Remaining one replica received on every replica', async () => {
    await pushSmall('limits');
    const [first, ...others] = cluster.replicas;
    relay.addHeaders = { 'ratelimit-remaining': '42;w=21600' };
    expect((await pullManifest(first.process.url, 'limits')).status).toBe(200);
    expect(await gaugesReach(others, 'entrepot_upstream_ratelimit_remaining', 42)).toEqual([42, 42]);
    // The next value replaces it everywhere, whichever replica received it.
    relay.addHeaders = { 'ratelimit-remaining': '17;w=21600' };
    await pushSmall('limits2');
    expect((await pullManifest(others[0].process.url, 'limits2')).status).toBe(200);
    expect(await gaugesReach(cluster.replicas, 'entrepot_upstream_ratelimit_remaining', 17)).toEqual([17, 17, 17]);
    relay.addHeaders = {};
  }, 120_000);

  it('revalidates a stale tag pulled on three replicas at once with one upstream request', async () => {
    const image = await pushSmall('fresh');
    expect(await pullManifest(cluster.url, 'fresh')).toEqual({ status: 200, digest: image.digest });
    await sleep(EXPIRATION_S * 1000 + 500);
    upstream.resetLog();
    // A slow upstream answer keeps the revalidation under way while the pulls of all three replicas arrive.
    relay.delayMs = 1000;
    const pulls = await Promise.all(cluster.replicas.flatMap((r) => Array.from({ length: 3 }, () => pullManifest(r.process.url, 'fresh'))));
    expect(pulls).toEqual(Array.from({ length: 9 }, () => ({ status: 200, digest: image.digest })));
    // Past the revalidation deadline the pulls were answered from the cache; the revalidation ends on its own.
    await sleep(1500);
    relay.delayMs = 0;
    const requests = (await upstream.settledRequests()).filter((r) => r.path === manifestPath('fresh'));
    expect(requests.map((r) => r.method)).toEqual(['HEAD']);
  }, 120_000);

  it('applies a cache configuration change made through one replica on the others at once', async () => {
    const image = await pushSmall('conf');
    await pushSmall('conf-other');
    expect(await pullManifest(cluster.url, 'conf')).toEqual({ status: 200, digest: image.digest });
    await sleep(EXPIRATION_S * 1000 + 500);
    const [first, ...others] = cluster.replicas;
    const configure = async (expiration: number): Promise<void> => {
      const res = await fetch(`${first.process.url}/api/v1/organization/${ORG}/proxycache`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ upstream_registry: 'docker.io', upstream_endpoint: relay.url, insecure: true, expiration_s: expiration, stale_if_error_s: 3600 }),
      });
      expect(res.status).toBe(201);
      await res.arrayBuffer();
    };
    // The others read the configuration now (a pull of another tag), so that only a notice can make them read it again soon.
    for (const r of others) expect((await pullManifest(r.process.url, 'conf-other')).status).toBe(200);
    // A longer staleness period: the tag is fresh again on every replica, which therefore leave the upstream alone.
    await configure(3600);
    upstream.resetLog();
    for (const r of others) expect(await pullManifest(r.process.url, 'conf')).toEqual({ status: 200, digest: image.digest });
    expect((await upstream.settledRequests()).filter((r) => r.path === manifestPath('conf'))).toEqual([]);
    // Back to the short one: the tag checked seconds ago is stale again on every replica.
    await configure(EXPIRATION_S);
    upstream.resetLog();
    for (const r of others) expect(await pullManifest(r.process.url, 'conf')).toEqual({ status: 200, digest: image.digest });
    const revalidations = (await upstream.settledRequests()).filter((r) => r.path === manifestPath('conf'));
    expect(revalidations.length).toBeGreaterThanOrEqual(1);
    expect(revalidations.every((r) => r.method === 'HEAD')).toBe(true);
  }, 120_000);

  it('opens every replica\'s breaker when the upstream is black-holed: the others fail fast without contacting it and serve cached tags stale', async () => {
    const kept = await pushSmall('kept');
    const layer = kept.manifests[0].layers[0].digest;
    expect(await pullManifest(cluster.url, 'kept')).toEqual({ status: 200, digest: kept.digest });
    const blob = await fetch(`${cluster.url}/v2/${ORG}/library/kept/blobs/${layer}`, { headers: { authorization: auth } });
    expect(blob.status).toBe(200);
    await blob.arrayBuffer();
    await pushSmall('cold');
    await sleep(EXPIRATION_S * 1000 + 500);

    relay.blackHole = true;
    relay.resetLog();
    const [first, ...others] = cluster.replicas;
    // Pulls of content not cached on the first replica until its breaker opens (each waits for answers that never come).
    const statuses: number[] = [];
    for (let i = 0; i < 6 && (await metric(first, 'entrepot_upstream_circuit_state')) !== 2; i++) {
      statuses.push((await pullManifest(first.process.url, 'cold', `missing-${i}`)).status);
    }
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 503)).toBe(true);
    expect(await gaugesReach(cluster.replicas, 'entrepot_upstream_circuit_state', 2)).toEqual([2, 2, 2]);
    const contacted = relay.requests().length;
    expect(contacted).toBeGreaterThan(0);

    for (const r of others) {
      // Cold content fails fast (the breaker answers, not a timeout); the stale tag and its layer are served.
      expect((await pullManifest(r.process.url, 'cold')).status).toBe(503);
      expect(await pullManifest(r.process.url, 'kept')).toEqual({ status: 200, digest: kept.digest });
      const res = await fetch(`${r.process.url}/v2/${ORG}/library/kept/blobs/${layer}`, { headers: { authorization: auth } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    // Through the load balancer, whichever replica answers.
    for (let i = 0; i < 6; i++) expect(await pullManifest(cluster.url, 'kept')).toEqual({ status: 200, digest: kept.digest });
    expect(relay.requests().length).toBe(contacted);
    relay.blackHole = false;
  }, 180_000);
});
