/**
 * Docker Engine `registry-mirrors` (docs/mirroring.md), request by request:
 * fast checks that send what Docker Engine sends to a mirror — `/v2/` first,
 * the token flow for `repository:library/<name>:pull`, then
 * `/v2/library/<name>/manifests/<tag>` and blobs, never with `ns` — with fetch,
 * and with skopeo, whose requests for `<mirror>/library/app:TAG` have the same
 * shape. Entrepot serves them from the default mirror organization. Real
 * dockerd pull through the same configuration in docker-mirror.test.ts.
 */
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createPlugin } from '../../src/index';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { skopeoCopyOut } from '../../../../testing/oci-images';
import { localSnippet, snippet } from './docs-snippets';
import { HUB_ORG, OFFICIAL_ORG, ROBOT, createCacheOrg, startMirrorFixture, waitForPullLog, type MirrorFixture } from './mirror-fixture';
import { MANIFEST_ACCEPT, pullImage, registryRequest } from './registry-http';

const DOCKER_UA = 'docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0 os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.7 \\(linux\\))';

/** `KEY=VALUE` lines of a shell snippet. */
function envFromSnippet(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(\S+)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

describe('Docker Engine registry-mirrors: /v2/library/<name>/... without ns, served by the default mirror org', () => {
  let fx: MirrorFixture;
  let mirror: string;
  const extra: TestInstance[] = [];

  beforeAll(async () => {
    const env = envFromSnippet(snippet('entrepot-env-default-org'));
    expect(env).toEqual({ PROXY_CACHE_DEFAULT_ORG: HUB_ORG });
    fx = await startMirrorFixture({ orgs: [HUB_ORG, OFFICIAL_ORG], ghcr: false, env });
    const daemon = JSON.parse(localSnippet('daemon-json', fx.entrepot.host)) as { 'registry-mirrors': string[] };
    mirror = daemon['registry-mirrors'][0];
    expect(mirror).toBe(fx.entrepot.url);
  });

  afterAll(async () => {
    for (const instance of extra) await instance.stop();
    await fx?.stop();
  });

  it('answers Docker Engine from a private default org with a challenge it cannot meet anonymously (so it falls back to Docker Hub), and serves clients with credentials', async () => {
    const ping = await fetch(`${mirror}/v2/`, { headers: { 'user-agent': DOCKER_UA } });
    expect(ping.status).toBe(401);
    expect(ping.headers.get('www-authenticate')).toMatch(/^Bearer realm="[^"]+\/v2\/auth"/);

    const anonymous = await registryRequest(`${mirror}/v2/library/app/manifests/v1`, { accept: MANIFEST_ACCEPT, scope: 'repository:library/app:pull', userAgent: DOCKER_UA });
    expect(anonymous.status).toBe(401);
    expect(anonymous.challenge?.scope).toBe('repository:library/app:pull');
    expect(await fx.upstreamRequestCount()).toBe(0);

    const pulled = await pullImage(`${mirror}/v2/library/app`, 'v1', '', { creds: fx.robotCreds, scope: 'repository:library/app:pull', userAgent: DOCKER_UA });
    expect(pulled.manifestDigest).toBe(fx.app.digest);
    const entry = await waitForPullLog(fx.entrepot, HUB_ORG, (e) => e.user_agent === DOCKER_UA);
    expect(entry.repository).toBe('library/app');
    expect(entry.metadata).toMatchObject({ route: 'default', tag: 'v1', manifest_digest: fx.app.digest });
    expect(entry.performer).toMatchObject({ kind: 'robot', name: ROBOT });
  });

  it('serves anonymous Docker Engines once the default org is public, for library/ and other namespaces', async () => {
    const res = await fx.entrepot.api('PUT', `/organization/${HUB_ORG}`, { is_public: true });
    expect(res.status).toBe(200);
    const app = await pullImage(`${mirror}/v2/library/app`, 'v1', '', { scope: 'repository:library/app:pull', userAgent: DOCKER_UA });
    expect(app.manifestDigest).toBe(fx.app.digest);
    const tool = await pullImage(`${mirror}/v2/someuser/tool`, 'v1', '', { userAgent: DOCKER_UA });
    expect(tool.manifestDigest).toBe(fx.userTool.digest);
    const entry = await waitForPullLog(fx.entrepot, HUB_ORG, (e) => e.repository === 'someuser/tool' && e.user_agent === DOCKER_UA);
    expect(entry.metadata.route).toBe('default');
    expect(entry.performer.kind).toBe('anonymous');
  });

  it('serves skopeo copies of <mirror>/library/app:TAG (the same request shape) from the default org', async () => {
    const digest = await skopeoCopyOut(`${fx.entrepot.host}/library/app:v1`, join(fx.work, 'skopeo-default'));
    expect(digest).toBe(fx.app.digest);
    await waitForPullLog(fx.entrepot, HUB_ORG, (e) => e.repository === 'library/app' && /skopeo|containers/i.test(e.user_agent ?? '') && e.metadata.route === 'default');
  });

  it('still lets an organization in the path win over the default org', async () => {
    const res = await registryRequest(`${mirror}/v2/${OFFICIAL_ORG}/app/manifests/v1`, { accept: MANIFEST_ACCEPT, userAgent: 'explicit-check' });
    expect(res.status).toBe(200);
    const entry = await waitForPullLog(fx.entrepot, OFFICIAL_ORG, (e) => e.user_agent === 'explicit-check');
    expect(entry.metadata.route).toBe('explicit');
  });

  it('takes the default org from the config file too (entrepot-yaml-default-org)', async () => {
    const yaml = parseYaml(snippet('entrepot-yaml-default-org')) as { proxy_cache: Record<string, unknown> };
    const instance = await startEntrepot({
      env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' },
      overrides: { proxy_cache: yaml.proxy_cache },
      plugins: [createPlugin],
    });
    extra.push(instance);
    await createCacheOrg(instance, HUB_ORG, 'docker.io', fx.hub, true);
    const pulled = await pullImage(`${instance.url}/v2/library/app`, 'v1', '', { userAgent: DOCKER_UA });
    expect(pulled.manifestDigest).toBe(fx.app.digest);
    const entry = await waitForPullLog(instance, HUB_ORG, (e) => e.user_agent === DOCKER_UA);
    expect(entry.metadata.route).toBe('default');
  });

  it('answers NAME_UNKNOWN with the reason when the default org is not a cache organization', async () => {
    const instance = await startEntrepot({ env: { PROXY_CACHE_DEFAULT_ORG: 'nosuchorg' }, plugins: [createPlugin] });
    extra.push(instance);
    for (const auth of [undefined, instance.adminAuth]) {
      const res = await fetch(`${instance.url}/v2/library/app/manifests/v1`, { headers: auth ? { authorization: auth } : {} });
      expect(res.status).toBe(404);
      const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
      expect(body.errors[0].code).toBe('NAME_UNKNOWN');
      expect(body.errors[0].message).toContain('the default mirror organization nosuchorg is not a cache organization');
    }
  });
});
