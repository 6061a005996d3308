/**
 * Entrepot as a real child process, started through the launcher `npm start`
 * runs (Node flags and allocator included), configured by an ENTREPOT_CONFIG
 * file that declares its cache organizations: for tests that kill it with
 * SIGKILL, restart it on the same data directory, or read its memory from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { launcherSpawn } from '../../../registry-core/src/runtime/node-flags';
import { ADMIN_PASSWORD, ADMIN_USER, basicAuth } from '../../../../testing/entrepot-instance';
import { OutputTail, stopProcess, trackChild, waitForHttp } from '../../../../testing/tools';

/** The repository (the nearest directory up holding lerna.json): also right when compiled into bench/dist. */
function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(resolve(dir, 'lerna.json')) && resolve(dir, '..') !== dir) dir = resolve(dir, '..');
  return dir;
}
const REPO_ROOT = repoRoot();
const MAIN = resolve(REPO_ROOT, 'packages/registry-core/dist/main.js');

export interface EntrepotProcessOptions {
  dataDir: string;
  port: number;
  /** Where the YAML config is written (outside the data directory). */
  configPath: string;
  /** The config file's content (written as YAML); host, port, data_dir and the admin are added. */
  config: Record<string, unknown>;
  env?: Record<string, string>;
  /** How long a start may take before it counts as failed (default 30 s; the first start on a fresh MariaDB runs every migration). */
  startTimeoutMs?: number;
}

export class EntrepotProcess {
  private child?: ChildProcess;
  private readonly output = new OutputTail(32_768);
  readonly adminAuth = basicAuth(ADMIN_USER, ADMIN_PASSWORD);

  private constructor(private readonly options: EntrepotProcessOptions) {}

  get url(): string {
    return `http://127.0.0.1:${this.options.port}`;
  }

  get dataDir(): string {
    return this.options.dataDir;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Writes the config file and starts the process; resolves once /health/instance answers. */
  static async start(options: EntrepotProcessOptions): Promise<EntrepotProcess> {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" (npm test builds first)`);
    const config = {
      log_level: 'warn',
      auth: { password_hash_memory_kib: 1024 },
      ...options.config,
      host: '127.0.0.1',
      port: options.port,
      data_dir: options.dataDir,
      bootstrap_admin: `${ADMIN_USER}:${ADMIN_PASSWORD}`,
    };
    await writeFile(options.configPath, stringify(config));
    const instance = new EntrepotProcess(options);
    await instance.spawn();
    return instance;
  }

  private async spawn(): Promise<void> {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('ENTREPOT_') && !k.startsWith('PROXY_CACHE_') && !k.startsWith('FEATURE_')) env[k] = v;
    }
    Object.assign(env, { ENTREPOT_CONFIG: this.options.configPath, ...this.options.env });
    const launch = launcherSpawn(REPO_ROOT, process.execPath, env);
    const child = trackChild(spawn(launch.command, launch.args, { env: launch.env, stdio: ['ignore', 'pipe', 'pipe'] }));
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => this.output.push(d));
    child.stderr?.on('data', (d: Buffer) => this.output.push(d));
    try {
      await waitForHttp(`${this.url}/health/instance`, this.options.startTimeoutMs ?? 30_000, { process: child, accept: (s) => s === 200 });
    } catch (err) {
      await this.kill9();
      throw new Error(`Entrepot did not start: ${(err as Error).message}\n${this.output.toString()}`);
    }
  }

  /** SIGKILL: no shutdown hook runs, nothing is flushed. */
  async kill9(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Graceful stop (SIGTERM), as an operator's restart does. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await stopProcess(child, 20_000);
  }

  /** Starts the process again with the same config and data directory. */
  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.spawn();
  }

  /** Resident set size of the process, from /proc (bytes). */
  rssBytes(): number {
    if (!this.child?.pid) throw new Error('Entrepot is not running');
    const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (!match) throw new Error(`no VmRSS in /proc/${this.child.pid}/status`);
    return Number(match[1]) * 1024;
  }

  /** What the process printed (its log), last 32 KiB. */
  log(): string {
    return this.output.toString();
  }

  /** JSON API call as the admin. */
  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${this.url}/api/v1${path}`, {
      method,
      headers: { authorization: this.adminAuth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
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
  }
}
