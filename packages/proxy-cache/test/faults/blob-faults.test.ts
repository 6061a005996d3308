/**
 * Faults in the middle of blob bodies, produced by a real HTTP proxy between
 * Entrepot and a real upstream (SPEC §3 Verify / Resume / No whole-transfer
 * timeout, §6 fault matrix): what the client receives and what is stored.
 */
import { metricValue, registryGet, scratchEntries, startFaultFixture, storedBlob, FAULT_SETTINGS, type FaultFixture } from './fault-fixture';
import type { FaultProxy } from './fault-proxy';
import { eventually } from '../../../../testing/tools';

const MiB = 1024 * 1024;

describe('blob faults between Entrepot and the upstream', () => {
  let ff: FaultFixture;

  // A high breaker threshold: these tests exercise resumes, not the breaker.
  beforeAll(async () => {
    ff = await startFaultFixture({ breaker_failures: 50 });
  });

  afterAll(() => ff.stop());

  /** A cache org behind its own proxy, an upstream image with one layer of `size`, its manifest already cached. */
  async function setUp(org: string, size: number): Promise<{ proxy: FaultProxy; digest: string; size: number; path: string }> {
    const proxy = await ff.cacheOrg(org);
    const image = await ff.pushUpstream(`library/${org}`, 'v1', [size]);
    const manifest = await registryGet(ff.fx, `${org}/library/${org}/manifests/v1`);
    expect(manifest.status).toBe(200);
    const layer = image.manifests[0].layers[0];
    proxy.resetLog();
    return { proxy, digest: layer.digest, size: layer.size, path: `${org}/library/${org}/blobs/${layer.digest}` };
  }

  async function expectScratchEmpty(): Promise<void> {
    await eventually(async () => (await scratchEntries(ff.fx)).length === 0, 5000);
  }

  it('resumes a blob reset mid-body with a Range request; every client gets one correct body', async () => {
    const { proxy, digest, size, path } = await setUp('resetonce', 4 * MiB);
    await proxy.set({ kind: 'reset', atByte: MiB + 1234, times: 1 });

    const [a, b] = await Promise.all([registryGet(ff.fx, path), registryGet(ff.fx, path)]);
    for (const got of [a, b]) {
      expect(got.status).toBe(200);
      expect(got.bodyError).toBeUndefined();
      expect(got.received).toBe(size);
      expect(got.digest).toBe(digest);
    }
    // One download, broken once and resumed from where it broke.
    const gets = proxy.requests().filter((r) => r.method === 'GET' && r.path.endsWith(digest));
    expect(gets.filter((r) => r.range === undefined)).toHaveLength(1);
    const resumed = gets.filter((r) => r.range !== undefined);
    expect(resumed).toHaveLength(1);
    const from = Number(/^bytes=(\d+)-$/.exec(resumed[0].range ?? '')?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(MiB + 1234);

    await eventually(async () => (await storedBlob(ff.fx, digest)) !== null);
    expect(await storedBlob(ff.fx, digest)).toEqual({ size, digest });
    await expectScratchEmpty();
  });

  it('resumes correctly when the upstream ignores the Range and resends the whole blob', async () => {
    const { proxy, digest, size, path } = await setUp('norange', 3 * MiB);
    proxy.ignoreRange = true;
    await proxy.set({ kind: 'reset', atByte: 2 * MiB, times: 1 });

    const got = await registryGet(ff.fx, path);
    expect(got.status).toBe(200);
    expect(got.bodyError).toBeUndefined();
    expect(got.digest).toBe(digest);
    expect(proxy.count({ method: 'GET', path: new RegExp(`${digest}$`), range: true })).toBe(1);
    await eventually(async () => (await storedBlob(ff.fx, digest)) !== null);
    expect(await storedBlob(ff.fx, digest)).toEqual({ size, digest });
    await expectScratchEmpty();
  });

  it('fails the client (never a complete-looking body) and stores nothing when every attempt is reset', async () => {
    const { proxy, digest, size, path } = await setUp('resetalways', 3 * MiB);
    await proxy.set({ kind: 'reset', atByte: MiB });

    const got = await registryGet(ff.fx, path);
    // Either an error status, or the body was cut: never `size` bytes and a clean end.
    expect(got.status >= 500 || got.bodyError !== undefined).toBe(true);
    expect(got.received).toBeLessThan(size);
    // The fill resumed (bounded), then gave up.
    expect(proxy.count({ method: 'GET', path: new RegExp(`${digest}$`), range: true })).toBeGreaterThanOrEqual(1);
    await expectScratchEmpty();
    expect(await storedBlob(ff.fx, digest)).toBeNull();

    // Once the upstream behaves, the next pull fills and stores it.
    await proxy.set({ kind: 'pass' });
    const again = await registryGet(ff.fx, path);
    expect(again.status).toBe(200);
    expect(again.digest).toBe(digest);
    await eventually(async () => (await storedBlob(ff.fx, digest)) !== null);
  });

  it('answers a clear 503 when every attempt breaks before the first byte reached the client', async () => {
    const { proxy, digest, path } = await setUp('resetzero', MiB);
    await proxy.set({ kind: 'reset', atByte: 0 });

    const got = await registryGet(ff.fx, path);
    expect(got.status).toBe(503);
    expect(got.errors?.[0].code).toBe('UNAVAILABLE');
    expect(got.errors?.[0].message).toContain(proxy.host);
    await expectScratchEmpty();
    expect(await storedBlob(ff.fx, digest)).toBeNull();
  });

  it('cuts the body of a blob whose bytes are corrupted, stores nothing and counts the mismatch', async () => {
    const { proxy, digest, size, path } = await setUp('corrupt', 2 * MiB);
    await proxy.set({ kind: 'corrupt', atByte: MiB });
    const before = await metricValue(ff.fx, 'entrepot_cache_digest_mismatches_total', { org: 'corrupt' });

    const got = await registryGet(ff.fx, path);
    expect(got.status >= 500 || got.bodyError !== undefined).toBe(true);
    expect(got.received).toBeLessThan(size);
    expect(got.digest).not.toBe(digest);
    await expectScratchEmpty();
    expect(await storedBlob(ff.fx, digest)).toBeNull();
    expect(await metricValue(ff.fx, 'entrepot_cache_digest_mismatches_total', { org: 'corrupt' })).toBe(before + 1);

    // A Range request to the end of a blob still being checked is cut as well.
    const ranged = await registryGet(ff.fx, path, { headers: { range: `bytes=${size - 1000}-` } });
    expect(ranged.status >= 500 || ranged.bodyError !== undefined).toBe(true);
    expect(ranged.received).toBeLessThan(1000);
    await expectScratchEmpty();
    expect(await storedBlob(ff.fx, digest)).toBeNull();

    await proxy.set({ kind: 'pass' });
    const clean = await registryGet(ff.fx, path);
    expect(clean.status).toBe(200);
    expect(clean.digest).toBe(digest);
    await eventually(async () => (await storedBlob(ff.fx, digest)) !== null);
    expect(await storedBlob(ff.fx, digest)).toEqual({ size, digest });
  });

  it('completes a blob trickling in for longer than every timeout: there is no whole-transfer timeout', async () => {
    const { proxy, digest, size, path } = await setUp('trickle', 3 * MiB);
    await proxy.set({ kind: 'trickle', bytesPerTick: 64 * 1024, tickMs: 100 });

    const got = await registryGet(ff.fx, path);
    expect(got.status).toBe(200);
    expect(got.bodyError).toBeUndefined();
    expect(got.digest).toBe(digest);
    // The transfer outlived the header and idle timeouts (bytes kept flowing).
    expect(got.elapsedMs).toBeGreaterThan(FAULT_SETTINGS.headers_timeout_ms + FAULT_SETTINGS.idle_timeout_ms);
    expect(proxy.count({ method: 'GET', path: new RegExp(`${digest}$`) })).toBe(1);
    await eventually(async () => (await storedBlob(ff.fx, digest)) !== null);
    expect(await storedBlob(ff.fx, digest)).toEqual({ size, digest });
  });
});
