/**
 * A real upstream registry for integration tests: CNCF Distribution 2.8
 * (`/usr/bin/docker-registry`) run as a child process on a loopback port, with
 * anonymous, htpasswd (Basic) or Docker token authentication, optionally in
 * Distribution's own pull-through proxy mode.
 *
 * The registry's access log (Apache combined format on stdout) is parsed into
 * `requests()`, so tests can count what reached the upstream.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, randomBytes, randomUUID, sign, timingSafeEqual, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { S3ConnectionInfo } from './s3-server';
import {
  OutputTail,
  TempDir,
  freePort,
  requireTool,
  run,
  selfSignedCertificate,
  sleep,
  stopProcess,
  trackChild,
  waitForHttp,
} from './tools';

// ---------------------------------------------------------------------------
// Access log

/** One line of the registry's access log. */
export interface UpstreamRequest {
  method: string;
  /** Request path without the query string, e.g. `/v2/library/app/manifests/1.0`. */
  path: string;
  /** Query string without the leading `?`, or `''`. */
  query: string;
  status: number;
  /** Response body bytes as logged (0 for `-`). */
  bytes: number;
  userAgent: string;
  /** Time as logged, e.g. `28/Nov/2026:18:50:00 +0000`. */
  time: string;
}

/**
 * Distribution 2.8 writes its access log to stdout in Apache combined format:
 * `127.0.0.1 - - [28/Nov/2026:18:50:00 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"`
 */
const ACCESS_LOG_LINE = /^\S+ \S+ \S+ \[([^\]]+)\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-) "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)"/;

/** Parses one access-log line; `undefined` for any other line. */
export function parseAccessLogLine(line: string): UpstreamRequest | undefined {
  const m = ACCESS_LOG_LINE.exec(line);
  if (!m) return undefined;
  const uri = m[3];
  const q = uri.indexOf('?');
  return {
    time: m[1],
    method: m[2],
    path: q >= 0 ? uri.slice(0, q) : uri,
    query: q >= 0 ? uri.slice(q + 1) : '',
    status: Number(m[4]),
    bytes: m[5] === '-' ? 0 : Number(m[5]),
    userAgent: m[6],
  };
}

// ---------------------------------------------------------------------------
// Token server (Docker registry token authentication)

/** One `access` entry of a registry token. */
export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

/** A request that reached the token endpoint. */
export interface TokenRequest {
  method: 'GET' | 'POST';
  /** Account named by the credentials (Basic user or OAuth2 username), if any. */
  account?: string;
  /** True when the request carried valid credentials. */
  authenticated: boolean;
  /** Raw `scope` values as requested. */
  scopes: string[];
  service: string;
  status: number;
  /** What the issued token granted (empty when refused). */
  granted: TokenAccess[];
}

export interface TokenServerOptions {
  /** Accounts accepted by the token endpoint (username → password). */
  users?: Record<string, string>;
  /** Whether callers without credentials get `pull` (default false: they get a token with no access). */
  anonymousPull?: boolean;
  service?: string;
  issuer?: string;
  /** Lifetime of issued tokens, default 300 s. */
  ttlSeconds?: number;
  /** Custom policy: the actions granted for one requested scope entry. Default: all requested actions for a valid account. */
  authorize?: (request: { account?: string; type: string; name: string; actions: string[] }) => string[];
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Parses `repository:library/app:pull,push` (the name itself may contain `:` only in a port, which repositories do not have). */
export function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  const type = scope.slice(0, first).replace(/\(.*\)$/, '');
  return {
    type,
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter((a) => a.length > 0),
  };
}

/**
 * A Docker-style token endpoint living in the test process. Tokens are RS256
 * JWTs whose header carries the signing certificate in `x5c`; the registry
 * trusts that certificate through `auth.token.rootcertbundle`.
 */
export class TokenServer {
  readonly service: string;
  readonly issuer: string;
  /** PEM file of the self-signed certificate (the registry's rootcertbundle). */
  readonly certPath: string;
  private readonly log: TokenRequest[] = [];

  private constructor(
    private readonly server: http.Server,
    readonly port: number,
    private readonly key: KeyObject,
    private readonly certDerBase64: string,
    certPath: string,
    private readonly opts: Required<Pick<TokenServerOptions, 'users' | 'anonymousPull' | 'ttlSeconds'>> & TokenServerOptions,
  ) {
    this.service = opts.service ?? 'entrepot-upstream';
    this.issuer = opts.issuer ?? 'entrepot-test-token-issuer';
    this.certPath = certPath;
  }

  /** The realm to put in `auth.token.realm`, e.g. `http://127.0.0.1:P/token`. */
  get realm(): string {
    return `http://127.0.0.1:${this.port}/token`;
  }

