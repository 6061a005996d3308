/**
 * The servers measured side by side: Entrepot (embedded and scale-out) as
 * separate processes, CNCF Distribution in proxy mode (on the filesystem and
 * on S3), the upstream itself (direct pulls), nginx serving the same files
 * (the static limit) and a bare Node relay (the floor of a cold pull in Node).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, linkSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { S3Server } from '../../testing/s3-server';
import { TempDir, freePort, run, stopProcess, trackChild, waitForHttp } from '../../testing/tools';
import { UpstreamRegistry } from '../../testing/upstream-registry';
import { NODE_FLAGS, launcherSpawn } from '../../packages/registry-core/src/runtime/node-flags';
import { findPid } from './proc';
import { log } from './util';

export type ContenderId =
  | 'direct'
  | 'nginx'
  | 'node-relay'
  | 'node-relay-hash'
  | 'node-relay-bare'
  | 'distribution'
  | 'distribution-s3'
  | 'entrepot'
  | 'entrepot-scaleout'
  | 'entrepot-scanner'
  | 'entrepot-baseline'
  | 'entrepot-scaleout-baseline';

export const LABELS: Record<ContenderId, string> = {
  direct: 'direct (upstream)',
  nginx: 'nginx (static limit)',
  'node-relay': 'Node relay (floor)',
  'node-relay-hash': 'Node relay, hashing only',
  'node-relay-bare': 'Node relay, bare',
  distribution: 'Distribution proxy',
  'distribution-s3': 'Distribution proxy on S3',
  entrepot: 'Entrepot embedded',
  'entrepot-scaleout': 'Entrepot scale-out',
  'entrepot-scanner': 'Entrepot embedded, Clair scanning on',
  'entrepot-baseline': 'Entrepot embedded, baseline',
  'entrepot-scaleout-baseline': 'Entrepot scale-out, baseline',
};

/** Column prefixes of the ratio columns. */
export const SHORT: Record<ContenderId, string> = {
  direct: 'direct',
  nginx: 'nginx',
  'node-relay': 'relay',
  'node-relay-hash': 'relay-hash',
  'node-relay-bare': 'relay-bare',
  distribution: 'Dist',
  'distribution-s3': 'Dist-S3',
  entrepot: 'E',
  'entrepot-scaleout': 'E-so',
  'entrepot-scanner': 'E-scan',
  'entrepot-baseline': 'E-base',
  'entrepot-scaleout-baseline': 'E-so-base',
};

export interface Contender {
  id: ContenderId;
  /** `127.0.0.1:PORT`. */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** True for the pull-through caches (they fetch from the upstream). */
  isCache: boolean;
  /** Server process whose memory is measured. */
  pid(): number | undefined;
  /** Repository path on this contender for the upstream repository `library/x`. */
  repo(upstreamRepo: string): string;
  stop(): Promise<void>;
}

export const ADMIN = { user: 'admin', password: 'bench-admin-password-1' };
export const CACHE_ORG = 'hub';
/** A second cache organization of the same upstream for the growth scenario, so its quota and eviction see only those tags. */
export const GROWTH_ORG = 'grow';

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

// ---------------------------------------------------------------------------
// Upstream and Distribution

export function directContender(upstream: UpstreamRegistry): Contender {
  return {
    id: 'direct',
    host: upstream.host,
    url: upstream.url,
    isCache: false,
    pid: () => findPid('docker-registry', upstream.configPath),
    repo: (r) => r,
    stop: () => Promise.resolve(),
  };
}

/** A Distribution proxy as a contender; `stop` also stops what it depends on. */
function distributionContender(id: ContenderId, reg: UpstreamRegistry, stop: () => Promise<void>): Contender {
  return {
    id,
    host: reg.host,
    url: reg.url,
    isCache: true,
    pid: () => findPid('docker-registry', reg.configPath),
    repo: (r) => r,
    stop,
  };
}

