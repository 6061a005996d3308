import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startScaleOutBackends, type ScaleOutBackends } from '../../../registry-core/test/scale-out/scale-out-backends';
import type { TestInstance } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage, skopeoCopyOut } from '../../../../testing/oci-images';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';
import { createPlugin } from '../../src/index';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../../../testing/entrepot-instance';

const creds = `${ADMIN_USER}:${ADMIN_PASSWORD}`;

describe('two replicas on MariaDB + Redis/BullMQ + S3', () => {
  let backends: ScaleOutBackends;
  let upstream: UpstreamRegistry;
  let a: TestInstance;
  let b: TestInstance;
  let work: string;

  beforeAll(async () => {
    backends = await startScaleOutBackends();
    upstream = await UpstreamRegistry.start({ auth: { mode: 'anonymous' } });
    const options = {
      plugins: [createPlugin],
      env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' },
      overrides: { gc: { grace_seconds: 0, interval_seconds: 3600 } },
    };
    a = await backends.startReplica(options);
    b = await backends.startReplica(options);
    work = mkdtempSync(join(tmpdir(), 'entrepot-replicas-'));
    expect((await a.api('POST', '/organization/', { name: 'shared' })).status).toBe(201);
    const configured = await a.api('POST', '/organization/shared/proxycache', { upstream_registry: 'docker.io', upstream_endpoint: upstream.url, expiration_s: 3600 });
    expect(configured.status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await backends?.cleanup();
    await upstream?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('makes one upstream GET per blob for clients spread over both replicas', async () => {
    const image = await createOciImage(join(work, 'herd'), { tag: '1', layerCount: 1, layerSize: 20 * 1024 * 1024 });
    await pushImage(image.layoutDir, '1', upstream.ref('library/herd', '1'));
    const layer = image.manifests[0].layers[0];
    for (const replica of [a, b]) {
      const res = await fetch(`${replica.url}/v2/shared/library/herd/manifests/1`, { headers: { authorization: replica.adminAuth } });
      expect(res.status).toBe(200);
    }
    upstream.resetLog();
    const hashes = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const replica = i % 2 === 0 ? a : b;
        const res = await fetch(`${replica.url}/v2/shared/library/herd/blobs/${layer.digest}`, { headers: { authorization: replica.adminAuth } });
        expect(res.status).toBe(200);
        const hash = createHash('sha256');
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
        return `sha256:${hash.digest('hex')}`;
      }),
    );
    expect(new Set(hashes)).toEqual(new Set([layer.digest]));
    const requests = (await upstream.settledRequests()).filter((r) => r.path.endsWith(layer.digest));
    expect(requests.filter((r) => r.method === 'GET')).toHaveLength(1);
    // The replica that waited for the other's fill serves a blob its repository's cached
    // manifest references: no upstream confirmation is needed for it.
    expect(requests.filter((r) => r.method === 'HEAD')).toEqual([]);
    expect((await backends.listObjects()).some((key) => key.includes(layer.digest.slice(7)))).toBe(true);
  }, 120_000);

  it('keeps the quota when both replicas fill at once', async () => {
    const names = ['q1', 'q2', 'q3', 'q4'];
    const pushed: Record<string, string> = {};
    for (const name of names) {
      const image = await createOciImage(join(work, name), { tag: '1', layerCount: 1, layerSize: 3_000_000 });
      pushed[name] = await pushImage(image.layoutDir, '1', upstream.ref(`library/${name}`, '1'));
    }
    expect((await a.api('POST', '/organization/shared/quota', { limit_bytes: 7_000_000 })).status).toBe(201);
    const results = await Promise.all(
      names.map((name, i) => skopeoCopyOut(`${(i % 2 === 0 ? a : b).host}/shared/library/${name}:1`, join(work, `out-${name}`), { creds })),
    );
    expect(results).toEqual(names.map((n) => pushed[n]));
    const org = await a.entrepot.services.repositories.findOrg('shared');
    expect(await a.entrepot.services.quotas.usage(org!.id)).toBeLessThanOrEqual(7_000_000);
  }, 180_000);

  it('applies a cache configuration removed through one replica on the others at once', async () => {
    // Frozen clock: what this replica keeps never expires, so only a change notice can reach it.
    const frozen = Date.now();
    const c = await backends.startReplica({
      plugins: [createPlugin],
      env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' },
      clock: { now: () => frozen },
    });
    expect((await a.api('POST', '/organization/', { name: 'moving' })).status).toBe(201);
    expect((await a.api('POST', '/organization/moving/proxycache', { upstream_registry: 'docker.io', upstream_endpoint: upstream.url, expiration_s: 3600 })).status).toBe(201);
    for (const name of ['first', 'second']) {
      const image = await createOciImage(join(work, `moving-${name}`), { tag: '1' });
      await pushImage(image.layoutDir, '1', upstream.ref(`library/${name}`, '1'));
    }
    const pull = (name: string) => async () =>
      (await fetch(`${c.url}/v2/moving/library/${name}/manifests/1`, { headers: { authorization: c.adminAuth, accept: 'application/vnd.oci.image.manifest.v1+json' } })).status;
    expect(await pull('first')()).toBe(200);
    expect((await a.api('DELETE', '/organization/moving/proxycache')).status).toBe(201);
    // No longer a cache: what is not stored is not fetched from the upstream.
    const deadline = Date.now() + 10_000;
    let status = await pull('second')();
    while (status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      status = await pull('second')();
    }
    expect(status).toBe(404);
    expect(await pull('first')()).toBe(200);
  }, 120_000);
});
