import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage, skopeoCopyOut } from '../../../../testing/oci-images';
import { sleep } from '../../../../testing/tools';
import { startCacheFixture, type CacheFixture } from './cache-fixture';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;

describe('pull-through cache against a real upstream (htpasswd)', () => {
  let fx: CacheFixture;
  let upstreamCreds: string;
  let v1: string;

  beforeAll(async () => {
    fx = await startCacheFixture();
    upstreamCreds = fx.upstream.creds!;
    const image = await createOciImage(join(fx.work, 'app-v1'), { tag: 'v1', layerCount: 3, layerSize: 300_000 });
    v1 = await pushImage(image.layoutDir, 'v1', fx.upstream.ref('library/app', 'v1'), { creds: upstreamCreds });
    // Long enough that a push and a pull fit inside one staleness period on a busy machine.
    await fx.createCacheOrg('cache', { expiration_s: 6 });
  });

  afterAll(() => fx.stop());

  it('serves a cold pull byte-identical to the upstream, then warm pulls with zero upstream requests', async () => {
    fx.upstream.resetLog();
    const cold = await skopeoCopyOut(`${fx.entrepot.host}/cache/library/app:v1`, join(fx.work, 'cold'), { creds });
    expect(cold).toBe(v1);
    const coldRequests = await fx.upstream.settledRequests();
    expect(coldRequests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'))).toHaveLength(4);

    fx.upstream.resetLog();
    const warm = await skopeoCopyOut(`${fx.entrepot.host}/cache/library/app:v1`, join(fx.work, 'warm'), { creds });
    expect(warm).toBe(v1);
    expect(await fx.upstream.settledRequests()).toEqual([]);
  });

  it('maps single-segment Docker Hub names to library/', async () => {
    fx.upstream.resetLog();
    const pulled = await skopeoCopyOut(`${fx.entrepot.host}/cache/app:v1`, join(fx.work, 'short'), { creds });
    expect(pulled).toBe(v1);
    const requests = await fx.upstream.settledRequests();
    expect(requests.some((r) => r.path === '/v2/library/app/manifests/v1')).toBe(true);
  });

  it('revalidates with one HEAD after the staleness period and follows an overwritten tag', async () => {
    await sleep(6100);
    fx.upstream.resetLog();
    const again = await skopeoCopyOut(`${fx.entrepot.host}/cache/library/app:v1`, join(fx.work, 'reval'), { creds });
    expect(again).toBe(v1);
    const requests = await fx.upstream.settledRequests();
    const manifestRequests = requests.filter((r) => r.path.includes('/manifests/'));
    expect(manifestRequests.map((r) => r.method)).toEqual(['HEAD']);

    const image2 = await createOciImage(join(fx.work, 'app-v1b'), { tag: 'v1', layerCount: 1 });
    const v1b = await pushImage(image2.layoutDir, 'v1', fx.upstream.ref('library/app', 'v1'), { creds: upstreamCreds });
    expect(v1b).not.toBe(v1);
    // Still inside the new staleness period: the old digest is served.
    expect(await skopeoCopyOut(`${fx.entrepot.host}/cache/library/app:v1`, join(fx.work, 'old'), { creds })).toBe(v1);
    await sleep(6100);
    expect(await skopeoCopyOut(`${fx.entrepot.host}/cache/library/app:v1`, join(fx.work, 'new'), { creds })).toBe(v1b);
  });

  it('refuses pushes into the cache organization with DENIED naming the upstream', async () => {
    const res = await fetch(`${fx.entrepot.url}/v2/cache/library/app/blobs/uploads/`, { method: 'POST', headers: { authorization: fx.entrepot.adminAuth } });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0].code).toBe('DENIED');
    expect(body.errors[0].message).toContain('docker.io');
  });

  it('makes one upstream GET for 20 concurrent cold requests of a 50 MB blob', async () => {
    const big = await createOciImage(join(fx.work, 'big'), { tag: 'big', layerCount: 1, layerSize: 50 * 1024 * 1024 });
    await pushImage(big.layoutDir, 'big', fx.upstream.ref('library/big', 'big'), { creds: upstreamCreds });
    const layer = big.manifests[0].layers[0];
    // The manifest first, as a client would.
    const manifest = await fetch(`${fx.entrepot.url}/v2/cache/library/big/manifests/big`, { headers: { authorization: fx.entrepot.adminAuth, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(manifest.status).toBe(200);
    fx.upstream.resetLog();
    const blobInserts: string[] = [];
    const onQuery = (q: { sql: string; bindings?: unknown[] }): void => {
      if (/^insert into [`"](repo_)?blobs[`"]/i.test(q.sql) && q.bindings?.includes(layer.digest)) blobInserts.push(q.sql);
    };
    fx.entrepot.entrepot.services.db.on('query', onQuery);
    const hashes = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await fetch(`${fx.entrepot.url}/v2/cache/library/big/blobs/${layer.digest}`, { headers: { authorization: fx.entrepot.adminAuth } });
        expect(res.status).toBe(200);
        const hash = createHash('sha256');
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
        return `sha256:${hash.digest('hex')}`;
      }),
    );
    expect(new Set(hashes)).toEqual(new Set([layer.digest]));
    const gets = (await fx.upstream.settledRequests()).filter((r) => r.method === 'GET' && r.path.endsWith(layer.digest));
    expect(gets).toHaveLength(1);
    // The 20 requests record the blob together, not one after another under its lock.
    await waitForQuiet(() => blobInserts.length, 1500);
    fx.entrepot.entrepot.services.db.off('query', onQuery);
    expect(blobInserts).toHaveLength(1);
  }, 120_000);

  it('completes and keeps a blob whose only client disconnected at 10 %', async () => {
    const image = await createOciImage(join(fx.work, 'drop'), { tag: 'd', layerCount: 1, layerSize: 20 * 1024 * 1024 });
    await pushImage(image.layoutDir, 'd', fx.upstream.ref('library/drop', 'd'), { creds: upstreamCreds });
    const layer = image.manifests[0].layers[0];
    await fetch(`${fx.entrepot.url}/v2/cache/library/drop/manifests/d`, { headers: { authorization: fx.entrepot.adminAuth } }).then((r) => r.arrayBuffer());
    const controller = new AbortController();
    const res = await fetch(`${fx.entrepot.url}/v2/cache/library/drop/blobs/${layer.digest}`, { headers: { authorization: fx.entrepot.adminAuth }, signal: controller.signal });
    let received = 0;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        received += chunk.length;
        if (received > layer.size / 10) controller.abort();
      }
    } catch {
      // aborted on purpose
    }
    // The fill goes on without the client; once it is stored, a pull needs no upstream GET.
    let stored = false;
    for (let i = 0; i < 100 && !stored; i++) {
      await sleep(100);
      stored = (await fx.entrepot.entrepot.services.storage.blobs.stat(layer.digest as never)) !== null;
    }
    expect(stored).toBe(true);
    fx.upstream.resetLog();
    const again = await fetch(`${fx.entrepot.url}/v2/cache/library/drop/blobs/${layer.digest}`, { headers: { authorization: fx.entrepot.adminAuth } });
    const hash = createHash('sha256').update(Buffer.from(await again.arrayBuffer())).digest('hex');
    expect(`sha256:${hash}`).toBe(layer.digest);
    expect((await fx.upstream.settledRequests()).filter((r) => r.method === 'GET')).toEqual([]);
  }, 60_000);
});

/** Resolves once `count` has not changed for `quietMs` (background work after a response has finished). */
async function waitForQuiet(count: () => number, quietMs: number): Promise<void> {
  let last = -1;
  let since = Date.now();
  for (;;) {
    const now = count();
    if (now !== last) [last, since] = [now, Date.now()];
    else if (Date.now() - since >= quietMs) return;
    await sleep(100);
  }
}
