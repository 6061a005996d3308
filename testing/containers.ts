/**
 * Real container clients for end-to-end tests: podman (rootful, daemonless,
 * vfs storage in its own directories) and containerd with `ctr` (a private
 * daemon with its own root, state and socket). Both run as root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { OutputTail, TempDir, requireTool, run, sleep, stopProcess, trackChild, type RunResult } from './tools';

// ---------------------------------------------------------------------------
// registries.conf / hosts.toml writers

export interface MirrorEntry {
  /** What image references start with, e.g. `docker.io`. */
  prefix: string;
  /** The registry the prefix normally resolves to, e.g. `registry-1.docker.io`. */
  location?: string;
  /** Mirror locations tried first, e.g. `127.0.0.1:5000/<org>` (a path prefix is allowed). */
  mirrors: string[];
  /** Plain HTTP to the mirrors (default true). */
  insecure?: boolean;
}

/** A containers-registries.conf(5) (v2) with one `[[registry]]` block per entry. */
export function registriesConf(entries: MirrorEntry[]): string {
  const lines = ['unqualified-search-registries = []', 'short-name-mode = "disabled"', ''];
  for (const e of entries) {
    lines.push('[[registry]]', `prefix = ${JSON.stringify(e.prefix)}`, `location = ${JSON.stringify(e.location ?? e.prefix)}`);
    for (const m of e.mirrors) {
      lines.push('[[registry.mirror]]', `location = ${JSON.stringify(m)}`, `insecure = ${e.insecure ?? true}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** A containers-registries.conf entry that makes a loopback registry plain-HTTP without mirroring. */
export function insecureRegistryConf(host: string): string {
  return registriesConf([]) + `[[registry]]\nlocation = ${JSON.stringify(host)}\ninsecure = true\n`;
}

export interface HostsTomlMirror {
  /** e.g. `http://127.0.0.1:5000/v2/<org>` with `overridePath`, or `http://127.0.0.1:5000`. */
  url: string;
  /** Use the URL's path as is instead of appending `/v2` (containerd `override_path`). */
  overridePath?: boolean;
  capabilities?: Array<'pull' | 'resolve' | 'push'>;
}

/** A containerd `hosts.toml` for one upstream name (`server`) with mirrors tried first. */
export function hostsToml(server: string, mirrors: HostsTomlMirror[]): string {
  const lines = [`server = ${JSON.stringify(server)}`, ''];
  for (const m of mirrors) {
    lines.push(`[host.${JSON.stringify(m.url)}]`);
    lines.push(`  capabilities = ${JSON.stringify(m.capabilities ?? ['pull', 'resolve'])}`);
    if (m.overridePath) lines.push('  override_path = true');
    if (m.url.startsWith('https:')) lines.push('  skip_verify = true');
    lines.push('');
  }
  return lines.join('\n');
}

/**
 * Writes `<hostsDir>/<name>/hosts.toml` (name as ctr resolves it: `docker.io`,
 * or `127.0.0.1:5000` for a direct registry) and returns `hostsDir`.
 */
export async function writeHostsToml(hostsDir: string, name: string, content: string): Promise<string> {
  await mkdir(path.join(hostsDir, name), { recursive: true });
  await writeFile(path.join(hostsDir, name, 'hosts.toml'), content);
  return hostsDir;
}

// ---------------------------------------------------------------------------
// podman

export interface PodmanPullOptions {
  /** `--tls-verify` (default false: plain HTTP and no verification for direct pulls). */
  tlsVerify?: boolean;
  /** `user:password`. */
  creds?: string;
  /** e.g. `linux/arm64`. */
  platform?: string;
  timeoutMs?: number;
}

/** A rootful podman with private vfs storage and its own registries.conf. */
export class Podman {
  readonly root: string;
  readonly runroot: string;
  readonly registriesConfPath: string;

  private constructor(private readonly dir: TempDir) {
    this.root = dir.join('root');
    this.runroot = dir.join('runroot');
    this.registriesConfPath = dir.join('registries.conf');
  }

  /** Creates the directories; `registries` is the registries.conf content (default: no search registries). */
  static async create(registries?: string): Promise<Podman> {
    requireTool('podman');
    const dir = await TempDir.create('entrepot-podman-');
    const p = new Podman(dir);
    await mkdir(p.root, { recursive: true });
    await mkdir(p.runroot, { recursive: true });
    await mkdir(dir.join('tmp'), { recursive: true });
    await writeFile(
      dir.join('storage.conf'),
      `[storage]\ndriver = "vfs"\nrunroot = ${JSON.stringify(p.runroot)}\ngraphroot = ${JSON.stringify(p.root)}\n`,
    );
    await writeFile(dir.join('containers.conf'), '');
    await writeFile(dir.join('auth.json'), '{"auths":{}}');
    await p.setRegistriesConf(registries ?? registriesConf([]));
    return p;
  }

  async setRegistriesConf(content: string): Promise<void> {
    await writeFile(this.registriesConfPath, content);
  }

  /** Runs `podman <global flags> ...args`. */
  run(args: string[], opts: { timeoutMs?: number; allowFailure?: boolean } = {}): Promise<RunResult> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CONTAINERS_REGISTRIES_CONF: this.registriesConfPath,
      CONTAINERS_STORAGE_CONF: this.dir.join('storage.conf'),
      CONTAINERS_CONF: this.dir.join('containers.conf'),
      REGISTRY_AUTH_FILE: this.dir.join('auth.json'),
      TMPDIR: this.dir.join('tmp'),
    };
    const global = [
      '--root', this.root,
      '--runroot', this.runroot,
      '--tmpdir', this.dir.join('libpod-tmp'),
      '--storage-driver', 'vfs',
      '--events-backend', 'file',
      '--cgroup-manager', 'cgroupfs',
    ];
    return run(requireTool('podman'), [...global, ...args], {
      env,
      timeoutMs: opts.timeoutMs ?? 300_000,
      allowFailure: opts.allowFailure,
    });
  }

  /** `podman pull`; returns the local image ID. */
  async pull(ref: string, opts: PodmanPullOptions = {}): Promise<string> {
    const args = ['pull', '--quiet', `--tls-verify=${opts.tlsVerify ?? false}`];
    if (opts.creds) args.push('--creds', opts.creds);
    if (opts.platform) args.push('--platform', opts.platform);
    const res = await this.run([...args, ref], { timeoutMs: opts.timeoutMs });
    return res.stdout.toString('utf8').trim().split('\n').pop() ?? '';
  }

  /**
   * The manifest digest podman recorded for `ref` (from RepoDigests of that
   * repository; podman shares one image between references with equal config,
   * so `.Digest` alone can name another reference's manifest).
   */
  async imageDigest(ref: string): Promise<string> {
    const res = await this.run(['image', 'inspect', ref]);
    const [info] = JSON.parse(res.stdout.toString('utf8')) as Array<{ Digest?: string; RepoDigests?: string[] }>;
    const slash = ref.lastIndexOf('/');
    const at = ref.indexOf('@', slash);
    const colon = ref.indexOf(':', slash);
    const repo = at >= 0 ? ref.slice(0, at) : colon >= 0 ? ref.slice(0, colon) : ref;
    const match = (info.RepoDigests ?? []).find((d) => d.startsWith(`${repo}@`));
    if (match) return match.slice(repo.length + 1);
    return info.Digest ?? '';
  }

  /** Removes every local image. */
  async removeAllImages(): Promise<void> {
    await this.run(['rmi', '--all', '--force'], { allowFailure: true });
  }

  /** Resets storage and removes the directories. */
  async cleanup(): Promise<void> {
    await this.run(['system', 'reset', '--force'], { allowFailure: true, timeoutMs: 60_000 });
    await this.dir.remove();
  }
}

// ---------------------------------------------------------------------------
// containerd + ctr

export interface CtrPullOptions {
  /** Directory with `<name>/hosts.toml` files (`--hosts-dir`). */
  hostsDir?: string;
  /** `--plain-http` for direct pulls from a loopback registry without a hosts dir. */
  plainHttp?: boolean;
  /** `user:password`. */
  user?: string;
  platform?: string;
  allPlatforms?: boolean;
  /** Snapshotter to unpack into (default `native`, which works without overlay mounts). */
  snapshotter?: string;
  timeoutMs?: number;
}

export interface CtrImage {
  ref: string;
  mediaType: string;
  digest: string;
  size: string;
  platforms: string;
}

/** A private containerd daemon with `disabled_plugins = ["io.containerd.grpc.v1.cri"]`. */
export class Containerd {
  readonly socket: string;
  readonly root: string;
  readonly state: string;
  readonly configPath: string;
  /** Default hosts dir of this instance; fill it with `writeHostsToml`. */
  readonly hostsDir: string;
  private child?: ChildProcess;
  private readonly logTail = new OutputTail();

  private constructor(
    private readonly dir: TempDir,
    readonly namespace: string,
  ) {
    this.socket = dir.join('containerd.sock');
    this.root = dir.join('root');
    this.state = dir.join('state');
    this.configPath = dir.join('config.toml');
    this.hostsDir = dir.join('hosts');
  }

  static async start(opts: { namespace?: string; startTimeoutMs?: number } = {}): Promise<Containerd> {
    const bin = requireTool('containerd');
    requireTool('ctr');
    const dir = await TempDir.create('entrepot-containerd-');
    const c = new Containerd(dir, opts.namespace ?? 'test');
    await mkdir(c.root, { recursive: true });
    await mkdir(c.state, { recursive: true });
    await mkdir(c.hostsDir, { recursive: true });
    const config = [
      'version = 2',
      `root = ${JSON.stringify(c.root)}`,
      `state = ${JSON.stringify(c.state)}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '',
      '[grpc]',
      `  address = ${JSON.stringify(c.socket)}`,
      '',
      '[ttrpc]',
      `  address = ${JSON.stringify(`${c.socket}.ttrpc`)}`,
      '',
      '[debug]',
      '  level = "warn"',
      '',
    ].join('\n');
    await writeFile(c.configPath, config);
    const child = trackChild(spawn(bin, ['--config', c.configPath], { stdio: ['ignore', 'pipe', 'pipe'] }));
    c.child = child;
    child.stdout?.on('data', (d: Buffer) => c.logTail.push(d));
    child.stderr?.on('data', (d: Buffer) => c.logTail.push(d));
    const deadline = Date.now() + (opts.startTimeoutMs ?? 20_000);
    for (;;) {
      if (child.exitCode !== null) {
        await dir.remove();
        throw new Error(`containerd exited with code ${child.exitCode}:\n${c.logTail.toString()}`);
      }
      const res = await run(requireTool('ctr'), ['-a', c.socket, 'version'], { allowFailure: true, timeoutMs: 5000 });
      if (res.code === 0) break;
      if (Date.now() > deadline) {
        await c.stop();
        throw new Error(`containerd did not answer on ${c.socket}:\n${c.logTail.toString()}`);
      }
      await sleep(100);
    }
    return c;
  }

  /** Runs `ctr -a SOCK -n NS ...args`. */
  ctr(args: string[], opts: { timeoutMs?: number; allowFailure?: boolean } = {}): Promise<RunResult> {
    return run(requireTool('ctr'), ['-a', this.socket, '-n', this.namespace, ...args], {
      timeoutMs: opts.timeoutMs ?? 300_000,
      allowFailure: opts.allowFailure,
    });
  }

  /** `ctr images pull`; returns the digest of the image's target (manifest or index). */
  async pull(ref: string, opts: CtrPullOptions = {}): Promise<string> {
    const args = ['images', 'pull', '--snapshotter', opts.snapshotter ?? 'native'];
    if (opts.hostsDir) args.push('--hosts-dir', opts.hostsDir);
    if (opts.plainHttp) args.push('--plain-http');
    if (opts.user) args.push('--user', opts.user);
    if (opts.platform) args.push('--platform', opts.platform);
    if (opts.allPlatforms) args.push('--all-platforms');
    await this.ctr([...args, ref], { timeoutMs: opts.timeoutMs });
    const img = (await this.images()).find((i) => i.ref === ref);
    if (!img) throw new Error(`ctr pull ${ref}: image not listed afterwards`);
    return img.digest;
  }

  /** `ctr images ls`, parsed. */
  async images(): Promise<CtrImage[]> {
    const out = (await this.ctr(['images', 'ls'])).stdout.toString('utf8');
    return out
      .split('\n')
      .slice(1)
      .filter((l) => l.trim().length > 0)
      .map((l) => {
        const cols = l.split(/\s+/);
        // REF TYPE DIGEST SIZE(2 tokens: "1.2 MiB") PLATFORMS LABELS
        return { ref: cols[0], mediaType: cols[1], digest: cols[2], size: `${cols[3]} ${cols[4]}`, platforms: cols[5] ?? '' };
      });
  }

  /** Removes an image (and lets the garbage collector drop its content). */
  async removeImage(ref: string): Promise<void> {
    await this.ctr(['images', 'rm', '--sync', ref], { allowFailure: true });
  }

  /** Last lines of the daemon's log. */
  log(): string {
    return this.logTail.toString();
  }

  /** Stops the daemon and removes its directories. */
  async stop(): Promise<void> {
    if (this.child) await stopProcess(this.child, 10_000);
    this.child = undefined;
    await run('umount', ['-R', this.root], { allowFailure: true });
    await this.dir.remove();
  }
}