/** `remoteUrl`: where the proxy fetches from (default the upstream itself; a relay in front of it for lazy pulls). */
export async function startDistributionProxy(upstream: UpstreamRegistry, remoteUrl = upstream.url): Promise<Contender> {
  const reg = await UpstreamRegistry.start({ proxy: { remoteurl: remoteUrl } });
  return distributionContender('distribution', reg, () => reg.stop());
}

/**
 * The Node relay (node-relay.ts) in front of the upstream, started with
 * Entrepot's Node flags: what one stream costs a Node process that does only
 * what a cache must do with each byte (`node-relay`), or only part of it
 * (`node-relay-hash`: hashing, no storing; `node-relay-bare`: neither).
 */
export async function startNodeRelay(upstream: UpstreamRegistry, id: 'node-relay' | 'node-relay-hash' | 'node-relay-bare' = 'node-relay'): Promise<Contender> {
  const dir = await TempDir.create('entrepot-bench-relay-');
  const port = await freePort();
  const work = { 'node-relay': 'store', 'node-relay-hash': 'hash', 'node-relay-bare': 'none' }[id];
  const child = trackChild(
    spawn(process.execPath, [...NODE_FLAGS, join(__dirname, 'node-relay.js')], { env: { ...process.env, UPSTREAM: upstream.url, PORT: String(port), SCRATCH_DIR: dir.path, RELAY_WORK: work }, stdio: ['ignore', 'ignore', 'inherit'] }),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v2/`, 10_000, { process: child, intervalMs: 50 });
  return {
    id,
    host: `127.0.0.1:${port}`,
    url,
    isCache: false,
    pid: () => child.pid,
    repo: (r) => r,
    async stop() {
      await stopProcess(child);
      await dir.remove();
    },
  };
}

/**
 * Distribution's proxy with its blobs in S3 (the same SeaweedFS build as
 * Entrepot scale-out, its own instance), streamed through the registry: the
 * like-for-like comparison for Entrepot scale-out.
 */
export async function startDistributionS3Proxy(upstream: UpstreamRegistry, opts: { tls?: boolean } = {}): Promise<Contender> {
  const s3 = await S3Server.start({ bucket: 'distribution-bench', tls: opts.tls });
  try {
    const reg = await UpstreamRegistry.start({ proxy: { remoteurl: upstream.url }, s3: s3.connection() });
    return distributionContender('distribution-s3', reg, async () => {
      await reg.stop();
      await s3.stop();
    });
  } catch (err) {
    await s3.stop();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Entrepot as its own process

export interface EntrepotOptions {
  /** The checkout whose build is started; another than this one for a baseline contender. */
  repoRoot: string;
  /** Labels the process as the baseline (`--baseline`): an earlier build measured beside this one. */
  baseline?: boolean;
  upstreamUrl: string;
  scaleOut?: boolean;
  /** Scale-out's SeaweedFS serves HTTPS with a self-signed certificate, trusted through `ENTREPOT_S3_CA_FILE`. */
  s3Tls?: boolean;
  /** Directory for `node --cpu-prof` output. */
  cpuProfDir?: string;
  /** Security scanning on, with this Clair (embedded mode only). */
  scanner?: { url: string; psk: string | null };
}

export interface EntrepotContender extends Contender {
  dataDir: string;
  logFile: string;
  /** Admin Basic JSON API call. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
}

export async function startEntrepot(opts: EntrepotOptions): Promise<EntrepotContender> {
  const id: ContenderId = opts.scaleOut
    ? opts.baseline
      ? 'entrepot-scaleout-baseline'
      : 'entrepot-scaleout'
    : opts.scanner
      ? 'entrepot-scanner'
      : opts.baseline
        ? 'entrepot-baseline'
        : 'entrepot';
  const dir = await TempDir.create(`entrepot-bench-${id}-`);
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => log(`${id} cleanup: ${String(err)}`));
    await dir.remove();
  };
  try {
    const port = await freePort();
    const config: Record<string, unknown> = {
      log_level: 'error',
      proxy_cache: {
        orgs: [CACHE_ORG, GROWTH_ORG].map((name) => ({ name, upstream_registry: 'docker.io', upstream_endpoint: opts.upstreamUrl, insecure: true, is_public: true })),
      },
    };
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('ENTREPOT_') && !k.startsWith('PROXY_CACHE_') && !k.startsWith('FEATURE_')) env[k] = v;
    }
    Object.assign(env, {
      ENTREPOT_CONFIG: dir.join('config.yml'),
      ENTREPOT_DATA_DIR: dir.join('data'),
      ENTREPOT_HOST: '127.0.0.1',
      PORT: String(port),
      ENTREPOT_BOOTSTRAP_ADMIN: `${ADMIN.user}:${ADMIN.password}`,
      ENTREPOT_LOG_LEVEL: 'error',
      PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*',
      NODE_ENV: 'production',
    });
    if (opts.scanner) {
      Object.assign(env, {
        FEATURE_SECURITY_SCANNER: 'true',
        SECURITY_SCANNER_V4_ENDPOINT: opts.scanner.url,
        ...(opts.scanner.psk ? { SECURITY_SCANNER_V4_PSK: opts.scanner.psk } : {}),
      });
    }
    if (opts.scaleOut) {
      const suffix = randomBytes(4).toString('hex');
      const database = `entrepot_bench_${suffix}`;
      await run('/usr/bin/mariadb', ['-h', '127.0.0.1', '-P', '3306', '-u', 'root', '-e', `CREATE DATABASE ${database}`], { timeoutMs: 20_000 });
      cleanups.push(async () => {
        await run('/usr/bin/mariadb', ['-h', '127.0.0.1', '-P', '3306', '-u', 'root', '-e', `DROP DATABASE IF EXISTS ${database}`], { timeoutMs: 60_000 });
      });
      const prefix = `entrepot-bench-${suffix}`;
      config.queue = { driver: 'bullmq', redis_url: 'redis://127.0.0.1:6379', prefix };
      cleanups.push(async () => {
        const keys = await run('/usr/bin/redis-cli', ['-h', '127.0.0.1', '--scan', '--pattern', `${prefix}:*`], { allowFailure: true });
        const list = keys.stdout.toString().split('\n').filter(Boolean);
        for (let i = 0; i < list.length; i += 200) await run('/usr/bin/redis-cli', ['-h', '127.0.0.1', 'DEL', ...list.slice(i, i + 200)], { allowFailure: true });
      });
      const s3 = await S3Server.start({ bucket: 'entrepot-bench', tls: opts.s3Tls });
      cleanups.push(() => s3.stop());
      Object.assign(env, {
        ENTREPOT_DATABASE_URL: `mysql://root@127.0.0.1:3306/${database}`,
        ENTREPOT_SECRET_KEY: randomBytes(32).toString('base64'),
        ENTREPOT_S3_ENDPOINT: '127.0.0.1',
        ENTREPOT_S3_PORT: String(s3.port),
        ENTREPOT_S3_ACCESS_KEY: s3.accessKey,
        ENTREPOT_S3_SECRET_KEY: s3.secretKey,
        ENTREPOT_S3_BUCKET: s3.bucket,
        ENTREPOT_S3_REGION: s3.region,
        ...(s3.caFile ? { ENTREPOT_S3_USE_SSL: 'true', ENTREPOT_S3_CA_FILE: s3.caFile } : {}),
      });
    }
    // JSON is YAML.
    writeFileSync(dir.join('config.yml'), JSON.stringify(config, null, 2));
    // Started as `npm start` starts it: through its launcher, with this Node.
    // Node refuses --cpu-prof in NODE_OPTIONS; the launcher passes these on.
    if (opts.cpuProfDir) env.ENTREPOT_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${opts.cpuProfDir}`;
    const logFile = dir.join('entrepot.log');
    const out = createWriteStream(logFile);
    const launch = launcherSpawn(opts.repoRoot, process.execPath, env);
    const child: ChildProcess = trackChild(spawn(launch.command, launch.args, { cwd: opts.repoRoot, env: launch.env, stdio: ['ignore', 'pipe', 'pipe'] }));
    // Two pipes into one file: neither may end it while the other still writes.
    child.stdout?.pipe(out, { end: false });
    child.stderr?.pipe(out, { end: false });
    child.once('close', () => out.end());
    cleanups.push(() => stopProcess(child, 20_000));
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/v2/`, 90_000, { process: child, intervalMs: 100 });
    const auth = basic(ADMIN.user, ADMIN.password);
    return {
      id,
      host: `127.0.0.1:${port}`,
      url,
      isCache: true,
      dataDir: dir.join('data'),
      logFile,
      pid: () => child.pid,
      repo: (r) => `${CACHE_ORG}/${r}`,
      async api(method, path, body) {
        const res = await fetch(`${url}/api/v1${path}`, {
          method,
          headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          // not JSON
        }
        return { status: res.status, body: parsed };
      },
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// nginx: the same blob files served statically

export interface StaticBlob {
  digest: string;
  /** A file with the blob's bytes (hard-linked, so no copy). */
  file: string;
}

export class NginxStatic implements Contender {
  readonly id = 'nginx' as const;
  readonly isCache = false;
  readonly host: string;
  readonly url: string;
  private child?: ChildProcess;

  private constructor(
    private readonly dir: TempDir,
    readonly port: number,
  ) {
    this.host = `127.0.0.1:${port}`;
    this.url = `http://${this.host}`;
  }

  static async start(): Promise<NginxStatic> {
    const dir = await TempDir.create('entrepot-bench-nginx-');
    const port = await freePort();
    const server = new NginxStatic(dir, port);
    mkdirSync(dir.join('root', 'v2'), { recursive: true });
    mkdirSync(dir.join('tmp'), { recursive: true });
    const conf = `
user root;
worker_processes auto;
pid ${dir.join('nginx.pid')};
error_log ${dir.join('error.log')} error;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${dir.join('tmp')};
  proxy_temp_path ${dir.join('tmp')};
  fastcgi_temp_path ${dir.join('tmp')};
  uwsgi_temp_path ${dir.join('tmp')};
  scgi_temp_path ${dir.join('tmp')};
  types { }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${dir.join('root')};
    location = /v2/ { default_type application/json; return 200 '{}'; }
    location ~ ^/v2/.+/manifests/ { default_type application/vnd.oci.image.manifest.v1+json; }
  }
}
`;
    writeFileSync(dir.join('nginx.conf'), conf);
    const child = trackChild(spawn('/usr/sbin/nginx', ['-p', dir.path, '-c', dir.join('nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] }));
    server.child = child;
    await waitForHttp(`${server.url}/v2/`, 10_000, { process: child, intervalMs: 50 });
    return server;
  }

  pid(): number | undefined {
    return this.child?.pid;
  }

  repo(upstreamRepo: string): string {
    return upstreamRepo;
  }

  /** Publishes manifest bytes under tag and digest, and hard-links the blobs. */
  publish(repo: string, tag: string, digest: string, manifest: Buffer, blobs: StaticBlob[]): void {
    const base = this.dir.join('root', 'v2', repo);
    mkdirSync(join(base, 'manifests'), { recursive: true });
    mkdirSync(join(base, 'blobs'), { recursive: true });
    writeFileSync(join(base, 'manifests', tag), manifest);
    writeFileSync(join(base, 'manifests', digest), manifest);
    for (const b of blobs) {
      const target = join(base, 'blobs', b.digest);
      if (!existsSync(target)) linkSync(b.file, target);
    }
  }

  async stop(): Promise<void> {
    if (this.child) await stopProcess(this.child);
    await this.dir.remove();
  }
}
