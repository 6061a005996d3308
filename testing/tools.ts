/**
 * Paths of the external tools that the integration tests drive, plus small
 * process, port and temp-directory helpers shared by the other harnesses.
 *
 * Every tool is installed or built by `scripts/ci/setup.sh`; a test that
 * needs one calls `requireTool(name)` first so a missing install fails with a
 * message that says what to run.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** Directory where setup.sh caches the Go-built test tools (outside any clone); follows ENTREPOT_TOOLS_DIR like the script. */
export const TOOLS_CACHE_BIN = path.join(process.env.ENTREPOT_TOOLS_DIR ?? '/var/cache/entrepot-tools', 'bin');

export const TOOL_PATHS = {
  /** CNCF Distribution 2.8 (Debian package docker-registry). */
  'docker-registry': '/usr/bin/docker-registry',
  htpasswd: '/usr/bin/htpasswd',
  skopeo: '/usr/bin/skopeo',
  podman: '/usr/bin/podman',
  containerd: '/usr/bin/containerd',
  ctr: '/usr/bin/ctr',
  nginx: '/usr/sbin/nginx',
  chromium: '/usr/bin/chromium',
  wrk: '/usr/bin/wrk',
  jq: '/usr/bin/jq',
  curl: '/usr/bin/curl',
  openssl: '/usr/bin/openssl',
  /** Docker Engine 20.10 (Debian package docker.io); tests start their own daemon. */
  dockerd: '/usr/sbin/dockerd',
  /** The Docker CLI of the same package (another `docker` may come first on the PATH). */
  docker: '/usr/bin/docker',
  /** Compose v1 (Debian package docker-compose). */
  'docker-compose': '/usr/bin/docker-compose',
  /** Assembles the local base image where the official Node image cannot be pulled. */
  debootstrap: '/usr/sbin/debootstrap',
  /** Helm v4 (Go, built by setup.sh). */
  helm: path.join(TOOLS_CACHE_BIN, 'helm'),
  /** OCI distribution-spec conformance runner (Go, built by setup.sh). */
  'oci-conformance': path.join(TOOLS_CACHE_BIN, 'oci-conformance'),
  /** SeaweedFS `weed` binary; its S3 gateway is the S3-compatible test server. */
  weed: path.join(TOOLS_CACHE_BIN, 'weed'),
  /** Clair v4 vulnerability scanner and its CLI (Go, built by setup.sh). */
  clair: path.join(TOOLS_CACHE_BIN, 'clair'),
  clairctl: path.join(TOOLS_CACHE_BIN, 'clairctl'),
  /** PostgreSQL client (Debian postgresql-client): creates and drops Clair's test databases. */
  psql: '/usr/bin/psql',
  /** ORAS CLI: attaches and discovers referrers (Go, built by setup.sh). */
  oras: path.join(TOOLS_CACHE_BIN, 'oras'),
  /** sigstore cosign: key-pair signing and verification (Go, built by setup.sh). */
  cosign: path.join(TOOLS_CACHE_BIN, 'cosign'),
} as const;

export type ToolName = keyof typeof TOOL_PATHS;

/** Absolute path of a tool, without checking that it exists. */
export function toolPath(name: ToolName): string {
  return TOOL_PATHS[name];
}

