/**
 * A private Docker Engine for end-to-end tests: Debian's `docker.io` dockerd
 * (Engine 20.10) run as root with its own data root, exec root, socket and
 * daemon.json, the vfs storage driver and no changes to the host's network
 * (`--iptables=false --ip6tables=false --bridge=none`; containers run with
 * `--network host`). The CLI is `/usr/bin/docker` from the same package (a
 * different `docker` may come first on the PATH), with its own config
 * directory, so `docker login` of one engine never leaks into another.
 *
 * One engine per test file; `stop()` shuts the daemon down (its containerd
 * and shims with it), unmounts whatever it left mounted and removes every
 * directory. Registries on loopback need no `insecure-registries` entry.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import { OutputTail, TempDir, requireTool, run, sleep, stopProcess, trackChild, type RunOptions, type RunResult } from './tools';

export interface DockerEngineOptions {
  /** daemon.json content (e.g. `{'registry-mirrors': [url]}`). */
  daemonConfig?: Record<string, unknown>;
  /** Milliseconds to wait for the daemon's API (default 60000). */
  startTimeoutMs?: number;
}

export interface DockerRunOptions extends RunOptions {
  /** Extra environment on top of the engine's DOCKER_HOST and DOCKER_CONFIG. */
  extraEnv?: Record<string, string>;
}

/** A running private dockerd and a CLI bound to it. */
export class DockerEngine {
  /** `unix:///…/docker.sock`, for DOCKER_HOST. */
  readonly host: string;
  /** The CLI's config directory (DOCKER_CONFIG): `docker login` writes config.json here. */
  readonly cliConfigDir: string;
  private stopped = false;

  private constructor(
    private readonly dir: TempDir,
    private readonly socketPath: string,
    private readonly child: ChildProcess,
    private readonly logTail: OutputTail,
  ) {
    this.host = `unix://${socketPath}`;
    this.cliConfigDir = dir.join('cli');
  }

  static async start(options: DockerEngineOptions = {}): Promise<DockerEngine> {
    const dockerd = requireTool('dockerd');
    requireTool('docker');
    // A short path: the socket path must fit in sun_path (108 bytes), and containerd's sockets live under exec-root.
    const dir = await TempDir.create('ed-');
    const socketPath = dir.join('docker.sock');
    await mkdir(dir.join('cli'), { recursive: true });
    await writeFile(dir.join('daemon.json'), JSON.stringify(options.daemonConfig ?? {}, null, 2));
    const logTail = new OutputTail(32768);
    const child = trackChild(
      spawn(
        dockerd,
        [
          '--data-root', dir.join('data'),
          '--exec-root', dir.join('x'),
          '--host', `unix://${socketPath}`,
          '--pidfile', dir.join('dockerd.pid'),
          '--config-file', dir.join('daemon.json'),
          '--storage-driver', 'vfs',
          '--iptables=false',
          '--ip6tables=false',
          '--bridge=none',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    child.stdout?.on('data', (d: Buffer) => logTail.push(d));
    child.stderr?.on('data', (d: Buffer) => logTail.push(d));
    const engine = new DockerEngine(dir, socketPath, child, logTail);
    try {
      await engine.waitForApi(options.startTimeoutMs ?? 60_000);
      return engine;
    } catch (err) {
      await engine.stop();
      throw err;
    }
  }

  /** The daemon's log so far (its last 32 KiB), for failure messages. */
  log(): string {
    return this.logTail.toString();
  }

  /** Environment for a client of this engine (docker, docker-compose, npm run image). */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...process.env, DOCKER_HOST: this.host, DOCKER_CONFIG: this.cliConfigDir, DOCKER: requireTool('docker'), ...extra };
  }

  /** Runs `/usr/bin/docker ARGS` against this engine; throws on a non-zero exit unless `allowFailure`. */
  docker(args: readonly string[], opts: DockerRunOptions = {}): Promise<RunResult> {
    return run(requireTool('docker'), args, { timeoutMs: 300_000, ...opts, env: this.env(opts.extraEnv) });
  }

  /** `docker login` with `--password-stdin`. */
  async login(registry: string, username: string, password: string): Promise<RunResult> {
    return this.docker(['login', '--username', username, '--password-stdin', registry], { input: password });
  }

  /** `docker pull REF`; returns stdout + stderr and the exit code without throwing. */
  async tryPull(ref: string): Promise<{ code: number; output: string }> {
    const res = await this.docker(['pull', ref], { allowFailure: true });
    return { code: res.code, output: `${res.stdout.toString()}${res.stderr}` };
  }

  /** Pulls and returns the image's repo digest for `ref`'s repository (`sha256:…`). */
  async pull(ref: string): Promise<string> {
    const res = await this.tryPull(ref);
    if (res.code !== 0) throw new Error(`docker pull ${ref} failed (${res.code}):\n${res.output}`);
    const m = /Digest: (sha256:[0-9a-f]{64})/.exec(res.output);
    if (!m) throw new Error(`docker pull ${ref}: no digest in its output:\n${res.output}`);
    return m[1];
  }

  /** The image's `RepoDigests` (`repo@sha256:…`). */
  async repoDigests(ref: string): Promise<string[]> {
    const res = await this.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]);
    return JSON.parse(res.stdout.toString()) as string[];
  }

  /** Removes images (ignoring ones already gone). */
  async removeImages(...refs: string[]): Promise<void> {
    await this.docker(['image', 'rm', '--force', ...refs], { allowFailure: true });
  }

  private async waitForApi(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`dockerd exited (${this.child.exitCode ?? this.child.signalCode}) before its API answered:\n${this.log()}`);
      }
      if (await this.ping()) return;
      if (Date.now() > deadline) throw new Error(`dockerd did not answer on ${this.socketPath} within ${timeoutMs} ms:\n${this.log()}`);
      await sleep(200);
    }
  }

  private ping(): Promise<boolean> {
    return new Promise((resolve) => {
      const req = http.get({ socketPath: this.socketPath, path: '/_ping', timeout: 2000, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
  }

  /**
   * Stops the daemon (SIGTERM: it stops its containers and its containerd),
   * kills what a daemon that had to be killed left behind, unmounts leftovers
   * under this engine's directory and removes it. Safe to call twice.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const containerdPid = await readPid(this.dir.join('x', 'containerd', 'containerd.pid'));
    await stopProcess(this.child, 30_000);
    // Normally gone with dockerd; after a SIGKILL the managed containerd and the shims stay.
    for (const pid of [containerdPid, ...shimPids(this.dir.path)]) {
      if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    await unmountUnder(this.dir.path);
    await this.dir.remove();
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes (containerd shims) whose command line names this engine's directory. */
function shimPids(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(dir) && cmdline.includes('containerd-shim')) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Unmounts (lazily, deepest first) every mount point under `dir`. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((mountPoint): mountPoint is string => Boolean(mountPoint) && mountPoint.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mounts) await run('umount', ['-l', mountPoint], { allowFailure: true });
}
