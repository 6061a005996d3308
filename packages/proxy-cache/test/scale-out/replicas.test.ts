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
});
