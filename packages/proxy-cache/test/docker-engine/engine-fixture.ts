/**
 * Shared setup of the Docker Engine tests: a real upstream registry playing
 * Docker Hub (token auth), an Entrepot with the proxy-cache plugin, the
 * organizations the tests pull from, and one private dockerd (testing/docker-engine.ts).
 *
 * | org      | kind                              | visibility |
 * | -------- | --------------------------------- | ---------- |
 * | `hub`    | cache of `docker.io`              | private; robot `hub+puller` reads through a default permission, robot `hub+idle` has none, user `dev` is a member |
 * | `public` | cache of `docker.io/library`      | public |
 * | `team`   | normal organization               | private |
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlugin } from '../../src/index';
import { DockerEngine } from '../../../../testing/docker-engine';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { createOciImage, MULTI_ARCH, pushImage, type BuiltImage } from '../../../../testing/oci-images';
import { UpstreamRegistry } from '../../../../testing/upstream-registry';

export const CACHE_ORG = 'hub';
export const PUBLIC_ORG = 'public';
export const NORMAL_ORG = 'team';
export const PULLER = `${CACHE_ORG}+puller`;
export const IDLE_ROBOT = `${CACHE_ORG}+idle`;
export const DEV_USER = 'dev';
export const DEV_PASSWORD = 'dev-password-1';

export interface UpstreamImage {
  image: BuiltImage;
  /** What the tag points at (manifest, or index for multi-arch). */
  digest: string;
}

export interface EngineFixture {
  upstream: UpstreamRegistry;
  entrepot: TestInstance;
  engine: DockerEngine;
  /** `127.0.0.1:PORT`: image references and `docker login` server. */
  registry: string;
  pullerToken: string;
  idleToken: string;
  /** docker.io/library/app:v1 (one manifest, two layers). */
  app: UpstreamImage;
  /** docker.io/library/other:v1, never pulled before the test that needs a repository the cache has not created. */
  other: UpstreamImage;
  /** docker.io/library/multi:v1: an index of linux/amd64 and linux/arm64. */
  multi: UpstreamImage;
  stop(): Promise<void>;
}

async function apiOk(entrepot: TestInstance, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await entrepot.api(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function cacheOrg(entrepot: TestInstance, name: string, upstreamRegistry: string, upstream: UpstreamRegistry, isPublic: boolean): Promise<void> {
  await apiOk(entrepot, 'POST', '/organization/', { name, is_public: isPublic });
  await apiOk(entrepot, 'POST', `/organization/${name}/proxycache`, {
    upstream_registry: upstreamRegistry,
    upstream_endpoint: upstream.url,
    insecure: true,
    upstream_registry_username: upstream.credentials?.username,
    upstream_registry_password: upstream.credentials?.password,
  });
}

export async function startEngineFixture(): Promise<EngineFixture> {
  const work = mkdtempSync(join(tmpdir(), 'entrepot-docker-'));
  const started: Array<{ stop(): Promise<void> }> = [];
  try {
    const upstream = await UpstreamRegistry.start({ auth: { mode: 'token' } });
    started.push(upstream);
    const push = async (repo: string, seed: string, multiArch = false): Promise<UpstreamImage> => {
      const image = await createOciImage(join(work, repo.replace(/\//g, '_')), { tag: 'v1', seed, layerSize: [50_000, 120_000], platforms: multiArch ? MULTI_ARCH : undefined });
      const digest = await pushImage(image.layoutDir, 'v1', upstream.ref(repo, 'v1'), { creds: upstream.creds, all: multiArch });
      return { image, digest };
    };
    const [app, other, multi] = await Promise.all([
      push('library/app', 'docker-app-v1'),
      push('library/other', 'docker-other-v1'),
      push('library/multi', 'docker-multi-v1', true),
    ]);
    const [entrepot, engine] = await Promise.all([
      startEntrepot({ env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' }, plugins: [createPlugin] }),
      DockerEngine.start(),
    ]);
    started.push(entrepot, engine);

    await cacheOrg(entrepot, CACHE_ORG, 'docker.io', upstream, false);
    await cacheOrg(entrepot, PUBLIC_ORG, 'docker.io/library', upstream, true);
    await apiOk(entrepot, 'POST', '/organization/', { name: NORMAL_ORG });
    const puller = (await apiOk(entrepot, 'PUT', `/organization/${CACHE_ORG}/robots/puller`, {})) as { token: string };
    const idle = (await apiOk(entrepot, 'PUT', `/organization/${CACHE_ORG}/robots/idle`, {})) as { token: string };
    // Repositories the cache creates later get `read` for the puller robot; the idle robot gets nothing.
    await apiOk(entrepot, 'POST', `/organization/${CACHE_ORG}/prototypes`, { role: 'read', delegate: { kind: 'robot', name: PULLER } });
    await apiOk(entrepot, 'POST', '/superuser/users/', { username: DEV_USER, password: DEV_PASSWORD });
    await apiOk(entrepot, 'PUT', `/organization/${CACHE_ORG}/members/${DEV_USER}`, { role: 'member' });
    upstream.resetLog();

    return {
      upstream,
      entrepot,
      engine,
      registry: entrepot.host,
      pullerToken: puller.token,
      idleToken: idle.token,
      app,
      other,
      multi,
      async stop() {
        for (const s of started.reverse()) await s.stop().catch(() => undefined);
        rmSync(work, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
}

/** Upstream GETs of one blob or manifest digest (from Distribution's access log). */
export async function upstreamGets(upstream: UpstreamRegistry, digest: string): Promise<number> {
  const requests = await upstream.settledRequests();
  return requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/${digest}`)).length;
}