  /** Starts a token server; key and certificate are written into `dir`. */
  static async start(dir: string, options: TokenServerOptions = {}): Promise<TokenServer> {
    const keyPath = `${dir}/token-key.pem`;
    const certPath = `${dir}/token-cert.pem`;
    await run(requireTool('openssl'), [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
      '-subj', '/CN=entrepot-test-token-signer',
      '-keyout', keyPath, '-out', certPath,
    ]);
    const key = createPrivateKey(await readFile(keyPath));
    const pem = await readFile(certPath, 'utf8');
    const der = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
    const opts = {
      ...options,
      users: options.users ?? {},
      anonymousPull: options.anonymousPull ?? false,
      ttlSeconds: options.ttlSeconds ?? 300,
    };
    // eslint-disable-next-line prefer-const -- assigned once the server it closes over exists
    let self: TokenServer | undefined;
    const server = http.createServer((req, res) => {
      if (!self) {
        res.writeHead(503).end();
        return;
      }
      self.handle(req, res).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    self = new TokenServer(server, port, key, der, certPath, opts);
    return self;
  }

  /** Signs a registry token for the given access (usable by tests to craft their own). */
  issueToken(access: TokenAccess[], subject = '', ttlSeconds = this.opts.ttlSeconds): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [this.certDerBase64] };
    const claims = {
      iss: this.issuer,
      sub: subject,
      aud: this.service,
      exp: now + ttlSeconds,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), this.key);
    return `${signingInput}.${base64url(signature)}`;
  }

  /** Requests that reached the token endpoint since start or `reset()`. */
  requests(): TokenRequest[] {
    return [...this.log];
  }

  /** Number of token requests since start or `reset()`. */
  get requestCount(): number {
    return this.log.length;
  }

  reset(): void {
    this.log.length = 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async readBody(req: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/token' || (req.method !== 'GET' && req.method !== 'POST')) {
      res.writeHead(404).end();
      return;
    }
    let params = url.searchParams;
    let user: string | undefined;
    let password: string | undefined;
    if (req.method === 'POST') {
      // OAuth2 password / refresh_token grant, as containerd sends it when it has credentials.
      params = new URLSearchParams(await this.readBody(req));
      if (params.get('grant_type') === 'password') {
        user = params.get('username') ?? undefined;
        password = params.get('password') ?? '';
      }
    } else {
      const basic = parseBasic(req.headers.authorization);
      if (basic) {
        user = basic.user;
        password = basic.password;
      }
    }
    const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s.length > 0);
    const service = params.get('service') ?? '';
    const entry: TokenRequest = {
      method: req.method,
      account: user,
      authenticated: false,
      scopes,
      service,
      status: 200,
      granted: [],
    };
    this.log.push(entry);

    if (user !== undefined) {
      const expected = this.opts.users[user];
      if (expected === undefined || !safeEqual(expected, password ?? '')) {
        entry.status = 401;
        res
          .writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="token"' })
          .end(JSON.stringify({ details: 'incorrect username or password' }));
        return;
      }
      entry.authenticated = true;
    }
    if (service !== '' && service !== this.service) {
      entry.status = 400;
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ details: `unknown service ${service}` }));
      return;
    }

    const granted: TokenAccess[] = [];
    for (const raw of scopes) {
      const scope = parseScope(raw);
      if (!scope) continue;
      let actions: string[];
      if (this.opts.authorize) {
        actions = this.opts.authorize({ account: entry.authenticated ? user : undefined, ...scope });
      } else if (entry.authenticated) {
        actions = scope.actions;
      } else {
        actions = this.opts.anonymousPull && scope.type === 'repository' ? scope.actions.filter((a) => a === 'pull') : [];
      }
      granted.push({ type: scope.type, name: scope.name, actions });
    }
    entry.granted = granted;
    const token = this.issueToken(granted, entry.authenticated ? (user ?? '') : '');
    const issuedAt = new Date().toISOString();
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({ token, access_token: token, expires_in: this.opts.ttlSeconds, issued_at: issuedAt }),
    );
  }
}

// ---------------------------------------------------------------------------
// The registry process

export type UpstreamAuth =
  | { mode: 'anonymous' }
  | { mode: 'htpasswd'; username?: string; password?: string }
  | ({ mode: 'token'; username?: string; password?: string } & Omit<TokenServerOptions, 'users'>);

export interface UpstreamRegistryOptions {
  /** Default `{mode: 'anonymous'}`. */
  auth?: UpstreamAuth;
  /** Run Distribution as a pull-through cache of `remoteurl` (it panics if that is down at start). */
  proxy?: { remoteurl: string; username?: string; password?: string };
  /** Fixed response headers (`http.headers`), e.g. `{'RateLimit-Remaining': '97;w=21600'}`. */
  headers?: Record<string, string | string[]>;
  /** Port to listen on (default: a free one). */
  port?: number;
  /** Allow DELETE (default true). */
  deleteEnabled?: boolean;
  /** Distribution's own log level on stderr (default `error`). */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Milliseconds to wait for readiness (default 20000). */
  startTimeoutMs?: number;
  /** Store blobs and manifests in this S3 bucket (Distribution's s3 driver, served through the registry, no redirects) instead of the filesystem. */
  s3?: S3ConnectionInfo;
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1, made at start (default false: plain HTTP). */
  tls?: boolean;
}

