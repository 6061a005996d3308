import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER, startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { createOciImage, MULTI_ARCH, pushImage, skopeoCopyOut, skopeoInspectRaw } from '../../../../testing/oci-images';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;

describe('skopeo push and pull through Entrepot (embedded backends)', () => {
  let instance: TestInstance;
  let work: string;

  beforeAll(async () => {
    instance = await startEntrepot();
    work = mkdtempSync(join(tmpdir(), 'entrepot-skopeo-'));
    const created = await instance.api('POST', '/organization/', { name: 'acme' });
    expect(created.status).toBe(201);
  });

  afterAll(async () => {
    await instance.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('round-trips a multi-arch index with identical digests', async () => {
    const image = await createOciImage(join(work, 'multi'), { tag: 'v1', platforms: MULTI_ARCH, layerCount: 2, layerSize: 200_000 });
    const pushed = await pushImage(image.layoutDir, 'v1', `${instance.host}/acme/tools/multi:v1`, { creds, all: true });
    expect(pushed).toBe(image.digest);

    const raw = await skopeoInspectRaw(`${instance.host}/acme/tools/multi:v1`, { creds });
    expect(JSON.parse(raw.toString()).manifests).toHaveLength(2);

    const pulled = await skopeoCopyOut(`${instance.host}/acme/tools/multi:v1`, join(work, 'out-multi'), { creds, all: true });
    expect(pulled).toBe(image.digest);
  });

  it('round-trips Docker v2 schema 2 media types byte for byte', async () => {
    const image = await createOciImage(join(work, 'docker'), { tag: 'v2', layerCount: 3 });
    const pushed = await pushImage(image.layoutDir, 'v2', `${instance.host}/acme/app:v2`, { creds, format: 'v2s2' });
    const raw = await skopeoInspectRaw(`${instance.host}/acme/app:v2`, { creds });
    expect(JSON.parse(raw.toString()).mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const pulled = await skopeoCopyOut(`${instance.host}/acme/app:v2`, join(work, 'out-docker'), { creds });
    expect(pulled).toBe(pushed);
  });

  it('refuses anonymous pulls of a private organization', async () => {
    const res = await fetch(`${instance.url}/v2/acme/app/manifests/v2`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/v2\/auth"/);
  });
});
