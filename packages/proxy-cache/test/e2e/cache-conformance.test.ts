import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { runConformance } from '../../../../testing/oci-conformance';
import { createOciImage, MULTI_ARCH, pushImage } from '../../../../testing/oci-images';
import { startCacheFixture, type CacheFixture } from './cache-fixture';

describe('OCI conformance: pull workflow against a cache organization', () => {
  let fx: CacheFixture;

  beforeAll(async () => {
    fx = await startCacheFixture({ auth: { mode: 'anonymous' } });
    await fx.createCacheOrg('mirror', { expiration_s: 60 });
  });

  afterAll(() => fx.stop());

  it('passes every pull test with content that exists only upstream', async () => {
    const single = await createOciImage(join(fx.work, 'single'), { tag: 'v1', layerCount: 2 });
    const multi = await createOciImage(join(fx.work, 'multi'), { tag: 'v2', platforms: MULTI_ARCH });
    await pushImage(single.layoutDir, 'v1', fx.upstream.ref('library/conf', 'v1'));
    await pushImage(multi.layoutDir, 'v2', fx.upstream.ref('library/conf', 'v2'), { all: true });
    const manifests = [single.digest, multi.digest, ...multi.manifests.map((m) => m.digest)];
    const blobs = [...single.manifests, ...multi.manifests].flatMap((m) => [m.config.digest, ...m.layers.map((l) => l.digest)]);

    const result = await runConformance(
      {
        OCI_REGISTRY: fx.entrepot.host,
        OCI_REPO1: 'mirror/library/conf',
        OCI_REPO2: 'mirror/library/conf2',
        OCI_USERNAME: ADMIN_USER,
        OCI_PASSWORD: ADMIN_PASSWORD,
        OCI_API_PUSH: 'false',
        OCI_API_BLOBS_DELETE: 'false',
        OCI_API_MANIFESTS_DELETE: 'false',
        OCI_API_TAGS_DELETE: 'false',
        OCI_API_REFERRER: 'false',
        OCI_RO_DATA_TAGS: 'v1 v2',
        OCI_RO_DATA_MANIFESTS: manifests.join(' '),
        OCI_RO_DATA_BLOBS: [...new Set(blobs)].join(' '),
      },
      mkdtempSync(join(tmpdir(), 'entrepot-cache-conformance-')),
    );
    process.stdout.write(`OCI conformance (cache org, pull): ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped\n`);
    expect(result.failures).toEqual([]);
    expect(result.passed).toBeGreaterThan(10);
  }, 300_000);
});