export interface Credentials {
  username: string;
  password: string;
}

/** Distribution's `http.tls` section for a new self-signed certificate. */
async function selfSignedFiles(dir: string): Promise<{ certificate: string; key: string }> {
  const { certFile, keyFile } = await selfSignedCertificate(dir, 'tls');
  return { certificate: certFile, key: keyFile };
}

/** A running CNCF Distribution instance on 127.0.0.1. */
export class UpstreamRegistry {
  /** `127.0.0.1:PORT`, for image references. */
  readonly host: string;
  /** `http://127.0.0.1:PORT` (`https://` with `tls`). */
  readonly url: string;
  /** The registry's storage root (its own per instance). */
  readonly dataDir: string;
  readonly configPath: string;
  /** Credentials for htpasswd and token modes. */
  readonly credentials?: Credentials;
  /** The token server in token mode. */
  readonly tokenServer?: TokenServer;

  private child?: ChildProcess;
  private readonly log: UpstreamRequest[] = [];
  private pending = '';
  private lastLineAt = 0;
  private readonly stderrTail = new OutputTail();
  /** The CA of a TLS S3 endpoint, as Go's trusted roots (`SSL_CERT_FILE`): the s3 driver refuses `AWS_CA_BUNDLE` with its own transport. */
  private s3CaFile?: string;

  private constructor(
    private readonly dir: TempDir,
    readonly port: number,
    readonly mode: UpstreamAuth['mode'],
    credentials: Credentials | undefined,
    tokenServer: TokenServer | undefined,
    private readonly startTimeoutMs: number,
    tls: boolean,
  ) {
    this.host = `127.0.0.1:${port}`;
    this.url = `${tls ? 'https' : 'http'}://${this.host}`;
    this.dataDir = dir.join('data');
    this.configPath = dir.join('config.yml');
    this.credentials = credentials;
    this.tokenServer = tokenServer;
  }

  static async start(options: UpstreamRegistryOptions = {}): Promise<UpstreamRegistry> {
    const registryBin = requireTool('docker-registry');
    const auth: UpstreamAuth = options.auth ?? { mode: 'anonymous' };
    const dir = await TempDir.create('entrepot-upstream-');
    try {
      await mkdir(dir.join('data'), { recursive: true });
      const port = options.port ?? (await freePort());
      let credentials: Credentials | undefined;
      let tokenServer: TokenServer | undefined;
      let authConfig: Record<string, unknown> | undefined;

      if (auth.mode === 'htpasswd' || auth.mode === 'token') {
        credentials = {
          username: auth.username ?? `user${randomBytes(3).toString('hex')}`,
          password: auth.password ?? randomBytes(12).toString('base64url'),
        };
      }
      if (auth.mode === 'htpasswd' && credentials) {
        const htpasswdFile = dir.join('htpasswd');
        await run(requireTool('htpasswd'), ['-Bbc', htpasswdFile, credentials.username, credentials.password]);
        authConfig = { htpasswd: { realm: 'upstream', path: htpasswdFile } };
      } else if (auth.mode === 'token' && credentials) {
        const { mode: _mode, username: _u, password: _p, ...tokenOpts } = auth;
        tokenServer = await TokenServer.start(dir.path, {
          ...tokenOpts,
          users: { [credentials.username]: credentials.password },
        });
        authConfig = {
          token: {
            realm: tokenServer.realm,
            service: tokenServer.service,
            issuer: tokenServer.issuer,
            rootcertbundle: tokenServer.certPath,
          },
        };
      }

      const headers: Record<string, string[]> = {};
      for (const [name, value] of Object.entries(options.headers ?? {})) {
        headers[name] = Array.isArray(value) ? value : [value];
      }
      const config: Record<string, unknown> = {
        version: '0.1',
        log: { level: options.logLevel ?? 'error', accesslog: { disabled: false } },
        storage: {
          ...(options.s3
            ? {
                s3: {
                  accesskey: options.s3.accessKey,
                  secretkey: options.s3.secretKey,
                  region: options.s3.region,
                  regionendpoint: `${options.s3.useSSL ? 'https' : 'http'}://${options.s3.endPoint}:${options.s3.port}`,
                  bucket: options.s3.bucket,
                  secure: options.s3.useSSL,
                  v4auth: true,
                  rootdirectory: '/distribution',
                },
                redirect: { disable: true },
              }
            : { filesystem: { rootdirectory: dir.join('data') } }),
          delete: { enabled: options.deleteEnabled ?? true },
          maintenance: { uploadpurging: { enabled: false } },
        },
        http: { addr: `127.0.0.1:${port}`, headers, ...(options.tls ? { tls: await selfSignedFiles(dir.path) } : {}) },
      };
      if (authConfig) config.auth = authConfig;
      if (options.proxy) config.proxy = { ...options.proxy };
      // JSON is valid YAML, and Distribution's YAML parser reads it.
      await writeFile(dir.join('config.yml'), JSON.stringify(config, null, 2));

      const reg = new UpstreamRegistry(dir, port, auth.mode, credentials, tokenServer, options.startTimeoutMs ?? 20000, options.tls ?? false);
      reg.s3CaFile = options.s3?.caFile;
      await reg.spawnProcess(registryBin);
      return reg;
    } catch (err) {
      await dir.remove();
      throw err;
    }
  }