/** True when the tool exists and is executable. */
export function hasTool(name: ToolName): boolean {
  try {
    accessSync(TOOL_PATHS[name], fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Returns the tool's path, or throws an error that names the setup script. */
export function requireTool(name: ToolName): string {
  const p = TOOL_PATHS[name];
  if (!hasTool(name)) {
    throw new Error(
      `test tool "${name}" is missing (expected an executable at ${p}); ` +
        'run `bash scripts/ci/setup.sh` as root from the repository root to install and build the test tools',
    );
  }
  return p;
}

/** Ports handed out by this process, so two quick calls never return the same one. */
const handedOut = new Set<number>();

/** A TCP port on 127.0.0.1 that was free when asked. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr !== null ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    // Leave room for tools that derive a second port (e.g. gRPC = port + 10000).
    if (port > 0 && port < 55535 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: could not find a free port');
}

/** Several distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  return ports;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `condition()` holds (polling, at most every 50 ms); fails the test after `timeoutMs`. */
export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let interval = 10;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(interval);
    interval = Math.min(interval * 2, 50);
  }
}

export interface WaitForHttpOptions {
  /** Which status codes count as ready; default: any HTTP response. */
  accept?: (status: number) => boolean;
  /** Delay between attempts, default 100 ms. */
  intervalMs?: number;
  /** Fails fast when this child process exits while waiting. */
  process?: ChildProcess;
}

/** One GET; resolves with the status code, rejects on connection errors. */
export function httpStatus(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve, reject) => {
    // A readiness probe: a test server's self-signed certificate is not what it checks.
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Polls `url` until it answers (see `accept`), or throws after `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs: number, opts: WaitForHttpOptions = {}): Promise<number> {
  const accept = opts.accept ?? (() => true);
  const interval = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  for (;;) {
    if (opts.process && opts.process.exitCode !== null) {
      throw new Error(`waitForHttp(${url}): process exited with code ${opts.process.exitCode}`);
    }
    try {
      const status = await httpStatus(url, Math.min(2000, Math.max(200, deadline - Date.now())));
      if (accept(status)) return status;
      last = `HTTP ${status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() >= deadline) throw new Error(`waitForHttp(${url}): not ready after ${timeoutMs} ms (last: ${last})`);
    await sleep(interval);
  }
}

/** Polls a TCP port until it accepts connections. */
export async function waitForPort(port: number, timeoutMs: number, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect({ port, host });
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() >= deadline) throw new Error(`waitForPort(${host}:${port}): not listening after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** A temporary directory, removed by `remove()`. */
export class TempDir {
  private constructor(readonly path: string) {}

  static async create(prefix = 'entrepot-test-'): Promise<TempDir> {
    return new TempDir(await mkdtemp(path.join(os.tmpdir(), prefix)));
  }

  /** Path inside the directory. */
  join(...parts: string[]): string {
    return path.join(this.path, ...parts);
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true, maxRetries: 3 });
  }
}

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string | Buffer;
  timeoutMs?: number;
  /** Do not throw on a non-zero exit code. */
  allowFailure?: boolean;
}

/**
 * Makes a self-signed certificate for 127.0.0.1 (being its own issuer, it is
 * also the CA clients trust) as `<name>-cert.pem` and `<name>-key.pem` in `dir`.
 */
export async function selfSignedCertificate(dir: string, name: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = path.join(dir, `${name}-cert.pem`);
  const keyFile = path.join(dir, `${name}-key.pem`);
  await run(requireTool('openssl'), [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', keyFile, '-out', certFile,
  ]);
  return { certFile, keyFile };
}

/** Runs a command to completion; throws with its stderr on failure (unless allowFailure). */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] };
    const child = spawn(cmd, [...args], spawnOpts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    }
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const result: RunResult = { code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') };
      if (result.code !== 0 && !opts.allowFailure) {
        const why = signal ? `signal ${signal}` : `exit code ${result.code}`;
        reject(new Error(`${cmd} ${args.join(' ')} failed (${why}):\n${result.stderr.trim()}`));
        return;
      }
      resolve(result);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Long-running children started by the harnesses; killed if the test process exits without stopping them. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Registers a server process so it is SIGKILLed when the Node process exits
 * (a crashed or aborted test run then leaves no orphan servers behind).
 */
export function trackChild(child: ChildProcess): ChildProcess {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of liveChildren) {
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
    });
  }
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

/** Keeps the last `maxBytes` of a stream's output, for error messages. */
export class OutputTail {
  private text = '';
  constructor(private readonly maxBytes = 16384) {}
  push(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > this.maxBytes) this.text = this.text.slice(-this.maxBytes);
  }
  toString(): string {
    return this.text;
  }
}
