/**
 * Shared fixture of the mirroring tests (R-MIRROR): two real upstream
 * registries standing in for Docker Hub and ghcr.io (registered through
 * `upstream_endpoint`), an Entrepot with the proxy-cache plugin, and the cache
 * organizations that docs/mirroring.md uses, under the same names:
 *
 * | org            | upstream_registry | visibility |
 * | -------------- | ----------------- | ---------- |
 * | `dockerhub`    | `docker.io`       | private (robot `dockerhub+puller`) |
 * | `hub-official` | `docker.io/library` | public   |
 * | `acme-ghcr`    | `ghcr.io/acme`    | public     |
 *
 * Each test file starts one fixture in `beforeAll` and shares it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlugin } from '../../src/index';
import { startEntrepot, type TestInstance } from '../../../../testing/entrepot-instance';
import { createOciImage, MULTI_ARCH, pushImage, type BuiltImage } from '../../../../testing/oci-images';
import { UpstreamRegistry, type UpstreamAuth } from '../../../../testing/upstream-registry';

export const HUB_ORG = 'dockerhub';
export const OFFICIAL_ORG = 'hub-official';
export const ACME_ORG = 'acme-ghcr';
export const ROBOT = `${HUB_ORG}+puller`;

/** Which cache organizations to create (all by default). */
export interface MirrorFixtureOptions {
  orgs?: Array<typeof HUB_ORG | typeof OFFICIAL_ORG | typeof ACME_ORG>;
  /** Extra environment for Entrepot, e.g. `PROXY_CACHE_DEFAULT_ORG`. */
  env?: Record<string, string>;
  /** Start the ghcr.io stand-in (default true). */
  ghcr?: boolean;
  /** Push the multi-arch image (default false: it costs a second of setup). */
  multiArch?: boolean;
}

export interface PushedImage {
  image: BuiltImage;
  /** Digest of what the tag points at (manifest or index). */
  digest: string;
}

export interface MirrorFixture {
  /** Plays Docker Hub (`docker.io`): Docker token auth, like the real one. */
  hub: UpstreamRegistry;
  /** Plays ghcr.io: htpasswd (Basic) auth. */
  ghcr?: UpstreamRegistry;
  entrepot: TestInstance;
  work: string;
  /** `dockerhub+puller`'s token (read on every repository the cache creates). */
  robotToken: string;
  /** `dockerhub+puller:<token>`, for `--creds` / `--user`. */
  robotCreds: string;
  /** docker.io/library/app:v1 (single manifest, 2 layers). */
  app: PushedImage;
  /** docker.io/someuser/tool:v1 (a non-library Docker Hub repository). */
  userTool: PushedImage;
  /** docker.io/library/multi:v1 (index: linux/amd64 + linux/arm64), when `multiArch`. */
  multi?: PushedImage;
  /** ghcr.io/acme/tool:v1, when the ghcr stand-in runs. */
  acmeTool?: PushedImage;
  /** Total requests both upstreams logged since their last reset. */
  upstreamRequestCount(): Promise<number>;
  resetUpstreamLogs(): void;
  stop(): Promise<void>;
}

