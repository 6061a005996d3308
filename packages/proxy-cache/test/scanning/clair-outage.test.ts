import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ClairServer } from '../../../../testing/clair';
import { ADMIN_PASSWORD, ADMIN_USER, startEntrepot } from '../../../../testing/entrepot-instance';
import { MEDIA_TYPES, pushImage, sha256Digest, skopeoCopyOut } from '../../../../testing/oci-images';
import { createOsImage } from '../../../../testing/os-images';
import { freePort } from '../../../../testing/tools';
import { startCacheFixture, type CacheFixture } from '../e2e/cache-fixture';
import { ALPINE_VULNERABLE, DEBIAN_VULNERABLE, scannerEnv, securityPath, VULNERABILITIES, vulnerabilitiesOf, waitForStatus } from './scan-fixture';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;

/** An image whose one layer says tar+gzip but is random bytes: Clair cannot unpack it. */
async function unreadableImage(layoutDir: string, tag: string): Promise<void> {
  await mkdir(join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const put = async (data: Buffer): Promise<string> => {
    const digest = sha256Digest(data);
    await writeFile(join(layoutDir, 'blobs', 'sha256', digest.slice(7)), data);
    return digest;
  };
  const layer = randomBytes(4096);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Digest(layer)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: MEDIA_TYPES.ociConfig, digest: await put(config), size: config.length },
      layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, digest: await put(layer), size: layer.length }],
    }),
  );
  const digest = await put(manifest);
  await writeFile(join(layoutDir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }] }));
}

