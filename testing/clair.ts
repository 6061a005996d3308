/**
 * A real Clair v4 (built and cached by scripts/ci/setup.sh) in combo mode on
 * the machine's PostgreSQL, in a database of its own that is created with the
 * `uuid-ossp` extension and dropped on `stop()`. Offline: updaters are off,
 * the indexer is air-gapped and the RHEL scanners get empty local mapping
 * files (without them every index fails). Vulnerabilities are loaded with
 * `clairctl import-updaters` from records built by `vulnerabilityRecord`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { OutputTail, TempDir, freePorts, requireTool, run, sleep, stopProcess, trackChild } from './tools';

const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };

export interface ClairServerOptions {
  /** Base64 PSK Clair requires (HS256 JWT, issuer `quay`); default: a random one. `null`: no authentication. */
  psk?: string | null;
  startTimeoutMs?: number;
}

/** One vulnerability in claircore's JSON, as `import-updaters` reads it. */
export interface VulnerabilityFixture {
  updater: 'alpine' | 'debian';
  name: string;
  severity: 'Unknown' | 'Negligible' | 'Low' | 'Medium' | 'High' | 'Critical';
  packageName: string;
  fixedInVersion: string;
  description?: string;
  link?: string;
  /** What Clair detects in the layer: alpine `{did, name, pretty_name}`, debian `{did, name, version}`. */
  distribution: Record<string, string>;
}

async function psql(sql: string, database = 'postgres'): Promise<void> {
  const result = await run(requireTool('psql'), ['-h', PG.host, '-p', String(PG.port), '-U', PG.user, '-d', database, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql]);
  if (result.code !== 0) throw new Error(`psql ${sql}: ${result.stderr}`);
}

export class ClairServer {
  /** `http://127.0.0.1:PORT`: indexer and matcher APIs. */
  readonly url: string;
  /** Base64 PSK, or null when Clair runs without authentication. */
  readonly psk: string | null;
  private child?: ChildProcess;
  private readonly logTail = new OutputTail(65536);

  private constructor(
    private readonly dir: TempDir,
    readonly database: string,
    private readonly port: number,
    private readonly introspectionPort: number,
    psk: string | null,
    private readonly startTimeoutMs: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.psk = psk;
  }

  static async start(options: ClairServerOptions = {}): Promise<ClairServer> {
    requireTool('clair');
    requireTool('clairctl');
    const dir = await TempDir.create('entrepot-clair-');
    const database = `entrepot_clair_${randomBytes(6).toString('hex')}`;
    try {
      await psql(`CREATE DATABASE ${database}`);
      await psql('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"', database);
      const [port, introspection] = await freePorts(2);
      const psk = options.psk === undefined ? randomBytes(32).toString('base64') : options.psk;
      const server = new ClairServer(dir, database, port, introspection, psk, options.startTimeoutMs ?? 120_000);
      await server.writeConfig();
      await server.up();
      return server;
    } catch (err) {
      await psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
      await dir.remove();
      throw err;
    }
  }

  private get configPath(): string {
    return this.dir.join('clair.yaml');
  }

  private async writeConfig(): Promise<void> {
    const empty = JSON.stringify({ data: {} });
    await writeFile(this.dir.join('repo2cpe.json'), empty);
    await writeFile(this.dir.join('name2repos.json'), empty);
    const conn = `host=${PG.host} port=${PG.port} user=${PG.user} dbname=${this.database} sslmode=disable`;
    const config = {
      http_listen_addr: `127.0.0.1:${this.port}`,
      introspection_addr: `127.0.0.1:${this.introspectionPort}`,
      log_level: 'info',
      indexer: {
        connstring: conn,
        migrations: true,
        airgap: true,
        scanlock_retry: 1,
        layer_scan_concurrency: 2,
        scanner: {
          repo: { 'rhel-repository-scanner': { repo2cpe_mapping_file: this.dir.join('repo2cpe.json') } },
          package: { rhel_containerscanner: { name2repos_mapping_file: this.dir.join('name2repos.json') } },
        },
      },
      matcher: { connstring: conn, migrations: true, disable_updaters: true, indexer_addr: `http://127.0.0.1:${this.port}/` },
      matchers: { names: ['alpine-matcher', 'debian-matcher'] },
      notifier: { connstring: conn, migrations: true, indexer_addr: `http://127.0.0.1:${this.port}/`, matcher_addr: `http://127.0.0.1:${this.port}/`, poll_interval: '1h', delivery_interval: '1h' },
      ...(this.psk ? { auth: { psk: { key: this.psk, iss: ['quay'] } } } : {}),
      metrics: { name: 'prometheus' },
    };
    // JSON is YAML.
    await writeFile(this.configPath, JSON.stringify(config, null, 2));
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts Clair (again, after `down()`) on the same ports and database; resolves once it is ready. */
  async up(): Promise<void> {
    if (this.running) return;
    const child = trackChild(spawn(requireTool('clair'), ['-conf', this.configPath, '-mode', 'combo'], { cwd: this.dir.path, stdio: ['ignore', 'pipe', 'pipe'] }));
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => this.logTail.push(d));
    child.stderr?.on('data', (d: Buffer) => this.logTail.push(d));
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        this.child = undefined;
        throw new Error(`clair exited (${child.exitCode ?? child.signalCode}):\n${this.logTail.toString()}`);
      }
      const ready = await fetch(`http://127.0.0.1:${this.introspectionPort}/readyz`).then((r) => r.status === 200, () => false);
      if (ready) return;
      if (Date.now() > deadline) {
        await this.down();
        throw new Error(`clair not ready after ${this.startTimeoutMs} ms:\n${this.logTail.toString()}`);
      }
      await sleep(250);
    }
  }

  /** Stops Clair, keeping its database. */
  async down(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await stopProcess(child, 10_000);
  }

  /** Loads vulnerabilities into the matcher's database (`clairctl import-updaters`). */
  async importVulnerabilities(vulns: VulnerabilityFixture[]): Promise<void> {
    const date = new Date().toISOString();
    const byUpdater = new Map<string, VulnerabilityFixture[]>();
    for (const v of vulns) byUpdater.set(v.updater, [...(byUpdater.get(v.updater) ?? []), v]);
    const lines: string[] = [];
    for (const [updater, list] of byUpdater) {
      const ref = randomUUID();
      const fingerprint = randomUUID();
      for (const v of list) {
        lines.push(
          JSON.stringify({
            Updater: updater,
            Fingerprint: fingerprint,
            Date: date,
            Ref: ref,
            Kind: 'vulnerability',
            Vuln: {
              updater,
              name: v.name,
              description: v.description ?? `${v.name} in ${v.packageName}`,
              issued: date,
              links: v.link ?? `https://security.example.test/${v.name}`,
              severity: v.severity,
              normalized_severity: v.severity,
              package: { name: v.packageName, kind: 'binary' },
              distribution: v.distribution,
              fixed_in_version: v.fixedInVersion,
            },
          }),
        );
      }
    }
    const file = this.dir.join(`vulns-${randomUUID()}.jsonl`);
    await writeFile(file, `${lines.join('\n')}\n`);
    const result = await run(requireTool('clairctl'), ['-c', this.configPath, 'import-updaters', file]);
    if (result.code !== 0) throw new Error(`clairctl import-updaters failed: ${result.stderr}`);
  }

  log(): string {
    return this.logTail.toString();
  }

  /** Stops Clair and drops its database. */
  async stop(): Promise<void> {
    await this.down();
    await psql(`DROP DATABASE IF EXISTS ${this.database} WITH (FORCE)`).catch(() => undefined);
    await this.dir.remove();
  }
}