async function push(work: string, registry: UpstreamRegistry, repo: string, tag: string, opts: { seed: string; multiArch?: boolean }): Promise<PushedImage> {
  const image = await createOciImage(join(work, 'layouts', repo.replace(/\//g, '_')), {
    tag,
    seed: opts.seed,
    layerSize: [40_000, 90_000],
    platforms: opts.multiArch ? MULTI_ARCH : undefined,
  });
  const digest = await pushImage(image.layoutDir, tag, registry.ref(repo, tag), { creds: registry.creds, all: opts.multiArch });
  return { image, digest };
}

async function api(entrepot: TestInstance, method: string, path: string, body?: unknown, expected = [200, 201]): Promise<unknown> {
  const res = await entrepot.api(method, path, body);
  if (!expected.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Creates organization `name` (public or not) as a cache of `upstreamRegistry` served by `upstream`. */
export async function createCacheOrg(entrepot: TestInstance, name: string, upstreamRegistry: string, upstream: UpstreamRegistry, isPublic: boolean): Promise<void> {
  await api(entrepot, 'POST', '/organization/', { name, is_public: isPublic });
  const creds = upstream.credentials;
  await api(entrepot, 'POST', `/organization/${name}/proxycache`, {
    upstream_registry: upstreamRegistry,
    upstream_endpoint: upstream.url,
    insecure: true,
    ...(creds ? { upstream_registry_username: creds.username, upstream_registry_password: creds.password } : {}),
  });
}

export async function startMirrorFixture(options: MirrorFixtureOptions = {}): Promise<MirrorFixture> {
  const orgs = options.orgs ?? [HUB_ORG, OFFICIAL_ORG, ACME_ORG];
  const work = mkdtempSync(join(tmpdir(), 'entrepot-mirroring-'));
  const started: Array<{ stop(): Promise<void> }> = [];
  try {
    const hubAuth: UpstreamAuth = { mode: 'token' };
    const hub = await UpstreamRegistry.start({ auth: hubAuth });
    started.push(hub);
    const ghcr = options.ghcr === false ? undefined : await UpstreamRegistry.start({ auth: { mode: 'htpasswd' } });
    if (ghcr) started.push(ghcr);
    const [app, userTool, multi, acmeTool] = await Promise.all([
      push(work, hub, 'library/app', 'v1', { seed: 'app-v1' }),
      push(work, hub, 'someuser/tool', 'v1', { seed: 'someuser-tool-v1' }),
      options.multiArch ? push(work, hub, 'library/multi', 'v1', { seed: 'multi-v1', multiArch: true }) : undefined,
      ghcr ? push(work, ghcr, 'acme/tool', 'v1', { seed: 'acme-tool-v1' }) : undefined,
    ]);
    const entrepot = await startEntrepot({
      env: { PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*', ...options.env },
      plugins: [createPlugin],
    });
    started.push(entrepot);
    if (orgs.includes(HUB_ORG)) await createCacheOrg(entrepot, HUB_ORG, 'docker.io', hub, false);
    if (orgs.includes(OFFICIAL_ORG)) await createCacheOrg(entrepot, OFFICIAL_ORG, 'docker.io/library', hub, true);
    if (orgs.includes(ACME_ORG) && ghcr) await createCacheOrg(entrepot, ACME_ORG, 'ghcr.io/acme', ghcr, true);
    let robotToken = '';
    if (orgs.includes(HUB_ORG)) {
      const robot = (await api(entrepot, 'PUT', `/organization/${HUB_ORG}/robots/puller`, { description: 'cluster nodes' })) as { token: string };
      robotToken = robot.token;
      // The cache creates repositories on first pull: a default permission covers them.
      await api(entrepot, 'POST', `/organization/${HUB_ORG}/prototypes`, { role: 'read', delegate: { kind: 'robot', name: ROBOT } });
    }
    hub.resetLog();
    hub.tokenServer?.reset();
    ghcr?.resetLog();
    return {
      hub,
      ghcr,
      entrepot,
      work,
      robotToken,
      robotCreds: `${ROBOT}:${robotToken}`,
      app,
      userTool,
      multi,
      acmeTool,
      async upstreamRequestCount() {
        const [a, b] = await Promise.all([hub.settledRequests(), ghcr ? ghcr.settledRequests() : Promise.resolve([])]);
        return a.length + b.length + (hub.tokenServer?.requestCount ?? 0);
      },
      resetUpstreamLogs() {
        hub.resetLog();
        hub.tokenServer?.reset();
        ghcr?.resetLog();
      },
      async stop() {
        for (const s of started.reverse()) await s.stop();
        rmSync(work, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
}

export interface AuditEntry {
  kind: string;
  repository: string | null;
  metadata: Record<string, unknown>;
  performer: { kind: string; name: string | null };
  user_agent: string | null;
}

/** `pull_repo` entries of an organization's audit log (GET /api/v1/organization/{org}/logs), newest first. */
export async function pullLogs(entrepot: TestInstance, org: string): Promise<AuditEntry[]> {
  const body = (await api(entrepot, 'GET', `/organization/${org}/logs?kind=pull_repo&limit=1000`)) as { logs: AuditEntry[] };
  return body.logs;
}

/** Waits (audit records are written off the response path) until `pullLogs` has an entry matching `match`. */
export async function waitForPullLog(entrepot: TestInstance, org: string, match: (e: AuditEntry) => boolean, timeoutMs = 5000): Promise<AuditEntry> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await pullLogs(entrepot, org)).find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no pull_repo audit entry in ${org} matched within ${timeoutMs} ms: ${JSON.stringify(await pullLogs(entrepot, org))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The value of one sample of a Prometheus counter on GET /metrics (0 when absent). */
export async function metricValue(entrepot: TestInstance, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${entrepot.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labelText = line.slice(name.length + 1, line.indexOf('}'));
    const parsed = Object.fromEntries([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => parsed[k] === v)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
