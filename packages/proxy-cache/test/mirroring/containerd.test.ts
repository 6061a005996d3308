/**
 * containerd 1.6 (a private daemon started here) pulling with `ctr images pull
 * --hosts-dir` through the hosts.toml files of docs/mirroring.md, in both
 * styles: `override_path` to `/v2/<org>` (requests `/v2/<org>/<path>?ns=…`) and
 * the bare host (requests `/v2/<path>?ns=…`, routed by Entrepot).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Containerd, hostsToml, writeHostsToml } from '../../../../testing/containers';
import { localSnippet } from './docs-snippets';
import { ACME_ORG, HUB_ORG, OFFICIAL_ORG, ROBOT, metricValue, pullLogs, startMirrorFixture, waitForPullLog, type MirrorFixture } from './mirror-fixture';

describe('containerd (ctr --hosts-dir) with hosts.toml mirrors (docs/mirroring.md)', () => {
  let fx: MirrorFixture;
  let ctrd: Containerd;
  let overrideDir: string;
  let nsDir: string;
  let quayDir: string;

  beforeAll(async () => {
    [fx, ctrd] = await Promise.all([startMirrorFixture({ multiArch: true }), Containerd.start()]);
    const host = fx.entrepot.host;
    overrideDir = join(ctrd.hostsDir, 'override');
    nsDir = join(ctrd.hostsDir, 'ns');
    quayDir = join(ctrd.hostsDir, 'quay');
    await Promise.all([mkdir(overrideDir), mkdir(nsDir), mkdir(quayDir)]);
    await writeHostsToml(overrideDir, 'docker.io', localSnippet('hosts-toml-override-path', host));
    await writeHostsToml(nsDir, 'docker.io', localSnippet('hosts-toml-ns', host));
    await writeHostsToml(nsDir, 'ghcr.io', localSnippet('hosts-toml-ns-ghcr', host));
    // A registry no cache org mirrors, sent to Entrepot all the same.
    await writeHostsToml(quayDir, 'quay.io', hostsToml('https://quay.io', [{ url: fx.entrepot.url }]));
  });

  afterAll(async () => {
    await ctrd?.stop();
    await fx?.stop();
  });

  afterEach(async () => {
    for (const image of await ctrd.images()) await ctrd.removeImage(image.ref);
  });

  describe('override_path = true to /v2/<org> (hosts-toml-override-path)', () => {
    it('pulls docker.io/library/app:TAG and docker.io/app:TAG from the private org with ctr --user, and is refused without', async () => {
      await expect(ctrd.pull('docker.io/library/app:v1', { hostsDir: overrideDir })).rejects.toThrow(/pull access denied.*insufficient_scope/);

      expect(await ctrd.pull('docker.io/library/app:v1', { hostsDir: overrideDir, user: fx.robotCreds })).toBe(fx.app.digest);
      const entry = await waitForPullLog(fx.entrepot, HUB_ORG, (e) => e.repository === 'library/app' && /containerd/.test(e.user_agent ?? ''));
      expect(entry.metadata.route).toBe('explicit');
      expect(entry.performer).toMatchObject({ kind: 'robot', name: ROBOT });

      // ctr sends docker.io/app as /v2/dockerhub/app: Docker Hub's library/ rule of the org (R-MAP).
      await ctrd.removeImage('docker.io/library/app:v1');
      fx.resetUpstreamLogs();
      expect(await ctrd.pull('docker.io/app:v1', { hostsDir: overrideDir, user: fx.robotCreds })).toBe(fx.app.digest);
      await waitForPullLog(fx.entrepot, HUB_ORG, (e) => e.repository === 'app' && /containerd/.test(e.user_agent ?? ''));
      expect(fx.hub.count({ method: 'GET', path: '/v2/library/app/manifests/v1', status: 200 })).toBe(1);
    });

    it('pulls one platform of a multi-arch index with --platform linux/amd64', async () => {
      fx.resetUpstreamLogs();
      const multi = fx.multi!;
      expect(await ctrd.pull('docker.io/library/multi:v1', { hostsDir: overrideDir, user: fx.robotCreds, platform: 'linux/amd64' })).toBe(multi.digest);
      const [amd64, arm64] = multi.image.manifests;
      const requests = await fx.hub.settledRequests();
      const got = (digest: string): boolean => requests.some((r) => r.method === 'GET' && r.status === 200 && r.path.endsWith(digest));
      expect(got(amd64.digest)).toBe(true);
      for (const layer of amd64.layers) expect(got(layer.digest)).toBe(true);
      expect(got(arm64.digest)).toBe(false);
      for (const layer of arm64.layers) expect(got(layer.digest)).toBe(false);
    });
  });

  describe('bare host, routed by ?ns= (hosts-toml-ns, hosts-toml-ns-ghcr)', () => {
    it('pulls official images anonymously from the namespace-scoped public org, docker.io/app:TAG included', async () => {
      const before = (await pullLogs(fx.entrepot, OFFICIAL_ORG)).length;
      expect(await ctrd.pull('docker.io/library/app:v1', { hostsDir: nsDir })).toBe(fx.app.digest);
      // Without its content, ctr fetches the manifest again (a HEAD by tag, then a GET by digest).
      await ctrd.removeImage('docker.io/library/app:v1');
      expect(await ctrd.pull('docker.io/app:v1', { hostsDir: nsDir })).toBe(fx.app.digest);
      const all = await pullLogs(fx.entrepot, OFFICIAL_ORG);
      const entries = all.slice(0, all.length - before);
      expect(entries.length).toBeGreaterThanOrEqual(2);
      for (const e of entries) {
        expect(e.repository).toBe('app');
        expect(e.metadata.route).toBe('ns');
        expect(e.performer.kind).toBe('anonymous');
      }
    });

    it('pulls other Docker Hub repositories from the whole-registry private org: with ctr --user, and not without', async () => {
      await expect(ctrd.pull('docker.io/someuser/tool:v1', { hostsDir: nsDir })).rejects.toThrow(/pull access denied.*insufficient_scope/);
      expect(await ctrd.pull('docker.io/someuser/tool:v1', { hostsDir: nsDir, user: fx.robotCreds })).toBe(fx.userTool.digest);
      const entry = await waitForPullLog(fx.entrepot, HUB_ORG, (e) => e.repository === 'someuser/tool' && e.metadata.route === 'ns');
      expect(entry.performer).toMatchObject({ kind: 'robot', name: ROBOT });
    });

    it('pulls one platform of a multi-arch index with --platform linux/arm64', async () => {
      const multi = fx.multi!;
      const [amd64, arm64] = multi.image.manifests;
      // hub-official (public) serves docker.io/library/*: its own cache, filled now.
      fx.resetUpstreamLogs();
      expect(await ctrd.pull('docker.io/library/multi:v1', { hostsDir: nsDir, platform: 'linux/arm64' })).toBe(multi.digest);
      const requests = await fx.hub.settledRequests();
      const got = (digest: string): boolean => requests.some((r) => r.method === 'GET' && r.status === 200 && r.path.endsWith(digest));
      expect(got(arm64.digest)).toBe(true);
      for (const layer of arm64.layers) expect(got(layer.digest)).toBe(true);
      expect(got(amd64.digest)).toBe(false);
      const image = (await ctrd.images()).find((i) => i.ref === 'docker.io/library/multi:v1');
      expect(image?.mediaType).toBe('application/vnd.oci.image.index.v1+json');
      await waitForPullLog(fx.entrepot, OFFICIAL_ORG, (e) => e.repository === 'multi' && e.metadata.route === 'ns');
    });

    it('serves a second upstream registry at the same host: ghcr.io/acme through ns=ghcr.io', async () => {
      fx.resetUpstreamLogs();
      expect(await ctrd.pull('ghcr.io/acme/tool:v1', { hostsDir: nsDir })).toBe(fx.acmeTool!.digest);
      expect(fx.ghcr!.count({ method: 'GET', path: '/v2/acme/tool/manifests/v1', status: 200 })).toBe(1);
      expect(await fx.hub.settledRequests()).toEqual([]);
      await waitForPullLog(fx.entrepot, ACME_ORG, (e) => e.repository === 'tool' && e.metadata.route === 'ns' && /containerd/.test(e.user_agent ?? ''));
    });

    it('refuses a registry no cache org mirrors (ns=quay.io): the pull fails and no upstream sees anything', async () => {
      fx.resetUpstreamLogs();
      const refusedBefore = await metricValue(fx.entrepot, 'entrepot_http_requests_total', { method: 'HEAD', status: '404' });
      await expect(ctrd.pull('quay.io/acme/tool:v1', { hostsDir: quayDir })).rejects.toThrow(/not found|quay\.io/i);
      // containerd asked Entrepot first (a 404 NAME_UNKNOWN), then fell back to quay.io itself (unreachable here).
      expect(await metricValue(fx.entrepot, 'entrepot_http_requests_total', { method: 'HEAD', status: '404' })).toBeGreaterThan(refusedBefore);
      expect(await fx.upstreamRequestCount()).toBe(0);
    });
  });
});
