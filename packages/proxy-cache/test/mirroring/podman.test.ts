/**
 * podman (rootful, vfs storage, no daemon) and skopeo with the registries.conf
 * configurations of docs/mirroring.md: requests arrive as `/v2/<org>/<path>`
 * and are served by that org exactly like explicit pulls.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Podman, registriesConf } from '../../../../testing/containers';
import { skopeoInspectDigest } from '../../../../testing/oci-images';
import { localSnippet, snippet } from './docs-snippets';
import { ACME_ORG, HUB_ORG, OFFICIAL_ORG, ROBOT, pullLogs, startMirrorFixture, waitForPullLog, type MirrorFixture } from './mirror-fixture';

/** registries.conf made of the harness's header (no search registries, short names off) and docs snippets. */
function conf(host: string, ...snippets: string[]): string {
  return [registriesConf([]), ...snippets.map((name) => localSnippet(name, host))].join('\n');
}

/** Runs the docs' `podman login … <<<'ROBOT_TOKEN'` line with the harness's podman. */
async function runLoginSnippet(podman: Podman, host: string, token: string): Promise<void> {
  const line = localSnippet('podman-login', host, token).trim();
  const m = /^podman login --username '([^']+)' --password-stdin (\S+) <<<'([^']*)'$/.exec(line);
  if (!m) throw new Error(`podman-login snippet has an unexpected shape: ${line}`);
  expect(m[3]).toBe(token);
  // The harness cannot feed stdin; --password is the same login with the token as an argument.
  await podman.run(['login', '--tls-verify=false', '--username', m[1], '--password', m[3], m[2]]);
}

describe('podman and skopeo with registries.conf mirrors (docs/mirroring.md)', () => {
  let fx: MirrorFixture;
  let podman: Podman;
  let host: string;

  beforeAll(async () => {
    fx = await startMirrorFixture();
    host = fx.entrepot.host;
    podman = await Podman.create();
  });

  afterAll(async () => {
    await podman?.cleanup();
    await fx?.stop();
  });

  afterEach(() => podman.removeAllImages());

  it('keeps --creds away from mirrors (containers/image) and sends auth.json credentials written by `podman login` to the private org', async () => {
    await podman.setRegistriesConf(conf(host, 'registries-conf-dockerhub'));
    // No credentials for the mirror: Entrepot challenges, the anonymous token is not enough.
    await expect(podman.pull('docker.io/library/app:v1')).rejects.toThrow(/unauthorized/i);
    // --creds are for the image's registry (docker.io), never for its mirrors.
    await expect(podman.pull('docker.io/library/app:v1', { creds: fx.robotCreds })).rejects.toThrow(/unauthorized/i);
    // ... but they do work for an explicit reference to Entrepot.
    await podman.pull(`${host}/${HUB_ORG}/library/app:v1`, { creds: fx.robotCreds });
    expect(await podman.imageDigest(`${host}/${HUB_ORG}/library/app:v1`)).toBe(fx.app.digest);
    await podman.removeAllImages();

    await runLoginSnippet(podman, host, fx.robotToken);
    fx.resetUpstreamLogs();
    await podman.pull('docker.io/library/app:v1');
    expect(await podman.imageDigest('docker.io/library/app:v1')).toBe(fx.app.digest);
    const entry = await waitForPullLog(fx.entrepot, HUB_ORG, (e) => e.repository === 'library/app' && e.performer.name === ROBOT && e.metadata.tag === 'v1');
    expect(entry.metadata.route).toBe('explicit');
  });

  it('pulls docker.io/library/app:TAG and docker.io/app:TAG through the dockerhub org (registries-conf-dockerhub)', async () => {
    await podman.setRegistriesConf(conf(host, 'registries-conf-dockerhub'));
    const before = (await pullLogs(fx.entrepot, HUB_ORG)).length;
    await podman.pull('docker.io/app:v1');
    expect(await podman.imageDigest('docker.io/library/app:v1')).toBe(fx.app.digest);
    await podman.removeAllImages();
    await podman.pull('docker.io/library/app:v1');
    expect(await podman.imageDigest('docker.io/library/app:v1')).toBe(fx.app.digest);
    await podman.pull('docker.io/someuser/tool:v1');
    expect(await podman.imageDigest('docker.io/someuser/tool:v1')).toBe(fx.userTool.digest);
    const logs = await pullLogs(fx.entrepot, HUB_ORG);
    expect(logs.length).toBeGreaterThanOrEqual(before + 3);
    expect(new Set(logs.slice(0, logs.length - before).map((e) => `${e.repository}:${String(e.metadata.route)}`))).toEqual(
      new Set(['library/app:explicit', 'someuser/tool:explicit']),
    );
    // Nothing reached Docker Hub's stand-in for the cached image; someuser/tool was a miss.
    expect(fx.hub.count({ path: /^\/v2\/library\/app\// })).toBe(0);
  });

  it('pulls official images anonymously through the namespace-scoped public org, obeying pull-from-mirror (registries-conf-official)', async () => {
    const official = conf(host, 'registries-conf-official');
    expect(official).toContain('pull-from-mirror = "all"');
    const byTag = 'docker.io/library/app:v1';
    const byDigest = `docker.io/library/app@${fx.app.digest}`;
    const entries = async (): Promise<number> => (await pullLogs(fx.entrepot, OFFICIAL_ORG)).length;

    await podman.setRegistriesConf(official);
    await podman.pull(byTag);
    expect(await podman.imageDigest(byTag)).toBe(fx.app.digest);
    const tagEntry = await waitForPullLog(fx.entrepot, OFFICIAL_ORG, (e) => e.repository === 'app' && e.metadata.tag === 'v1');
    expect(tagEntry.performer.kind).toBe('anonymous');
    await podman.removeAllImages();
    await podman.pull(byDigest);
    await podman.removeAllImages();

    // digest-only: pulls by digest use Entrepot, pulls by tag go to the registry itself (unreachable here).
    await podman.setRegistriesConf(official.replace('pull-from-mirror = "all"', 'pull-from-mirror = "digest-only"'));
    let count = await entries();
    await podman.pull(byDigest);
    await waitForPullLog(fx.entrepot, OFFICIAL_ORG, () => true);
    expect(await entries()).toBe(count + 1);
    await podman.removeAllImages();
    count = await entries();
    await expect(podman.pull(byTag)).rejects.toThrow(/registry-1\.docker\.io/);
    expect(await entries()).toBe(count);

    // tag-only: the other way round.
    await podman.setRegistriesConf(official.replace('pull-from-mirror = "all"', 'pull-from-mirror = "tag-only"'));
    count = await entries();
    await podman.pull(byTag);
    expect(await entries()).toBe(count + 1);
    await podman.removeAllImages();
    count = await entries();
    await expect(podman.pull(byDigest)).rejects.toThrow(/registry-1\.docker\.io/);
    expect(await entries()).toBe(count);
  });

  it('serves a second registry from the same registries.conf (registries-conf-ghcr) and the most specific prefix wins', async () => {
    await podman.setRegistriesConf(conf(host, 'registries-conf-dockerhub', 'registries-conf-official', 'registries-conf-ghcr'));
    fx.resetUpstreamLogs();
    await podman.pull('ghcr.io/acme/tool:v1');
    expect(await podman.imageDigest('ghcr.io/acme/tool:v1')).toBe(fx.acmeTool!.digest);
    expect(fx.ghcr!.count({ method: 'GET', path: '/v2/acme/tool/manifests/v1', status: 200 })).toBe(1);
    await waitForPullLog(fx.entrepot, ACME_ORG, (e) => e.repository === 'tool' && e.metadata.route === 'explicit');
    // docker.io/library/* matches the docker.io/library prefix: the public org, even with dockerhub credentials on file.
    const before = (await pullLogs(fx.entrepot, OFFICIAL_ORG)).length;
    await podman.pull('docker.io/library/app:v1');
    expect((await pullLogs(fx.entrepot, OFFICIAL_ORG)).length).toBe(before + 1);
  });

  it('works for skopeo given the same file with --registries-conf', async () => {
    const file = join(fx.work, 'skopeo-registries.conf');
    await writeFile(file, conf(host, 'registries-conf-official', 'registries-conf-ghcr'));
    expect(await skopeoInspectDigest('docker.io/library/app:v1', { registriesConf: file })).toBe(fx.app.digest);
    expect(await skopeoInspectDigest('ghcr.io/acme/tool:v1', { registriesConf: file })).toBe(fx.acmeTool!.digest);
    expect(snippet('registries-conf-ghcr')).toContain('location = "entrepot.corp/acme-ghcr"');
  });
});