describe('security scanning when Clair is down or failing', () => {
  let clair: ClairServer;
  let fx: CacheFixture;

  beforeAll(async () => {
    clair = await ClairServer.start();
    await clair.importVulnerabilities(VULNERABILITIES);
    fx = await startCacheFixture({ auth: { mode: 'anonymous' }, entrepot: { env: scannerEnv(clair) } });
    await fx.createCacheOrg('hub');
    expect((await fx.entrepot.api('POST', '/organization/', { name: 'team' })).status).toBe(201);
  });

  afterAll(async () => {
    await fx?.stop();
    await clair?.stop();
  });

  it('serves pulls while Clair is stopped, keeps the scan queued, and completes it once Clair is back', async () => {
    const image = await createOsImage(join(fx.work, 'later'), { tag: 'later', flavour: 'alpine', packages: ALPINE_VULNERABLE });
    await pushImage(join(fx.work, 'later'), 'later', fx.upstream.ref('library/later', 'later'));
    const pushed = await createOsImage(join(fx.work, 'deb'), { tag: 'v1', flavour: 'debian', packages: DEBIAN_VULNERABLE });
    await clair.down();
    try {
      // Pulls and pushes behave as with scanning off.
      expect(await skopeoCopyOut(`${fx.entrepot.host}/hub/library/later:later`, join(fx.work, 'o1'), { creds })).toBe(image.digest);
      expect(await skopeoCopyOut(`${fx.entrepot.host}/hub/library/later:later`, join(fx.work, 'o2'), { creds })).toBe(image.digest);
      await pushImage(join(fx.work, 'deb'), 'v1', `${fx.entrepot.host}/team/deb:v1`, { creds });
      expect(await skopeoCopyOut(`${fx.entrepot.host}/team/deb:v1`, join(fx.work, 'o3'), { creds })).toBe(pushed.digest);

      const tags = await fx.entrepot.api('GET', '/repository/hub/library/later/tag/');
      expect((tags.body as { tags: Array<{ security: { status: string } }> }).tags[0].security).toMatchObject({ status: 'queued' });
      // No stored report and no scanner: a clear 520, not a 5xx crash or an empty success.
      const answer = await fx.entrepot.api('GET', securityPath('hub', 'library/later', image.digest));
      expect(answer.status).toBe(520);
      expect(JSON.stringify(answer.body)).toMatch(/security scanner could not be reached/);
      const health = (await (await fetch(`${fx.entrepot.url}/health`)).json()) as { status: string; services: Record<string, { status: string; error: string }> };
      expect(health.status).toBe('ok');
      expect(health.services.security_scanner).toMatchObject({ status: 'unreachable', error: expect.stringMatching(/unreachable/) });

      // An organization that refuses unscanned images refuses this one, saying why.
      await fx.entrepot.api('PUT', '/organization/team/securitypolicy', { block_unscanned: true });
      const refused = await fetch(`${fx.entrepot.url}/v2/team/deb/manifests/v1`, { headers: { authorization: fx.entrepot.adminAuth } });
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { errors: Array<{ message: string }> }).errors[0].message).toMatch(/no vulnerability report yet/);
      await fx.entrepot.api('PUT', '/organization/team/securitypolicy', { block_unscanned: false });
    } finally {
      await clair.up();
    }
    const done = await waitForStatus(fx.entrepot, securityPath('hub', 'library/later', image.digest), 'scanned', 120_000);
    expect(vulnerabilitiesOf(done).map((v) => v.Name).sort()).toEqual(['CVE-2099-0001', 'CVE-2099-0003']);
    const deb = await waitForStatus(fx.entrepot, securityPath('team', 'deb', pushed.digest), 'scanned', 120_000);
    expect(vulnerabilitiesOf(deb).map((v) => v.Name)).toEqual(['CVE-2099-0002']);
  }, 300_000);

  it('marks a scan failed with Clair’s reason after the retries when Clair cannot index the image', async () => {
    await unreadableImage(join(fx.work, 'broken'), 'broken');
    // skopeo rewrites this manifest on the way (the layer is not what it says): the digest is the pushed one.
    const digest = await pushImage(join(fx.work, 'broken'), 'broken', `${fx.entrepot.host}/team/broken:broken`, { creds });
    const failed = await waitForStatus(fx.entrepot, securityPath('team', 'broken', digest), 'failed', 120_000);
    expect(failed.data).toBeNull();
    expect(failed.reason).toMatch(/^Clair /);
    const metrics = await (await fetch(`${fx.entrepot.url}/metrics`)).text();
    expect(metrics).toMatch(/entrepot_security_scans_failed_total\{reason="scanner_error"\} 1/);
    // Pulls of it are unaffected.
    expect(await skopeoCopyOut(`${fx.entrepot.host}/team/broken:broken`, join(fx.work, 'o4'), { creds })).toBe(digest);
  }, 300_000);

  it('marks what Clair cannot read as unsupported', async () => {
    // An artifact (not a container image config) has nothing to scan.
    const layout = join(fx.work, 'artifact');
    await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
    const blob = gzipSync(Buffer.from('hello'));
    const blobDigest = sha256Digest(blob);
    await writeFile(join(layout, 'blobs', 'sha256', blobDigest.slice(7)), blob);
    const empty = Buffer.from('{}');
    const emptyDigest = sha256Digest(empty);
    await writeFile(join(layout, 'blobs', 'sha256', emptyDigest.slice(7)), empty);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        artifactType: 'application/vnd.example.thing',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
        layers: [{ mediaType: 'application/vnd.example.thing.layer', digest: blobDigest, size: blob.length }],
      }),
    );
    const digest = sha256Digest(manifest);
    for (const [d, data] of [
      [blobDigest, blob],
      [emptyDigest, empty],
    ] as const) {
      const start = await fetch(`${fx.entrepot.url}/v2/team/thing/blobs/uploads/?digest=${d}`, { method: 'POST', headers: { authorization: fx.entrepot.adminAuth, 'content-type': 'application/octet-stream' }, body: data });
      expect(start.status).toBe(201);
    }
    const put = await fetch(`${fx.entrepot.url}/v2/team/thing/manifests/v1`, { method: 'PUT', headers: { authorization: fx.entrepot.adminAuth, 'content-type': MEDIA_TYPES.ociManifest }, body: manifest });
    expect(put.status).toBe(201);
    const answer = await waitForStatus(fx.entrepot, securityPath('team', 'thing', digest), 'unsupported');
    expect(answer.reason).toMatch(/not a container image/);
  });

  it('starts with a wrong or unreachable scanner endpoint and reports it in /health; pulls work', async () => {
    const closed = await freePort();
    const unreachable = await startEntrepot({ env: { FEATURE_SECURITY_SCANNER: 'true', SECURITY_SCANNER_V4_ENDPOINT: `http://127.0.0.1:${closed}`, SECURITY_SCANNER_V4_PSK: clair.psk! } });
    const misconfigured = await startEntrepot({ env: { FEATURE_SECURITY_SCANNER: 'true', SECURITY_SCANNER_V4_ENDPOINT: 'not a url', SECURITY_SCANNER_V4_PSK: 'secret!!' } });
    try {
      const a = (await (await fetch(`${unreachable.url}/health`)).json()) as { status: string; services: Record<string, { status: string; error: string }> };
      expect(a.status).toBe('ok');
      expect(a.services.security_scanner.status).toBe('unreachable');
      expect(a.services.security_scanner.error).toContain(`127.0.0.1:${closed}`);
      const b = (await (await fetch(`${misconfigured.url}/health/endtoend`)).json()) as { status: string; services: Record<string, { status: string; error: string }> };
      expect(b.status).toBe('ok');
      expect(b.services.security_scanner.status).toBe('misconfigured');
      expect(b.services.security_scanner.error).toMatch(/v4_endpoint/);
      expect(b.services.security_scanner.error).toMatch(/v4_psk/);
      expect(JSON.stringify(b)).not.toContain('secret!!');

      expect((await unreachable.api('POST', '/organization/', { name: 'team' })).status).toBe(201);
      const image = await createOsImage(join(fx.work, 'u'), { tag: 'v1', flavour: 'alpine', packages: ALPINE_VULNERABLE });
      await pushImage(join(fx.work, 'u'), 'v1', `${unreachable.host}/team/u:v1`, { creds });
      expect(await skopeoCopyOut(`${unreachable.host}/team/u:v1`, join(fx.work, 'o5'), { creds })).toBe(image.digest);
    } finally {
      await unreachable.stop();
      await misconfigured.stop();
    }
  });
});
