/**
 * Docker Engine `registry-mirrors` with real daemons (Debian's docker.io
 * 20.10, each with its own dockerd): the daemon.json and the Entrepot
 * setting of docs/mirroring.md, `docker pull app:v1` and
 * `docker pull library/app@sha256:…` served by the default mirror
 * organization, and one upstream fetch per blob across repeated pulls by
 * two daemons.
 */
import { DockerEngine } from '../../../../testing/docker-engine';
import { localSnippet, snippet } from './docs-snippets';
import { HUB_ORG, startMirrorFixture, waitForPullLog, type MirrorFixture } from './mirror-fixture';

/** `KEY=VALUE` lines of a shell snippet. */
function envFromSnippet(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .map((line) => /^([A-Z_]+)=(\S+)$/.exec(line.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]]),
  );
}

// Every docker pull through a vfs-backed daemon copies whole layers: room for busy machines.
jest.setTimeout(300_000);

describe('Docker Engine registry-mirrors through Entrepot (real dockerd)', () => {
  let fx: MirrorFixture;
  const engines: DockerEngine[] = [];

  beforeAll(async () => {
    const env = envFromSnippet(snippet('entrepot-env-default-org'));
    expect(env).toEqual({ PROXY_CACHE_DEFAULT_ORG: HUB_ORG });
    fx = await startMirrorFixture({ orgs: [HUB_ORG], ghcr: false, env });
    // Docker Engine sends the mirror only its Docker Hub credentials: the default org is public (docs/mirroring.md).
    expect((await fx.entrepot.api('PUT', `/organization/${HUB_ORG}`, { is_public: true })).status).toBe(200);
    const daemonConfig = JSON.parse(localSnippet('daemon-json', fx.entrepot.host)) as Record<string, unknown>;
    expect(daemonConfig).toEqual({ 'registry-mirrors': [fx.entrepot.url] });
    engines.push(...(await Promise.all([DockerEngine.start({ daemonConfig }), DockerEngine.start({ daemonConfig })])));
    fx.resetUpstreamLogs();
  }, 180_000);

  afterAll(async () => {
    await Promise.all(engines.map((e) => e.stop()));
    await fx?.stop();
  }, 120_000);

  it('serves docker pull app:v1 and library/app@sha256:… from the default mirror organization', async () => {
    const [first] = engines;
    const info = await first.docker(['info', '--format', '{{json .RegistryConfig.Mirrors}}']);
    expect(JSON.parse(info.stdout.toString())).toEqual([`${fx.entrepot.url}/`]);

    expect(await first.pull('app:v1')).toBe(fx.app.digest);
    const byTag = await waitForPullLog(fx.entrepot, HUB_ORG, (e) => e.repository === 'library/app' && e.metadata.tag === 'v1' && /^docker\//.test(e.user_agent ?? ''));
    expect(byTag.metadata).toMatchObject({ route: 'default', manifest_digest: fx.app.digest });
    expect(byTag.performer.kind).toBe('anonymous');

    await first.removeImages('app:v1');
    expect(await first.pull(`library/app@${fx.app.digest}`)).toBe(fx.app.digest);
    expect(await first.repoDigests(`library/app@${fx.app.digest}`)).toEqual([`app@${fx.app.digest}`]);
  });

  it('fetches every blob from the upstream once across repeated pulls by several daemons', async () => {
    for (const engine of engines) {
      for (let round = 0; round < 2; round++) {
        await engine.removeImages('app:v1', `app@${fx.app.digest}`);
        expect(await engine.pull('app:v1')).toBe(fx.app.digest);
      }
    }
    // A non-library repository goes through the same default organization.
    expect(await engines[1].pull('someuser/tool:v1')).toBe(fx.userTool.digest);

    const requests = await fx.hub.settledRequests();
    const manifest = fx.app.image.manifests[0];
    for (const blob of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
      const gets = requests.filter((r) => r.method === 'GET' && r.path === `/v2/library/app/blobs/${blob}`).length;
      expect([blob, gets]).toEqual([blob, 1]);
    }
  });
});
