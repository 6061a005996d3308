/**
 * SPEC §6 fault matrix, the blob store restarting: the S3 server (SeaweedFS)
 * behind Entrepot is crashed while a fill streams from the upstream, at three
 * moments: before the fill ends (and still down when it commits), and back up
 * before the fill ends, and while a large blob is being uploaded to it; and
 * down while a stored blob is asked for (503 with Retry-After). The client
 * gets the correct body or an error, nothing corrupt or partial is ever
 * stored, and the next pulls complete. A fault proxy slows the upstream so that
 * the fills last as long as each step needs.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Digest } from '@entrepot/registry-core';
import knex from 'knex';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { S3Server } from '../../../../testing/s3-server';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { createPlugin } from '../../src/index';
import { FaultProxy, type FaultMode } from '../faults/fault-proxy';
import {
  KiB,
  MiB,
  OCI_MANIFEST,
  checkDbReferences,
  createCacheOrg,
  entriesOf,
  getChecked,
  pullImage,
  pushRandomImage,
  report,
  waitUntil,
  type Fetched,
  type PushedImage,
} from './infra-fixture';

const ORG = 'hub';

describe('S3 server restarted during fills', () => {
  let s3: S3Server;
  let upstream: UpstreamRegistry;
  let proxy: FaultProxy;
  let entrepot: TestInstance;

  beforeAll(async () => {
    [s3, upstream] = await Promise.all([S3Server.start(), UpstreamRegistry.start({ auth: { mode: 'anonymous' } })]);
    proxy = await FaultProxy.start(upstream.url);
    entrepot = await startEntrepot({
      plugins: [createPlugin],
      env: {
        PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*',
        ENTREPOT_S3_ENDPOINT: s3.endPoint,
        ENTREPOT_S3_PORT: String(s3.port),
        ENTREPOT_S3_USE_SSL: 'false',
        ENTREPOT_S3_ACCESS_KEY: s3.accessKey,
        ENTREPOT_S3_SECRET_KEY: s3.secretKey,
        ENTREPOT_S3_BUCKET: s3.bucket,
        ENTREPOT_S3_REGION: s3.region,
      },
    });
    expect(entrepot.entrepot.services.storage.blobs.kind).toBe('s3');
    await createCacheOrg((m, p, b) => entrepot.api(m, p, b), ORG, proxy.url, { expiration_s: 3600 });
  }, 180_000);

  afterAll(async () => {
    await entrepot?.stop();
    await proxy?.stop();
    await upstream?.stop();
    await s3?.stop();
  });

  /** What the S3 store holds for `digest`: null, or its size and recomputed digest. */
  async function stored(digest: string): Promise<{ size: number; digest: string } | null> {
    const blobs = entrepot.entrepot.services.storage.blobs;
    const stat = await blobs.stat(digest as Digest);
    if (!stat) return null;
    const hash = createHash('sha256');
    for await (const chunk of (await blobs.read(digest as Digest)) as AsyncIterable<Buffer>) hash.update(chunk);
    return { size: stat.size, digest: `sha256:${hash.digest('hex')}` };
  }

  /** A cold image whose manifest (but no blob) is cached, with a layer of `size`. */
  async function coldLayer(repo: string, size: number): Promise<{ image: PushedImage; url: string; layer: { digest: string; size: number } }> {
    await proxy.set({ kind: 'pass' });
    const image = await pushRandomImage(upstream.url, `library/${repo}`, 'v1', [size]);
    const manifest = await getChecked(
      `${entrepot.url}/v2/${ORG}/library/${repo}/manifests/v1`,
      { digest: image.manifestDigest, size: image.manifest.length },
      { headers: { authorization: entrepot.adminAuth, accept: OCI_MANIFEST } },
    );
    expect(manifest.verdict).toBe('ok');
    const layer = image.blobs[1];
    expect(await stored(layer.digest)).toBeNull();
    return { image, layer, url: `${entrepot.url}/v2/${ORG}/library/${repo}/blobs/${layer.digest}` };
  }

  /** Starts a GET of the layer through a slow upstream; `started` resolves once `after` bytes arrived. */
  function slowGet(url: string, layer: { digest: string; size: number }, after: number): { started: Promise<void>; done: Promise<Fetched> } {
    let resolveStarted!: () => void;
    const started = new Promise<void>((resolve) => (resolveStarted = resolve));
    const done = getChecked(url, layer, {
      headers: { authorization: entrepot.adminAuth },
      onBytes: (n) => {
        if (n >= after) resolveStarted();
      },
    });
    void done.then(() => resolveStarted());
    return { started, done };
  }

  /**
   * Whether the fill has ended and removed its scratch file, within a generous
   * guard: a SeaweedFS that just restarted takes about ten seconds to accept
   * the first write (it resets or holds connections meanwhile), and the commit waits for it.
   */
  async function scratchIsEmpty(): Promise<boolean> {
    return waitUntil(async () => (await entriesOf(entrepot.entrepot.services.storage.scratchDir)).length === 0, 60_000);
  }

  async function expectDbConsistent(): Promise<void> {
    const db = knex({ client: 'better-sqlite3', connection: { filename: join(entrepot.dataDir, 'entrepot.db'), options: { readonly: true } }, useNullAsDefault: true });
    try {
      const check = await checkDbReferences(db, async (d) => (await stored(d)) !== null);
      expect(check.manifestsWithoutBytes).toEqual([]);
      expect(check.blobsWithoutBytes).toEqual([]);
    } finally {
      await db.destroy();
    }
  }

  it('a fill that ends while S3 is down: the client gets the whole verified body or an error, nothing is stored, the next pull stores it', async () => {
    const { image, url, layer } = await coldLayer('s3down', 3 * MiB);
    // The proxy reads the mode's tickMs at every tick: setting it to 0 speeds up the transfer in flight
    // (only tickMs: bytesPerTick is also the loop's step, changing it mid-chunk would skip bytes).
    const trickle: FaultMode & { kind: 'trickle' } = { kind: 'trickle', bytesPerTick: 16 * KiB, tickMs: 100 };
    await proxy.set(trickle);
    const get = slowGet(url, layer, 256 * KiB);
    await get.started;
    await s3.down({ crash: true });
    trickle.tickMs = 0;
    const got = await get.done;
    report('s3-restart', `fill ending while S3 is down: client got ${got.verdict} (${got.status}, ${got.received}/${layer.size} bytes${got.bodyError ? `, ${got.bodyError}` : ''})`);
    expect(got.verdict).not.toBe('corrupt');
    expect(['ok', 'cut', 'error']).toContain(got.verdict);
    expect(await scratchIsEmpty()).toBe(true);

    await s3.up();
    const kept = await stored(layer.digest);
    expect(kept === null || (kept.size === layer.size && kept.digest === layer.digest)).toBe(true);
    // The first pull after S3 is back completes, and this time the layer is stored.
    await proxy.set({ kind: 'pass' });
    const again = await pullImage(entrepot.url, image, { name: `${ORG}/library/s3down`, auth: entrepot.adminAuth });
    expect(again.responses.map((r) => `${r.verdict} ${r.status}`)).toEqual(['ok 200', 'ok 200', 'ok 200']);
    expect(await waitUntil(async () => (await stored(layer.digest)) !== null, 60_000)).toBe(true);
    expect(await stored(layer.digest)).toEqual({ size: layer.size, digest: layer.digest });
    await expectDbConsistent();
  }, 120_000);

  it('a fill during which S3 restarts: the client gets the whole body and the blob is stored once S3 is back', async () => {
    const { url, layer } = await coldLayer('s3bounce', 3 * MiB);
    const trickle: FaultMode & { kind: 'trickle' } = { kind: 'trickle', bytesPerTick: 16 * KiB, tickMs: 100 };
    await proxy.set(trickle);
    const get = slowGet(url, layer, 256 * KiB);
    await get.started;
    await s3.restart({ crash: true });
    trickle.tickMs = 0;
    const got = await get.done;
    expect(got.verdict).toBe('ok');
    expect(await scratchIsEmpty()).toBe(true);
    expect(await waitUntil(async () => (await stored(layer.digest)) !== null, 60_000)).toBe(true);
    expect(await stored(layer.digest)).toEqual({ size: layer.size, digest: layer.digest });
    await proxy.set({ kind: 'pass' });
    const warm = await getChecked(url, layer, { headers: { authorization: entrepot.adminAuth } });
    expect(warm.verdict).toBe('ok');
    await expectDbConsistent();
  }, 120_000);

  it('a stored blob asked for while S3 is down is a 503 with Retry-After, never a 500 or a partial body; it is served once S3 is back', async () => {
    const { url, layer } = await coldLayer('s3gone', 2 * MiB);
    const auth = { headers: { authorization: entrepot.adminAuth } };
    expect((await getChecked(url, layer, auth)).verdict).toBe('ok');
    expect(await waitUntil(async () => (await stored(layer.digest)) !== null, 60_000)).toBe(true);
    await s3.down({ crash: true });
    try {
      const res = await fetch(url, auth);
      const body = await res.text();
      expect({ status: res.status, retryAfter: res.headers.get('retry-after') }).toEqual({ status: 503, retryAfter: '1' });
      expect(JSON.parse(body).errors[0].code).toBe('UNAVAILABLE');
    } finally {
      await s3.up();
    }
    expect((await getChecked(url, layer, auth)).verdict).toBe('ok');
    await expectDbConsistent();
  }, 120_000);

  it('S3 crashing while a large blob is uploaded to it leaves nothing partial; the upload is retried once S3 is back', async () => {
    const { image, url, layer } = await coldLayer('s3commit', 48 * MiB);
    proxy.resetLog();
    const crash: { done?: Promise<void> } = {};
    // The last byte reaches clients once the whole blob is verified, just before the upload starts.
    const got = await getChecked(url, layer, {
      headers: { authorization: entrepot.adminAuth },
      onBytes: (n) => {
        if (n === layer.size && !crash.done) crash.done = s3.down({ crash: true });
      },
    });
    await crash.done;
    expect(got.verdict).toBe('ok');
    await s3.up();
    // Whatever the upload had sent is not visible as the blob: it is absent or whole.
    const early = await stored(layer.digest);
    expect(early === null || (early.size === layer.size && early.digest === layer.digest)).toBe(true);
    expect(await scratchIsEmpty()).toBe(true);
    const kept = await stored(layer.digest);
    report('s3-restart', `crash during the upload of ${layer.size} bytes: ${kept ? 'stored whole by the retried upload' : 'not stored'}`);
    expect(kept).toEqual({ size: layer.size, digest: layer.digest });
    // Kept without a second download from the upstream.
    expect(proxy.count({ method: 'GET', path: new RegExp(`${layer.digest}$`) })).toBe(1);
    const again = await pullImage(entrepot.url, image, { name: `${ORG}/library/s3commit`, auth: entrepot.adminAuth });
    expect(again.responses.map((r) => `${r.verdict} ${r.status}`)).toEqual(['ok 200', 'ok 200', 'ok 200']);
    await expectDbConsistent();
  }, 120_000);
});
