/**
 * Entrepot as operators scale it out: replicas run as real processes (the
 * launcher `npm start` runs) over MariaDB, Redis and SeaweedFS, each with its
 * peer listener, behind nginx (Debian's nginx-light) balancing round-robin and
 * passing a failed connection on to the next replica, as a production load
 * balancer does. nginx names the replica that answered in `X-Entrepot-Replica`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { startScaleOutBackends, type ScaleOutBackends } from '../../../registry-core/test/scale-out/scale-out-backends';
import { OutputTail, freePort, stopProcess, trackChild, waitForHttp } from '../../../../testing/tools';
import { EntrepotProcess } from '../infra-faults/entrepot-process';

const NGINX = '/usr/sbin/nginx';
export const ORG = 'hub';

export interface Replica {
  index: number;
  process: EntrepotProcess;
  /** host:port as nginx reports it in X-Entrepot-Replica. */
  address: string;
  peerUrl: string;
}

/** Settings a test changes from the defaults below. */
export interface ClusterOptions {
  /** Merged into each replica's `proxy_cache` section. */
  proxyCache?: Record<string, unknown>;
  /** Merged into the declaration of the cache organization `hub`. */
  org?: Record<string, unknown>;
}

export class LoadBalancedCluster {
  readonly replicas: Replica[] = [];
  private nginx?: ChildProcess;
  private readonly nginxLog = new OutputTail();
  private noLiveUpstreams = 0;

  private constructor(
    readonly backends: ScaleOutBackends,
    private readonly work: string,
    private readonly upstreamUrl: string,
    private readonly secret: string,
    readonly port: number,
    private readonly options: ClusterOptions,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the backends, `count` replicas whose cache org `hub` reads `upstreamUrl`, and nginx before them. */
  static async start(upstreamUrl: string, count: number, options: ClusterOptions = {}): Promise<LoadBalancedCluster> {
    if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: install the Debian package nginx-light (scripts/ci/setup.sh does)`);
    const backends = await startScaleOutBackends();
    const work = mkdtempSync(join(tmpdir(), 'entrepot-lb-'));
    const cluster = new LoadBalancedCluster(backends, work, upstreamUrl, randomBytes(24).toString('hex'), await freePort(), options);
    try {
      // One after the other: each applies the declared cache organization at start.
      for (let i = 0; i < count; i++) cluster.replicas.push(await cluster.startReplica(i));
      await cluster.startNginx();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private async startReplica(index: number): Promise<Replica> {
    const port = await freePort();
    const peerPort = await freePort();
    const env = { ...this.backends.env, PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS: '127.0.0.1:*' };
    // The queue section below carries this run's prefix; the variable would replace it with the default.
    delete (env as Record<string, string | undefined>).ENTREPOT_REDIS_URL;
    const process = await EntrepotProcess.start({
      dataDir: join(this.work, `replica-${index}`),
      port,
      configPath: join(this.work, `replica-${index}.yml`),
      env,
      // A loaded machine (the suite runs beside other work) can take long to start three processes.
      startTimeoutMs: 120_000,
      config: {
        queue: { driver: 'bullmq', redis_url: this.backends.redisUrl, prefix: this.backends.queuePrefix },
        gc: { grace_seconds: 0, interval_seconds: 3600 },
        proxy_cache: {
          peer: { host: '127.0.0.1', port: peerPort, secret: this.secret },
          // One connection per fill, so that the upstream's access log counts whole downloads (parallel fills have their own tests).
          fill_connections: 1,
          orgs: [{ name: ORG, upstream_registry: 'docker.io', upstream_endpoint: this.upstreamUrl, insecure: true, expiration_s: 3600, ...this.options.org }],
          ...this.options.proxyCache,
        },
      },
    });
    return { index, process, address: `127.0.0.1:${port}`, peerUrl: `http://127.0.0.1:${peerPort}` };
  }

  private async startNginx(): Promise<void> {
    const dir = join(this.work, 'nginx');
    mkdirSync(join(dir, 'temp'), { recursive: true });
    // As deploy/compose/nginx.conf: one failed request does not take a replica out (on 2 busy cores
    // a single slow answer from each of the two running replicas would leave none while the third restarts).
    const servers = this.replicas.map((r) => `    server ${r.address} max_fails=3 fail_timeout=2s;`).join('\n');
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, 'temp', t)};`).join('\n');
    writeFileSync(
      join(dir, 'nginx.conf'),
      `worker_processes 1;
master_process off;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log stderr error;
events { worker_connections 2048; }
http {
  access_log off;
${temp}
  upstream entrepot {
${servers}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${this.port};
    client_max_body_size 0;
    location / {
      proxy_pass http://entrepot;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 120s;
      proxy_next_upstream error timeout http_502 http_503;
      add_header X-Entrepot-Replica $upstream_addr always;
      add_header X-Entrepot-Upstream-Status $upstream_status always;
    }
  }
}
`,
    );
    const child = trackChild(spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.nginx = child;
    // "no live upstreams" repeats for every request once all servers are marked failed, and would push
    // the lines saying why they were out of the tail: counted instead.
    const keep = (d: Buffer): void => {
      for (const line of d.toString().split('\n')) {
        if (line.includes('no live upstreams')) this.noLiveUpstreams++;
        else if (line.length > 0) this.nginxLog.push(`${line}\n`);
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    try {
      await waitForHttp(`${this.url}/v2/`, 15_000, { process: child, accept: (s) => s === 401 || s === 200 });
    } catch (err) {
      throw new Error(`nginx did not start: ${(err as Error).message}\n${this.nginxLog.toString()}`);
    }
  }

  /** The replica answering at nginx's `host:port`. */
  replicaAt(address: string | null): Replica | undefined {
    return this.replicas.find((r) => r.address === address);
  }

  /** The replica holding the fill lease of `digest` (its peer URL is the lease's note), if any. */
  async fillOwner(digest: string): Promise<Replica | undefined> {
    const redis = new Redis(this.backends.redisUrl, { maxRetriesPerRequest: 1 });
    try {
      const value = await redis.get(`${this.backends.queuePrefix}:lock:fill:${digest}`);
      const note = value?.slice(value.indexOf(' ') + 1);
      return this.replicas.find((r) => r.peerUrl === note);
    } finally {
      await redis.quit();
    }
  }

  /** nginx's error log and each replica's log tail: what explains a failed request through the cluster. */
  diagnostics(): string {
    const replicas = this.replicas.map((r) => `--- replica ${r.address} ---\n${r.process.log().slice(-4096)}`);
    return [`--- nginx (${this.noLiveUpstreams} "no live upstreams" lines left out) ---\n${this.nginxLog.toString().slice(-8192)}`, ...replicas].join('\n');
  }

  async stop(): Promise<void> {
    if (this.nginx) await stopProcess(this.nginx, 5000).catch(() => undefined);
    for (const r of this.replicas) await r.process.kill9().catch(() => undefined);
    await this.backends.cleanup().catch(() => undefined);
    rmSync(this.work, { recursive: true, force: true });
  }
}
