import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER, startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage } from '../../../../testing/oci-images';
import { requireTool, sleep } from '../../../../testing/tools';
import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';
import { Oras, type Login } from './artifact-clients';

const SBOM_TYPE = 'application/spdx+json';
const PROVENANCE_TYPE = 'application/vnd.example.provenance+json';
const admin: Login = { username: ADMIN_USER, password: ADMIN_PASSWORD };

/**
 * `oras discover` / `oras pull` through a cache organization, for an upstream
 * without a referrers API (CNCF Distribution 2.8: oras stores referrers under
 * the referrers tag schema) and for one with it (an organization of another
 * Entrepot).
 */
describe('referrers through a cache organization (real oras)', () => {
  let fx: CacheFixture;
  let source: TestInstance;
  let oras: Oras;
  let upstreamLogin: Login;
  let appDigest: string;
  let sbomBytes: Buffer;
  let sbomOnDistribution: string;
  let provenanceOnDistribution: string;
  let sbomOnEntrepot: string;

  beforeAll(async () => {
    requireTool('oras');
    fx = await startCacheFixture();
    // Another instance name, or the cache's loop guard would take it for itself.
    source = await startEntrepot({ overrides: { instance_name: 'entrepot-source' } });
    const home = join(fx.work, 'home');
    mkdirSync(home);
    oras = new Oras(home);
    upstreamLogin = fx.upstream.credentials!;

    const image = await createOciImage(join(fx.work, 'app'), { tag: '1.0', layerCount: 1, layerSize: 50_000 });
    appDigest = await pushImage(image.layoutDir, '1.0', fx.upstream.ref('library/app', '1.0'), { creds: fx.upstream.creds! });
    sbomBytes = Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'app', packages: [{ name: 'openssl', versionInfo: '3.0.15' }] }));
    writeFileSync(join(fx.work, 'sbom.spdx.json'), sbomBytes);
    writeFileSync(join(fx.work, 'provenance.json'), '{"builder":"ci"}');
    sbomOnDistribution = await oras.attach(fx.upstream.ref('library/app', '1.0'), 'sbom.spdx.json', SBOM_TYPE, fx.work, upstreamLogin);
    provenanceOnDistribution = await oras.attach(fx.upstream.ref('library/app', '1.0'), 'provenance.json', PROVENANCE_TYPE, fx.work, upstreamLogin);

    expect((await source.api('POST', '/organization/', { name: 'src' })).status).toBe(201);
    await pushImage(image.layoutDir, '1.0', `${source.host}/src/app:1.0`, { creds: `${ADMIN_USER}:${ADMIN_PASSWORD}` });
    sbomOnEntrepot = await oras.attach(`${source.host}/src/app:1.0`, 'sbom.spdx.json', SBOM_TYPE, fx.work, admin);

    await fx.createCacheOrg('cache', { expiration_s: 3600 });
    expect((await fx.entrepot.api('POST', '/organization/', { name: 'mirror' })).status).toBe(201);
    const mirror = await fx.entrepot.api('POST', '/organization/mirror/proxycache', {
      upstream_registry: 'registry.example/src',
      upstream_endpoint: source.url,
      insecure: true,
      upstream_registry_username: ADMIN_USER,
      upstream_registry_password: ADMIN_PASSWORD,
      expiration_s: 3600,
    });
    expect(mirror.status).toBe(201);
  }, 180_000);

  afterAll(async () => {
    await source?.stop();
    await fx?.stop();
  });

  it('the upstream (Distribution) has no referrers API: oras stored them under the referrers tag schema', async () => {
    const res = await fetch(`${fx.upstream.url}/v2/library/app/tags/list`, { headers: { authorization: `Basic ${Buffer.from(`${upstreamLogin.username}:${upstreamLogin.password}`).toString('base64')}` } });
    const tags = ((await res.json()) as { tags: string[] }).tags;
    expect(tags).toContain(`sha256-${appDigest.slice('sha256:'.length)}`);
  });

  it('plain oras discover through the cache lists the referrers kept under the tag schema', async () => {
    const found = await oras.discover(`${fx.entrepot.host}/cache/library/app:1.0`, admin);
    expect(found.map((r) => r.digest).sort()).toEqual([sbomOnDistribution, provenanceOnDistribution].sort());
    expect(found.find((r) => r.digest === sbomOnDistribution)?.artifactType).toBe(SBOM_TYPE);
  });

  it('honours an artifactType filter and says so (OCI-Filters-Applied)', async () => {
    const found = await oras.discover(`${fx.entrepot.host}/cache/library/app:1.0`, admin, SBOM_TYPE);
    expect(found.map((r) => r.digest)).toEqual([sbomOnDistribution]);
    const res = await fetch(`${fx.entrepot.url}/v2/cache/library/app/referrers/${appDigest}?artifactType=${encodeURIComponent(PROVENANCE_TYPE)}`, {
      headers: { authorization: fx.entrepot.adminAuth },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
    const index = (await res.json()) as { manifests: Array<{ digest: string }> };
    expect(index.manifests.map((m) => m.digest)).toEqual([provenanceOnDistribution]);
  });

  it('answers a repeated discover inside the staleness period with zero upstream requests', async () => {
    await fx.upstream.settledRequests();
    fx.upstream.resetLog();
    const found = await oras.discover(`${fx.entrepot.host}/cache/library/app:1.0`, admin);
    expect(found).toHaveLength(2);
    expect(await fx.upstream.settledRequests()).toEqual([]);
  });

  it('oras pull of the SBOM through the cache returns its bytes, and the pulled referrer stays listed', async () => {
    const out = join(fx.work, 'pulled-sbom');
    await oras.run(['pull', '-o', out, `${fx.entrepot.host}/cache/library/app@${sbomOnDistribution}`], admin);
    expect(readFileSync(join(out, 'sbom.spdx.json')).equals(sbomBytes)).toBe(true);
    fx.upstream.resetLog();
    const again = join(fx.work, 'pulled-sbom-again');
    await oras.run(['pull', '-o', again, `${fx.entrepot.host}/cache/library/app@${sbomOnDistribution}`], admin);
    expect(readFileSync(join(again, 'sbom.spdx.json')).equals(sbomBytes)).toBe(true);
    expect(await fx.upstream.settledRequests()).toEqual([]);
    const found = await oras.discover(`${fx.entrepot.host}/cache/library/app:1.0`, admin);
    expect(found.map((r) => r.digest)).toContain(sbomOnDistribution);
  });

  it('lists referrers from an upstream that has the referrers API (another Entrepot) and pulls them', async () => {
    const found = await oras.discover(`${fx.entrepot.host}/mirror/app:1.0`, admin);
    expect(found.map((r) => r.digest)).toEqual([sbomOnEntrepot]);
    expect(found[0].artifactType).toBe(SBOM_TYPE);
    const out = join(fx.work, 'pulled-from-mirror');
    await oras.run(['pull', '-o', out, `${fx.entrepot.host}/mirror/app@${sbomOnEntrepot}`], admin);
    expect(readFileSync(join(out, 'sbom.spdx.json')).equals(sbomBytes)).toBe(true);
    expect(await oras.discover(`${fx.entrepot.host}/mirror/app:1.0`, admin, PROVENANCE_TYPE)).toEqual([]);
  });

  it('revalidates after the staleness period: a referrer attached upstream later appears', async () => {
    const cfg = await fx.entrepot.api('POST', '/organization/cache/proxycache', {
      upstream_registry: 'docker.io',
      upstream_endpoint: fx.upstream.url,
      insecure: true,
      upstream_registry_username: upstreamLogin.username,
      expiration_s: 1,
    });
    expect(cfg.status).toBe(201);
    writeFileSync(join(fx.work, 'vex.json'), '{"statements":[]}');
    const vex = await oras.attach(fx.upstream.ref('library/app', '1.0'), 'vex.json', 'application/vnd.openvex+json', fx.work, upstreamLogin);
    await sleep(1100);
    const found = await oras.discover(`${fx.entrepot.host}/cache/library/app@${appDigest}`, admin);
    expect(found.map((r) => r.digest)).toContain(vex);
    expect(found).toHaveLength(3);
  });
});
