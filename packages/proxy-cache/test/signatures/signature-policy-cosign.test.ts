import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage, skopeoCopyOut } from '../../../../testing/oci-images';
import { requireTool } from '../../../../testing/tools';
import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';
import { Cosign, type Login } from '../referrers/artifact-clients';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;
const admin: Login = { username: ADMIN_USER, password: ADMIN_PASSWORD };

/**
 * Real cosign (key pairs, no transparency log) against a real upstream, and
 * a cache organization that requires signatures by one key.
 */
describe('cosign signatures through a cache organization and the require_signature policy', () => {
  let fx: CacheFixture;
  let cosign: Cosign;
  let trusted: { key: string; pub: string };
  let other: { key: string; pub: string };
  const digests: Record<string, string> = {};

  async function audit(org: string): Promise<string> {
    await fx.entrepot.entrepot.services.audit.flush();
    await fx.entrepot.entrepot.services.queue.drain();
    return JSON.stringify((await fx.entrepot.api('GET', `/organization/${org}/logs?kind=pull_repo`)).body);
  }

  async function usage(org: string): Promise<number> {
    const row = await fx.entrepot.entrepot.services.repositories.findOrg(org);
    return fx.entrepot.entrepot.services.quotas.usage(row!.id);
  }

  beforeAll(async () => {
    requireTool('cosign');
    // A password that begins with '-', as a generated one does now and then: the clients must not read it as a flag.
    fx = await startCacheFixture({ auth: { mode: 'htpasswd', password: `-${randomBytes(12).toString('base64url')}` } });
    const home = join(fx.work, 'cosign-home');
    mkdirSync(home);
    cosign = new Cosign(home);
    trusted = await cosign.generateKeyPair('trusted');
    other = await cosign.generateKeyPair('other');
    await cosign.login(fx.upstream.host, fx.upstream.credentials!);
    for (const [name, seed] of [['signed', 's1'], ['unsigned', 's2'], ['othersigned', 's3'], ['evicted', 's4'], ['pinned', 's5']] as const) {
      const image = await createOciImage(join(fx.work, name), { tag: '1.0', layerCount: 1, layerSize: 40_000, seed });
      digests[name] = await pushImage(image.layoutDir, '1.0', fx.upstream.ref(`library/${name}`, '1.0'), { creds: fx.upstream.creds! });
    }
    for (const name of ['signed', 'evicted', 'pinned']) await cosign.sign(fx.upstream.ref(`library/${name}`, digests[name]), trusted.key);
    await cosign.sign(fx.upstream.ref('library/othersigned', digests.othersigned), other.key);

    await fx.createCacheOrg('cache', { expiration_s: 3600 });
    await fx.createCacheOrg('strict', { expiration_s: 3600, require_signature: true, signature_public_keys: [readFileSync(trusted.pub, 'utf8')] });
    await fx.createCacheOrg('lru', { expiration_s: 3600 });
    await cosign.login(fx.entrepot.host, admin);
  }, 300_000);

  afterAll(() => fx?.stop());

  it('cosign stored the signature as cosign does: tag sha256-<hex>.sig, simple-signing layer, signature annotation', async () => {
    const hex = digests.signed.slice('sha256:'.length);
    const res = await fetch(`${fx.upstream.url}/v2/library/signed/manifests/sha256-${hex}.sig`, {
      headers: { authorization: `Basic ${Buffer.from(fx.upstream.creds!).toString('base64')}`, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.status).toBe(200);
    const manifest = (await res.json()) as { layers: Array<{ mediaType: string; annotations?: Record<string, string> }> };
    expect(manifest.layers[0].mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
    expect(manifest.layers[0].annotations?.['dev.cosignproject.cosign/signature']).toMatch(/^[A-Za-z0-9+/=]+$/);
  });

  it('cosign verify --key through the cache succeeds, and fails with another key', async () => {
    const ok = await cosign.verify(`${fx.entrepot.host}/cache/library/signed:1.0`, trusted.pub);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('The signatures were verified against the specified public key');
    expect(ok.stdout.toString('utf8')).toContain(digests.signed);
    const wrongKey = await cosign.verify(`${fx.entrepot.host}/cache/library/signed:1.0`, other.pub);
    expect(wrongKey.code).not.toBe(0);
  });

  it('lets a signed image through the policy (skopeo) and cosign verify works through it', async () => {
    expect(await skopeoCopyOut(`${fx.entrepot.host}/strict/library/signed:1.0`, join(fx.work, 'strict-signed'), { creds })).toBe(digests.signed);
    expect((await cosign.verify(`${fx.entrepot.host}/strict/library/signed:1.0`, trusted.pub)).code).toBe(0);
    expect(await audit('strict')).toContain('"cache_result":"miss"');
  });

  it('verifies a repeated pull inside the staleness period without asking the upstream', async () => {
    await fx.upstream.settledRequests();
    fx.upstream.resetLog();
    expect(await skopeoCopyOut(`${fx.entrepot.host}/strict/library/signed:1.0`, join(fx.work, 'strict-signed-2'), { creds })).toBe(digests.signed);
    expect(await fx.upstream.settledRequests()).toEqual([]);
  });

  it('refuses an unsigned image with DENIED naming the policy, audits it as blocked and counts it', async () => {
    await expect(skopeoCopyOut(`${fx.entrepot.host}/strict/library/unsigned:1.0`, join(fx.work, 'strict-unsigned'), { creds })).rejects.toThrow(/signature policy of cache organization strict/);
    const res = await fetch(`${fx.entrepot.url}/v2/strict/library/unsigned/manifests/1.0`, { headers: { authorization: fx.entrepot.adminAuth, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0].code).toBe('DENIED');
    expect(body.errors[0].message).toContain('require_signature');
    const log = await audit('strict');
    expect(log).toContain('"cache_result":"blocked"');
    expect(log).toContain(digests.unsigned);
    const metrics = await (await fetch(`${fx.entrepot.url}/metrics`, { headers: { authorization: fx.entrepot.adminAuth } })).text();
    expect(metrics).toMatch(/entrepot_cache_signature_checks_total\{org="strict",result="refused"\} [1-9]/);
    expect(metrics).toMatch(/entrepot_cache_signature_checks_total\{org="strict",result="verified"\} [1-9]/);
  });

  it('does not count a signature made with another key', async () => {
    await expect(skopeoCopyOut(`${fx.entrepot.host}/strict/library/othersigned:1.0`, join(fx.work, 'strict-other'), { creds })).rejects.toThrow(/require_signature/);
    // The same image passes once that key is trusted as well.
    const both = [readFileSync(trusted.pub, 'utf8'), readFileSync(other.pub, 'utf8')];
    const cfg = await fx.entrepot.api('POST', '/organization/strict/proxycache', {
      upstream_registry: 'docker.io',
      upstream_endpoint: fx.upstream.url,
      insecure: true,
      upstream_registry_username: fx.upstream.credentials!.username,
      expiration_s: 3600,
      require_signature: true,
      signature_public_keys: both,
    });
    expect(cfg.status).toBe(201);
    // Quay's answer to POST is the bare "Created"; the configuration is read back.
    const saved = await fx.entrepot.api('GET', '/organization/strict/proxycache');
    expect((saved.body as { signature_key_fingerprints: string[] }).signature_key_fingerprints).toHaveLength(2);
    expect(await skopeoCopyOut(`${fx.entrepot.host}/strict/library/othersigned:1.0`, join(fx.work, 'strict-other-2'), { creds })).toBe(digests.othersigned);
  });

  it('evicts a signed image with its signature (usage returns to the figure before the pull), and a pin keeps both', async () => {
    const before = await usage('lru');
    expect(await skopeoCopyOut(`${fx.entrepot.host}/lru/library/evicted:1.0`, join(fx.work, 'lru-evicted'), { creds })).toBe(digests.evicted);
    expect((await cosign.verify(`${fx.entrepot.host}/lru/library/evicted:1.0`, trusted.pub)).code).toBe(0);
    const sigTag = `sha256-${digests.evicted.slice('sha256:'.length)}.sig`;
    const tags = async (repo: string) => ((await fx.entrepot.api('GET', `/repository/lru/library/${repo}/tag/`)).body as { tags: Array<{ name: string }> }).tags.map((t) => t.name).sort();
    expect(await tags('evicted')).toEqual(['1.0', sigTag]);
    expect(await usage('lru')).toBeGreaterThan(before);

    // A quota of one byte leaves nothing evictable standing.
    expect((await fx.entrepot.api('POST', '/organization/lru/quota', { limit_bytes: 1 })).status).toBe(201);
    expect(await tags('evicted')).toEqual([]);
    expect(await usage('lru')).toBe(before);

    const pinnedSig = `sha256-${digests.pinned.slice('sha256:'.length)}.sig`;
    const quotaId = ((await fx.entrepot.api('GET', '/organization/lru/quota')).body as Array<{ id: number }>)[0].id;
    expect((await fx.entrepot.api('PUT', `/organization/lru/quota/${quotaId}`, { limit_bytes: 100_000_000 })).status).toBe(200);
    expect(await skopeoCopyOut(`${fx.entrepot.host}/lru/library/pinned:1.0`, join(fx.work, 'lru-pinned'), { creds })).toBe(digests.pinned);
    expect((await cosign.verify(`${fx.entrepot.host}/lru/library/pinned:1.0`, trusted.pub)).code).toBe(0);
    expect((await fx.entrepot.api('PUT', '/repository/lru/library/pinned/tag/1.0/pin')).status).toBe(200);
    expect((await fx.entrepot.api('PUT', `/organization/lru/quota/${quotaId}`, { limit_bytes: 1 })).status).toBe(200);
    expect(await tags('pinned')).toEqual(['1.0', pinnedSig]);
  });

  it('flushing a tag takes its signature with it', async () => {
    expect(await skopeoCopyOut(`${fx.entrepot.host}/cache/library/evicted:1.0`, join(fx.work, 'flush-evicted'), { creds })).toBe(digests.evicted);
    expect((await cosign.verify(`${fx.entrepot.host}/cache/library/evicted:1.0`, trusted.pub)).code).toBe(0);
    const flushed = await fx.entrepot.api('DELETE', '/organization/cache/proxycache/cache?repository=library/evicted&tag=1.0');
    expect(flushed.status).toBe(200);
    expect((flushed.body as { removed: { tags: number } }).removed.tags).toBe(2);
    const left = await fx.entrepot.api('GET', '/repository/cache/library/evicted/tag/');
    expect((left.body as { tags: unknown[] }).tags).toEqual([]);
  });
});
