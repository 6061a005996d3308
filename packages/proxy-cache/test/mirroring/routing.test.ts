/**
 * R-MIRROR routing at the HTTP level, with the requests mirror clients send:
 * `?ns=` routing (most specific namespace first, Docker Hub's `library/`),
 * two upstream registries behind one hostname, explicit orgs winning over
 * `ns`, refusals that never reach an upstream, and the same permissions,
 * token grants, audit and metrics as explicit pulls. Real clients (podman,
 * containerd) are in the other files of this directory.
 */
import { join } from 'node:path';
import { basicAuth } from '../../../../testing/entrepot-instance';
import { createOciImage, pushImage } from '../../../../testing/oci-images';
import {
  ACME_ORG,
  HUB_ORG,
  OFFICIAL_ORG,
  ROBOT,
  createCacheOrg,
  metricValue,
  pullLogs,
  startMirrorFixture,
  waitForPullLog,
  type MirrorFixture,
} from './mirror-fixture';
import { MANIFEST_ACCEPT, parseBearerChallenge, pullImage, registryRequest, requestWithToken, sha256 } from './registry-http';

describe('mirror routing (?ns=, explicit org, no default mirror org)', () => {
  let fx: MirrorFixture;
  let url: string;
  /** A user with no role in any organization. */
  const outsider = { username: 'outsider', password: 'outsider-password-1' };

  beforeAll(async () => {
    fx = await startMirrorFixture();
    url = fx.entrepot.url;
    const res = await fx.entrepot.api('POST', '/superuser/users/', { ...outsider, email: 'outsider@example.com' });
    if (res.status !== 201) throw new Error(`creating user: ${res.status} ${JSON.stringify(res.body)}`);
  });

  afterAll(() => fx?.stop());

  describe('routing by ns', () => {
    it('serves docker.io/library/* from the namespace-scoped org (docker.io/library) before the whole-registry org, anonymously (public org)', async () => {
      fx.resetUpstreamLogs();
      const pulled = await pullImage(`${url}/v2/library/app`, 'v1', '?ns=docker.io');
      expect(pulled.manifestDigest).toBe(fx.app.digest);
      expect(fx.hub.count({ method: 'GET', path: '/v2/library/app/manifests/v1', status: 200 })).toBe(1);
      const entry = await waitForPullLog(fx.entrepot, OFFICIAL_ORG, (e) => e.repository === 'app');
      expect(entry.metadata).toMatchObject({ route: 'ns', tag: 'v1', manifest_digest: fx.app.digest, cache_result: 'miss' });
      expect(entry.performer.kind).toBe('anonymous');
      expect((await pullLogs(fx.entrepot, HUB_ORG)).filter((e) => e.repository === 'library/app')).toEqual([]);
    });

    it('applies Docker Hub library/ to single-segment names (ctr sends docker.io/app as /v2/app?ns=docker.io)', async () => {
      fx.resetUpstreamLogs();
      const pulled = await pullImage(`${url}/v2/app`, 'v1', '?ns=docker.io');
      expect(pulled.manifestDigest).toBe(fx.app.digest);
      // Same repository as library/app in hub-official, already cached: nothing upstream.
      expect(await fx.upstreamRequestCount()).toBe(0);
    });

    it('accepts Docker Hub aliases as ns', async () => {
      for (const ns of ['registry-1.docker.io', 'index.docker.io', 'DOCKER.IO']) {
        const res = await registryRequest(`${url}/v2/library/app/manifests/v1?ns=${ns}`, { accept: MANIFEST_ACCEPT });
        expect([ns, res.status]).toEqual([ns, 200]);
        expect(sha256(res.body)).toBe(fx.app.digest);
      }
    });

    it('serves other Docker Hub namespaces from the whole-registry org, which is private: 401 Bearer challenge, then the token flow', async () => {
      const anonymous = await registryRequest(`${url}/v2/someuser/tool/manifests/v1?ns=docker.io`, { accept: MANIFEST_ACCEPT });
      expect(anonymous.status).toBe(401);
      expect(anonymous.challenge).toEqual({ realm: `${url}/v2/auth`, service: fx.entrepot.host, scope: 'repository:someuser/tool:pull' });

      fx.resetUpstreamLogs();
      const pulled = await pullImage(`${url}/v2/someuser/tool`, 'v1', '?ns=docker.io', { creds: fx.robotCreds });
      expect(pulled.manifestDigest).toBe(fx.userTool.digest);
      expect(fx.hub.count({ method: 'GET', path: '/v2/someuser/tool/manifests/v1', status: 200 })).toBe(1);
      const entry = await waitForPullLog(fx.entrepot, HUB_ORG, (e) => e.repository === 'someuser/tool');
      expect(entry.metadata).toMatchObject({ route: 'ns', manifest_digest: fx.userTool.digest });
      expect(entry.performer).toMatchObject({ kind: 'robot', name: ROBOT });
    });

    it('serves two upstream registries at one hostname: ns=ghcr.io goes to the ghcr.io/acme org and its upstream only', async () => {
      fx.resetUpstreamLogs();
      const pulled = await pullImage(`${url}/v2/acme/tool`, 'v1', '?ns=ghcr.io');
      expect(pulled.manifestDigest).toBe(fx.acmeTool!.digest);
      expect(fx.ghcr!.count({ method: 'GET', path: '/v2/acme/tool/manifests/v1', status: 200 })).toBe(1);
      // Docker Hub's upstream saw nothing of this pull (a log line of the previous test may still arrive late).
      expect((await fx.hub.settledRequests()).filter((r) => r.path.startsWith('/v2/acme/'))).toEqual([]);
      const entry = await waitForPullLog(fx.entrepot, ACME_ORG, (e) => e.repository === 'tool');
      expect(entry.metadata).toMatchObject({ route: 'ns', manifest_digest: fx.acmeTool!.digest });
      // And docker.io at the same time, from the other upstream.
      expect((await pullImage(`${url}/v2/library/app`, 'v1', '?ns=docker.io')).manifestDigest).toBe(fx.app.digest);
    });

    it('lets an explicit org in the path win over ns', async () => {
      // override_path clients send ns too: /v2/<org>/<path>?ns=<registry>, even a "wrong" one.
      const viaHub = await registryRequest(`${url}/v2/${HUB_ORG}/library/app/manifests/v1?ns=ghcr.io`, { accept: MANIFEST_ACCEPT, creds: fx.robotCreds });
      expect(viaHub.status).toBe(200);
      expect(sha256(viaHub.body)).toBe(fx.app.digest);
      const entry = await waitForPullLog(fx.entrepot, HUB_ORG, (e) => e.repository === 'library/app');
      expect(entry.metadata.route).toBe('explicit');

      const viaAcme = await registryRequest(`${url}/v2/${ACME_ORG}/tool/manifests/v1?ns=docker.io`, { accept: MANIFEST_ACCEPT });
      expect(viaAcme.status).toBe(200);
      expect(sha256(viaAcme.body)).toBe(fx.acmeTool!.digest);
    });
  });

  describe('refusals (never an open proxy)', () => {
    it('refuses ns naming a registry no cache org mirrors, to anonymous and authenticated clients alike, and the upstreams see nothing', async () => {
      fx.resetUpstreamLogs();
      const layer = fx.app.image.manifests[0].layers[0].digest;
      const paths = [
        ['GET', '/v2/library/app/manifests/v1?ns=quay.io'],
        ['HEAD', '/v2/library/app/manifests/v1?ns=quay.io'],
        ['GET', `/v2/library/app/blobs/${layer}?ns=quay.io`],
        ['GET', '/v2/library/app/tags/list?ns=quay.io'],
        ['GET', '/v2/app/manifests/v1?ns=quay.io'],
      ] as const;
      for (const [method, path] of paths) {
        for (const creds of [undefined, fx.robotCreds]) {
          const res = await registryRequest(`${url}${path}`, { method, creds, accept: MANIFEST_ACCEPT });
          expect([method, path, creds ? 'robot' : 'anonymous', res.status]).toEqual([method, path, creds ? 'robot' : 'anonymous', 404]);
          if (method === 'GET') {
            expect(res.errors?.[0].code).toBe('NAME_UNKNOWN');
            expect(res.errors?.[0].message).toContain('no cache organization mirrors quay.io');
          }
        }
      }
      expect(await fx.upstreamRequestCount()).toBe(0);
    });

    it('refuses a path outside the namespace of every cache org of that registry', async () => {
      const res = await registryRequest(`${url}/v2/other/tool/manifests/v1?ns=ghcr.io`);
      expect(res.status).toBe(404);
      expect(res.errors?.[0]).toMatchObject({ code: 'NAME_UNKNOWN' });
      expect(res.errors?.[0].message).toContain('no cache organization mirrors ghcr.io/other/tool');
      expect(res.errors?.[0].message).toContain('ghcr.io/acme');
      expect(await fx.upstreamRequestCount()).toBe(0);
    });

    it('answers NAME_UNKNOWN for a path that names no org and carries no ns when no default mirror org is configured', async () => {
      const res = await registryRequest(`${url}/v2/library/app/manifests/v1`, { creds: fx.robotCreds });
      expect(res.status).toBe(404);
      expect(res.errors?.[0].code).toBe('NAME_UNKNOWN');
      expect(await fx.upstreamRequestCount()).toBe(0);
    });

    it('refuses pushes through ns with DENIED naming the upstream, like explicit ones', async () => {
      const res = await fetch(`${url}/v2/library/app/blobs/uploads/?ns=docker.io`, { method: 'POST', headers: { authorization: fx.entrepot.adminAuth } });
      expect(res.status).toBe(403);
      const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
      expect(body.errors[0].code).toBe('DENIED');
      expect(body.errors[0].message).toContain('docker.io');
    });
  });

  describe('permissions, token grants, audit and metrics are those of explicit pulls', () => {
    it('gives blob requests routed by ns the same answers as explicit ones, per principal', async () => {
      const layer = fx.userTool.image.manifests[0].layers[1];
      const viaNs = `${url}/v2/someuser/tool/blobs/${layer.digest}?ns=docker.io`;
      const explicit = `${url}/v2/${HUB_ORG}/someuser/tool/blobs/${layer.digest}`;
      const principals: Array<[string, Record<string, string>]> = [
        ['anonymous', {}],
        ['outsider', { authorization: basicAuth(outsider.username, outsider.password) }],
        ['robot', { authorization: basicAuth(ROBOT, fx.robotToken) }],
      ];
      for (const [who, headers] of principals) {
        const [a, b] = await Promise.all([fetch(viaNs, { headers }), fetch(explicit, { headers })]);
        const [bodyA, bodyB] = await Promise.all([a.arrayBuffer(), b.arrayBuffer()]);
        expect([who, a.status]).toEqual([who, b.status]);
        if (who === 'anonymous') {
          expect(a.status).toBe(401);
          expect(parseBearerChallenge(a.headers.get('www-authenticate'))?.scope).toBe('repository:someuser/tool:pull');
        }
        if (who === 'outsider') expect(a.status).toBe(403);
        if (who === 'robot') {
          expect(a.status).toBe(200);
          expect(sha256(Buffer.from(bodyA))).toBe(layer.digest);
          expect(sha256(Buffer.from(bodyB))).toBe(layer.digest);
        }
      }
    });

    it('matches token grants against the repository name as requested', async () => {
      // The token a client gets for the ns path serves that path ...
      const ns = await registryRequest(`${url}/v2/someuser/tool/manifests/v1?ns=docker.io`, { creds: fx.robotCreds, accept: MANIFEST_ACCEPT });
      expect(ns.status).toBe(200);
      expect(ns.challenge?.scope).toBe('repository:someuser/tool:pull');
      const layer = fx.userTool.image.manifests[0].layers[0].digest;
      expect((await requestWithToken(`${url}/v2/someuser/tool/blobs/${layer}?ns=docker.io`, ns.token!)).status).toBe(200);
      // ... but not another name, even one that reaches the same repository.
      const other = await requestWithToken(`${url}/v2/${HUB_ORG}/someuser/tool/manifests/v1`, ns.token!, { accept: MANIFEST_ACCEPT });
      expect(other.status).toBe(403);
      const explicit = await registryRequest(`${url}/v2/${HUB_ORG}/someuser/tool/manifests/v1`, { creds: fx.robotCreds, accept: MANIFEST_ACCEPT });
      expect(explicit.status).toBe(200);
      expect((await requestWithToken(`${url}/v2/someuser/tool/manifests/v1?ns=docker.io`, explicit.token!, { accept: MANIFEST_ACCEPT })).status).toBe(403);
      // An anonymous token never reaches a private org's repository.
      const anonymous = await registryRequest(`${url}/v2/someuser/tool/manifests/v1?ns=docker.io`, { accept: MANIFEST_ACCEPT });
      expect(anonymous.status).toBe(401);
    });

    it('records the route in the pull audit entry and counts ns pulls in the org metrics', async () => {
      const image = await createOciImage(join(fx.work, 'layouts', 'fresh'), { tag: 'v1', layerSize: [10_000, 20_000] });
      const digest = await pushImage(image.layoutDir, 'v1', fx.hub.ref('library/fresh', 'v1'), { creds: fx.hub.creds });
      const labels = (kind: string) => ({ org: OFFICIAL_ORG, kind, result: 'miss' });
      const [blobsBefore, manifestsBefore] = [await metricValue(fx.entrepot, 'entrepot_cache_requests_total', labels('blob')), await metricValue(fx.entrepot, 'entrepot_cache_requests_total', labels('manifest'))];
      const upstreamBytesBefore = await metricValue(fx.entrepot, 'entrepot_cache_bytes_total', { org: OFFICIAL_ORG, source: 'upstream' });

      const pulled = await pullImage(`${url}/v2/fresh`, 'v1', '?ns=docker.io', { userAgent: 'containerd/1.6.20' });
      expect(pulled.manifestDigest).toBe(digest);
      expect(await metricValue(fx.entrepot, 'entrepot_cache_requests_total', labels('blob'))).toBe(blobsBefore + pulled.blobs.length);
      expect(await metricValue(fx.entrepot, 'entrepot_cache_requests_total', labels('manifest'))).toBe(manifestsBefore + 1);
      const layerBytes = image.manifests[0].layers.reduce((n, l) => n + l.size, 0);
      expect(await metricValue(fx.entrepot, 'entrepot_cache_bytes_total', { org: OFFICIAL_ORG, source: 'upstream' })).toBeGreaterThanOrEqual(upstreamBytesBefore + layerBytes);

      const entry = await waitForPullLog(fx.entrepot, OFFICIAL_ORG, (e) => e.user_agent === 'containerd/1.6.20');
      expect(entry.repository).toBe('fresh');
      expect(entry.metadata).toMatchObject({ route: 'ns', reference: 'v1', tag: 'v1', cache_result: 'miss', manifest_digest: digest });
      expect(entry.performer.kind).toBe('anonymous');

      // The same repository pulled explicitly: same org, same entry kind, route says how it came.
      await pullImage(`${url}/v2/${OFFICIAL_ORG}/fresh`, 'v1', '', { userAgent: 'podman/4.3.1' });
      const explicit = await waitForPullLog(fx.entrepot, OFFICIAL_ORG, (e) => e.user_agent === 'podman/4.3.1');
      expect(explicit.repository).toBe('fresh');
      expect(explicit.metadata).toMatchObject({ route: 'explicit', manifest_digest: digest });
    });
  });
  describe('several cache orgs for one registry', () => {
    it('prefers the more specific namespace, then the oldest org, and stops refusing paths a new org covers', async () => {
      const image = await createOciImage(join(fx.work, 'layouts', 'other-tool'), { tag: 'v1', layerSize: [10_000] });
      const digest = await pushImage(image.layoutDir, 'v1', fx.ghcr!.ref('other/tool', 'v1'), { creds: fx.ghcr!.creds });
      expect((await registryRequest(`${url}/v2/other/tool/manifests/v1?ns=ghcr.io`)).status).toBe(404);

      await createCacheOrg(fx.entrepot, 'ghcr-all', 'ghcr.io', fx.ghcr!, true);
      await createCacheOrg(fx.entrepot, 'ghcr-all-too', 'ghcr.io', fx.ghcr!, true);
      const other = await registryRequest(`${url}/v2/other/tool/manifests/v1?ns=ghcr.io`, { accept: MANIFEST_ACCEPT, userAgent: 'tie-break' });
      expect(other.status).toBe(200);
      expect(sha256(other.body)).toBe(digest);
      expect((await waitForPullLog(fx.entrepot, 'ghcr-all', (e) => e.user_agent === 'tie-break')).repository).toBe('other/tool');
      expect(await pullLogs(fx.entrepot, 'ghcr-all-too')).toEqual([]);

      const acme = await registryRequest(`${url}/v2/acme/tool/manifests/v1?ns=ghcr.io`, { accept: MANIFEST_ACCEPT, userAgent: 'specific' });
      expect(acme.status).toBe(200);
      expect((await waitForPullLog(fx.entrepot, ACME_ORG, (e) => e.user_agent === 'specific')).repository).toBe('tool');
    });
  });
});
