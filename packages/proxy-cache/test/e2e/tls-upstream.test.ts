import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage, skopeoCopyOut } from '../../../../testing/oci-images';
import { startCacheFixture, type CacheFixture } from './cache-fixture';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;

/**
 * Upstreams on the internet speak TLS: their blob bodies come as TLS records,
 * which the cache gathers into its pool buffers before the fill hashes,
 * writes and serves them (plain-HTTP bodies are read straight into them).
 */
describe('pull-through from an upstream over TLS (self-signed, insecure)', () => {
  let fx: CacheFixture;
  let pushed: string;
  let layerDigests: string[];

  beforeAll(async () => {
    fx = await startCacheFixture({ upstreamTls: true });
    expect(fx.upstream.url.startsWith('https://')).toBe(true);
    const image = await createOciImage(join(fx.work, 'tls-app'), { tag: 'v1', layerCount: 2, layerSize: 6_000_000 });
    layerDigests = image.manifests[0].layers.map((l) => l.digest);
    pushed = await pushImage(image.layoutDir, 'v1', fx.upstream.ref('library/tls-app', 'v1'), { creds: fx.upstream.creds });
    await fx.createCacheOrg('tlscache');
  });

  afterAll(() => fx.stop());

  it('serves a cold pull byte-identical to the upstream, each blob fetched once, then warm', async () => {
    fx.upstream.resetLog();
    const dest = join(fx.work, 'cold');
    expect(await skopeoCopyOut(`${fx.entrepot.host}/tlscache/library/tls-app:v1`, dest, { creds })).toBe(pushed);
    for (const digest of layerDigests) {
      const bytes = await readFile(join(dest, digest.slice('sha256:'.length)));
      expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(digest);
    }
    const blobGets = (await fx.upstream.settledRequests()).filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
    // Config and two layers, each once.
    expect(blobGets).toHaveLength(3);
    expect(new Set(blobGets.map((r) => r.path)).size).toBe(3);

    fx.upstream.resetLog();
    expect(await skopeoCopyOut(`${fx.entrepot.host}/tlscache/library/tls-app:v1`, join(fx.work, 'warm'), { creds })).toBe(pushed);
    expect((await fx.upstream.settledRequests()).filter((r) => r.path.includes('/blobs/'))).toEqual([]);
  });
});
