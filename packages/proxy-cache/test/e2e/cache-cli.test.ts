import { join } from 'node:path';
import { runCli } from '../../../registry-core/src/cli/main';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { createOciImage, MULTI_ARCH, pushImage } from '../../../../testing/oci-images';
import { cliExtension } from '../../src/index';
import { startCacheFixture, type CacheFixture } from './cache-fixture';

describe('entrepot CLI: cache commands', () => {
  let fx: CacheFixture;
  let digest: string;

  beforeAll(async () => {
    fx = await startCacheFixture({ auth: { mode: 'anonymous' } });
    const image = await createOciImage(join(fx.work, 'multi'), { tag: '2', platforms: MULTI_ARCH, layerCount: 2, layerSize: 500_000 });
    digest = await pushImage(image.layoutDir, '2', fx.upstream.ref('library/tool', '2'), { all: true });
  });

  afterAll(() => fx.stop());

  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await runCli(
      ['--url', fx.entrepot.url, '--user', ADMIN_USER, '--password', ADMIN_PASSWORD, ...args],
      { out: (s) => (out += s), err: (s) => (err += s), env: {} },
      [cliExtension],
    );
    return { code, out, err };
  }

  it('creates and configures a cache organization, then prefetches every platform of an index', async () => {
    expect((await cli('org', 'create', 'cli')).code).toBe(0);
    const configured = await cli('cache', 'configure', 'cli', 'docker.io', '--endpoint', fx.upstream.url, '--expiration', '600', '--insecure');
    expect(configured).toMatchObject({ code: 0 });
    expect(configured.out).toContain('cli now caches docker.io');
    const shown = await cli('--json', 'cache', 'show', 'cli');
    expect(JSON.parse(shown.out)).toMatchObject({ upstream_registry: 'docker.io', expiration_s: 600 });

    fx.upstream.resetLog();
    const prefetched = await cli('--json', 'cache', 'prefetch', 'cli/tool:2', '--no-progress');
    expect(prefetched.code).toBe(0);
    expect(JSON.parse(prefetched.out)).toMatchObject({ manifests: 3, blobs: 6 });
    // Warm afterwards: the same image needs no upstream GET.
    fx.upstream.resetLog();
    const again = await cli('--json', 'cache', 'prefetch', 'cli/tool:2', '--no-progress');
    expect(again.code).toBe(0);
    expect((await fx.upstream.settledRequests()).filter((r) => r.method === 'GET')).toEqual([]);
    const manifest = await fetch(`${fx.entrepot.url}/v2/cli/tool/manifests/2`, { headers: { authorization: fx.entrepot.adminAuth } });
    expect(manifest.headers.get('docker-content-digest')).toBe(digest);
  });

  it('sets a quota, pins a tag and flushes', async () => {
    expect((await cli('cache', 'quota', 'cli', '100000000', '--policy', 'lfu')).code).toBe(0);
    const quota = await fx.entrepot.api('GET', '/organization/cli/quota');
    expect(quota.body).toMatchObject([{ limit_bytes: 100000000, eviction_policy: 'lfu' }]);
    expect((await cli('cache', 'pin', 'cli/tool', '2')).code).toBe(0);
    const tags = await fx.entrepot.api('GET', '/repository/cli/tool/tag/');
    expect((tags.body as { tags: Array<{ pinned: boolean }> }).tags[0].pinned).toBe(true);
    const flushed = await cli('--json', 'cache', 'flush', 'cli', '--repository', 'tool', '--tag', '2');
    expect(flushed.code).toBe(0);
    expect(JSON.parse(flushed.out)).toMatchObject({ removed: { tags: 1 } });
    const missing = await cli('cache', 'flush', 'cli', '--repository', 'tool', '--tag', '2');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('not found');
  });
});