  /** `127.0.0.1:PORT/<repo>:<tag>` or `...@digest`. */
  ref(repository: string, tagOrDigest: string): string {
    return /^sha(256|512):/.test(tagOrDigest) ? `${this.host}/${repository}@${tagOrDigest}` : `${this.host}/${repository}:${tagOrDigest}`;
  }

  /** `user:password` for `--creds`, or undefined in anonymous mode. */
  get creds(): string | undefined {
    return this.credentials ? `${this.credentials.username}:${this.credentials.password}` : undefined;
  }

  /** Requests logged since start or the last `resetLog()`. */
  requests(): UpstreamRequest[] {
    return [...this.log];
  }

  /** Forgets the requests logged so far; a request still in flight is logged (and kept) when it completes. */
  resetLog(): void {
    this.log.length = 0;
  }

  /**
   * Waits until no new access-log line has arrived for `quietMs` (default 150 ms),
   * then returns `requests()`. The log line of a request is written when its
   * handler returns, which can be just after the client saw the response.
   */
  async settledRequests(quietMs = 150, timeoutMs = 5000): Promise<UpstreamRequest[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await sleep(Math.min(50, quietMs));
      if (Date.now() - this.lastLineAt >= quietMs || Date.now() >= deadline) return this.requests();
    }
  }

  /** Counts logged requests matching method and/or path (string: exact, RegExp: test). */
  count(filter: { method?: string; path?: string | RegExp; status?: number } = {}): number {
    return this.log.filter(
      (r) =>
        (filter.method === undefined || r.method === filter.method) &&
        (filter.status === undefined || r.status === filter.status) &&
        (filter.path === undefined || (typeof filter.path === 'string' ? r.path === filter.path : filter.path.test(r.path))),
    ).length;
  }

  /** Last lines Distribution wrote on stderr (its error log), for diagnostics. */
  stderr(): string {
    return this.stderrTail.toString();
  }

  /** True while the registry process runs. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops the process but keeps its data (simulates an upstream outage). */
  async down(): Promise<void> {
    if (this.child) await stopProcess(this.child);
    this.child = undefined;
  }

  /** Starts the process again on the same port with the same data after `down()`. */
  async up(): Promise<void> {
    if (this.running) return;
    await this.spawnProcess(requireTool('docker-registry'));
  }

  /** Kills the registry (and token server) and removes its directories. */
  async stop(): Promise<void> {
    await this.down();
    if (this.tokenServer) await this.tokenServer.stop();
    await this.dir.remove();
  }

  private async spawnProcess(bin: string): Promise<void> {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      // AWS_* would configure the s3 driver's SDK (a CA bundle it cannot load for a plain-HTTP endpoint).
      if (!k.startsWith('REGISTRY_') && !k.startsWith('OTEL_') && !k.startsWith('AWS_')) env[k] = v;
    }
    if (this.s3CaFile) env.SSL_CERT_FILE = this.s3CaFile;
    const child = trackChild(spawn(bin, ['serve', this.configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    this.child = child;
    this.pending = '';
    child.stdout?.on('data', (chunk: Buffer) => this.onStdout(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.stderrTail.push(chunk));
    try {
      await waitForHttp(`${this.url}/v2/`, this.startTimeoutMs, { process: child, intervalMs: 50 });
    } catch (err) {
      await stopProcess(child);
      throw new Error(`docker-registry did not start: ${(err as Error).message}\n${this.stderrTail.toString()}`);
    }
    // The readiness probes are not test traffic.
    await sleep(20);
    this.log.length = 0;
  }

  private onStdout(chunk: Buffer): void {
    this.pending += chunk.toString('utf8');
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      const parsed = parseAccessLogLine(line);
      if (parsed) {
        this.log.push(parsed);
        this.lastLineAt = Date.now();
      }
    }
  }
}
