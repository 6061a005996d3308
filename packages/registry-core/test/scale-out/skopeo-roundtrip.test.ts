/**
 * skopeo pushes and pulls through Entrepot in its scale-out configuration
 * (MariaDB + BullMQ on Redis + S3), and two replicas on the same backends
 * serve each other's content: what one replica stored, the other serves.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER, type TestInstance } from '../../../../testing/entrepot-instance';
import { createOciImage, MULTI_ARCH, pushImage, skopeoCopyOut, skopeoInspectRaw } from '../../../../testing/oci-images';
import { startScaleOutBackends, type ScaleOutBackends } from './scale-out-backends';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;

describe('skopeo push and pull through Entrepot (scale-out: MariaDB + BullMQ + S3)', () => {
  let backends: ScaleOutBackends;
  let replicaA: TestInstance;
  let replicaB: TestInstance;
  let work: string;

  beforeAll(async () => {
    backends = await startScaleOutBackends();
    replicaA = await backends.startReplica();
    replicaB = await backends.startReplica();
    work = mkdtempSync(join(tmpdir(), 'entrepot-skopeo-so-'));
    expect((await replicaA.api('POST', '/organization/', { name: 'acme' })).status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await backends?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('round-trips a multi-arch index with identical digests', async () => {
    const image = await createOciImage(join(work, 'multi'), { tag: 'v1', platforms: MULTI_ARCH, layerCount: 2, layerSize: 200_000 });
    const pushed = await pushImage(image.layoutDir, 'v1', `${replicaA.host}/acme/tools/multi:v1`, { creds, all: true });
    expect(pushed).toBe(image.digest);

    const raw = await skopeoInspectRaw(`${replicaA.host}/acme/tools/multi:v1`, { creds });
    expect(JSON.parse(raw.toString()).manifests).toHaveLength(2);

    const pulled = await skopeoCopyOut(`${replicaA.host}/acme/tools/multi:v1`, join(work, 'out-multi'), { creds, all: true });
    expect(pulled).toBe(image.digest);
  });

  it('serves from one replica what was pushed through the other', async () => {
    const pulled = await skopeoCopyOut(`${replicaB.host}/acme/tools/multi:v1`, join(work, 'out-multi-b'), { creds, all: true });
    const raw = await skopeoInspectRaw(`${replicaA.host}/acme/tools/multi:v1`, { creds });
    expect(JSON.parse(raw.toString()).manifests).toHaveLength(2);
    expect(pulled).toBe(await skopeoCopyOut(`${replicaA.host}/acme/tools/multi:v1`, join(work, 'out-multi-a2'), { creds, all: true }));
  });

  it('round-trips Docker v2 schema 2 media types byte for byte, across replicas', async () => {
    const image = await createOciImage(join(work, 'docker'), { tag: 'v2', layerCount: 3 });
    const pushed = await pushImage(image.layoutDir, 'v2', `${replicaB.host}/acme/app:v2`, { creds, format: 'v2s2' });
    const raw = await skopeoInspectRaw(`${replicaA.host}/acme/app:v2`, { creds });
    expect(JSON.parse(raw.toString()).mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const pulled = await skopeoCopyOut(`${replicaA.host}/acme/app:v2`, join(work, 'out-docker'), { creds });
    expect(pulled).toBe(pushed);
  });

  it('stored the blobs in the bucket, not on local disk', async () => {
    const objects = await backends.listObjects();
    // Two platform manifests' layers (2 each) and configs, plus the v2s2 image's 3 layers and config.
    expect(objects.length).toBeGreaterThanOrEqual(2 * 3 + 4);
  });
});
