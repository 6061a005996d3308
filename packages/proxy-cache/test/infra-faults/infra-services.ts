/**
 * Private MariaDB and Redis servers for the infrastructure fault tests: each
 * test starts its own on free loopback ports with its own data directory, so it
 * can kill and restart them without disturbing the machine's shared services
 * (which other suites use at the same time).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import * as net from 'node:net';
import knex, { type Knex } from 'knex';
import { OutputTail, TempDir, freePort, run, sleep, stopProcess, trackChild } from '../../../../testing/tools';

const MARIADBD = '/usr/sbin/mariadbd';
const MARIADB_INSTALL_DB = '/usr/bin/mariadb-install-db';
const REDIS_SERVER = '/usr/bin/redis-server';

function requireBinary(path: string, debianPackage: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: install the Debian package ${debianPackage} (scripts/test.sh does)`);
  return path;
}

/** Kills a child with SIGKILL (crash) or SIGTERM (graceful stop) and waits for it to exit. */
async function endProcess(child: ChildProcess, crash: boolean): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (!crash) {
    await stopProcess(child, 20_000);
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

/** A MariaDB server of its own (root, no password, TCP on 127.0.0.1), that a test may crash and restart. */
export class PrivateMariaDb {
  private child?: ChildProcess;
  private readonly log = new OutputTail();

  private constructor(
    private readonly dir: TempDir,
    readonly port: number,
  ) {}

  /** `mysql://root@127.0.0.1:PORT/<database>`, for ENTREPOT_DATABASE_URL. */
  url(database: string): string {
    return `mysql://root@127.0.0.1:${this.port}/${database}`;
  }

  static async start(): Promise<PrivateMariaDb> {
    requireBinary(MARIADBD, 'mariadb-server');
    const dir = await TempDir.create('entrepot-mariadb-');
    try {
      await mkdir(dir.join('data'));
      await run(requireBinary(MARIADB_INSTALL_DB, 'mariadb-server'), [
        '--no-defaults',
        `--datadir=${dir.join('data')}`,
        '--auth-root-authentication-method=normal',
        '--user=root',
        '--skip-test-db',
      ], { timeoutMs: 60_000 });
      const db = new PrivateMariaDb(dir, await freePort());
      await db.up();
      return db;
    } catch (err) {
      await dir.remove();
      throw err;
    }
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the server (again) on the same port and data; resolves once it answers queries. */
  async up(): Promise<void> {
    if (this.running) return;
    const child = trackChild(
      spawn(
        MARIADBD,
        [
          '--no-defaults',
          `--datadir=${this.dir.join('data')}`,
          `--port=${this.port}`,
          '--bind-address=127.0.0.1',
          `--socket=${this.dir.join('mysqld.sock')}`,
          `--pid-file=${this.dir.join('mysqld.pid')}`,
          '--user=root',
          '--skip-log-bin',
          '--skip-name-resolve',
          '--innodb-buffer-pool-size=32M',
          '--max-connections=200',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => this.log.push(d));
    child.stderr?.on('data', (d: Buffer) => this.log.push(d));
    const deadline = Date.now() + 60_000;
    let last = 'no attempt';
    for (;;) {
      if (!this.running) throw new Error(`mariadbd exited (${child.exitCode ?? child.signalCode}):\n${this.log.toString()}`);
      const probe = this.connect();
      try {
        await probe.raw('SELECT 1');
        return;
      } catch (err) {
        last = String(err);
      } finally {
        await probe.destroy();
      }
      if (Date.now() > deadline) throw new Error(`mariadbd not ready after 60 s (${last}):\n${this.log.toString()}`);
      await sleep(100);
    }
  }

  /** Stops the server: SIGKILL with `crash`, else a clean shutdown. */
  async down(opts: { crash?: boolean } = {}): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await endProcess(child, opts.crash ?? false);
  }

  /** A short-lived knex connection (to `database`, or to the server) for the test's own checks. */
  connect(database?: string): Knex {
    return knex({
      client: 'mysql2',
      connection: { host: '127.0.0.1', port: this.port, user: 'root', password: '', database, connectTimeout: 3000 },
      pool: { min: 0, max: 2 },
    });
  }

  /** Runs `fn` with a connection to `database`, closing it afterwards. */
  async with<T>(database: string, fn: (db: Knex) => Promise<T>): Promise<T> {
    const db = this.connect(database);
    try {
      return await fn(db);
    } finally {
      await db.destroy();
    }
  }

  serverLog(): string {
    return this.log.toString();
  }

  async stop(): Promise<void> {
    await this.down({ crash: true });
    await this.dir.remove();
  }
}

export interface PrivateRedisOptions {
  /**
   * Append-only file fsynced on every write (BullMQ's recommended production
   * setting): acknowledged jobs survive a crash. Default true.
   */
  persistent?: boolean;
}

/** A Redis server of its own on 127.0.0.1, that a test may crash and restart. */
export class PrivateRedis {
  private child?: ChildProcess;
  private readonly log = new OutputTail();

  private constructor(
    private readonly dir: TempDir,
    readonly port: number,
    private readonly persistent: boolean,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    requireBinary(REDIS_SERVER, 'redis-server');
    const dir = await TempDir.create('entrepot-redis-');
    const redis = new PrivateRedis(dir, await freePort(), options.persistent ?? true);
    try {
      await redis.up();
      return redis;
    } catch (err) {
      await dir.remove();
      throw err;
    }
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async up(): Promise<void> {
    if (this.running) return;
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--dir', this.dir.path,
      '--save', '',
      '--daemonize', 'no',
      '--maxmemory-policy', 'noeviction',
      ...(this.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    ];
    const child = trackChild(spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => this.log.push(d));
    child.stderr?.on('data', (d: Buffer) => this.log.push(d));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (!this.running) throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}):\n${this.log.toString()}`);
      if ((await this.ping().catch(() => '')) === '+PONG') return;
      if (Date.now() > deadline) throw new Error(`redis-server not ready after 30 s:\n${this.log.toString()}`);
      await sleep(50);
    }
  }

  /** One inline PING over a fresh connection; resolves with the first reply line (`-LOADING …` while loading). */
  private ping(): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: this.port });
      let reply = '';
      socket.setTimeout(2000, () => socket.destroy(new Error('timeout')));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.on('data', (d: Buffer) => {
        reply += d.toString('utf8');
        const nl = reply.indexOf('\r\n');
        if (nl >= 0) {
          socket.end();
          resolve(reply.slice(0, nl));
        }
      });
      socket.once('error', reject);
    });
  }

  async down(opts: { crash?: boolean } = {}): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await endProcess(child, opts.crash ?? false);
  }

  serverLog(): string {
    return this.log.toString();
  }

  async stop(): Promise<void> {
    await this.down({ crash: true });
    await this.dir.remove();
  }
}
