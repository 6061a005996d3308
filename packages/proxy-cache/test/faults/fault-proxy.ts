/**
 * A small real HTTP reverse proxy placed between Entrepot and a real upstream
 * registry, whose behaviour can be switched while a test runs, to produce the
 * faults a healthy registry never does (R-OFFLINE, SPEC §6 fault matrix):
 *
 * - `pass`: forwards everything unchanged;
 * - `reset`: cuts blob bodies with a TCP reset just before byte `atByte` of the
 *   blob (an absolute offset, so a resumed Range request starting past it goes
 *   through), `times` times or on every attempt;
 * - `corrupt`: flips one byte of blob bodies (at absolute offset `atByte`), keeping their length;
 * - `trickle`: sends response bodies `bytesPerTick` bytes every `tickMs`;
 * - `status`: answers matching requests itself with a status (429, 503, 401…)
 *   and headers such as Retry-After, without asking the upstream;
 * - `blackhole`: accepts TCP connections and requests but never answers;
 * - `refuse`: stops listening, so connections are refused.
 *
 * `ignoreRange` (orthogonal to the mode) strips Range headers, so the upstream
 * answers 200 with the whole blob. Every request that reaches the proxy over
 * HTTP is logged (method, path, Range) for the tests to count.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'reset'; atByte: number; times?: number }
  | { kind: 'corrupt'; atByte?: number }
  | { kind: 'trickle'; bytesPerTick: number; tickMs: number }
  | { kind: 'status'; status: number; headers?: Record<string, string>; paths?: RegExp }
  | { kind: 'blackhole' }
  | { kind: 'refuse' };

export interface ProxiedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** The Range header the client sent, if any. */
  range?: string;
  /** What the client was answered (0 when it was black-holed or the proxy failed). */
  status: number;
}

const BLOB_PATH = /^\/v2\/.+\/blobs\/sha256:[a-f0-9]{64}$/;
/** Hop-by-hop headers a proxy must not forward. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

export class FaultProxy {
  /** Stripped from requests in every mode, so the upstream answers whole bodies. */
  ignoreRange = false;
  private mode: FaultMode = { kind: 'pass' };
  private readonly log: ProxiedRequest[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly http: http.Server;
  private readonly upstreamAgent = new http.Agent({ keepAlive: true });
  private listener: net.Server | null = null;
  private acceptedConnections = 0;

  private constructor(
    private readonly upstream: URL,
    readonly port: number,
  ) {
    this.http = http.createServer((req, res) => this.handle(req, res));
  }

  /** Starts a proxy on a free loopback port in front of `upstreamUrl` (e.g. `http://127.0.0.1:15000`). */
  static async start(upstreamUrl: string): Promise<FaultProxy> {
    const port = await new Promise<number>((resolve, reject) => {
      const probe = net.createServer();
      probe.once('error', reject);
      probe.listen(0, '127.0.0.1', () => {
        const { port: p } = probe.address() as AddressInfo;
        probe.close(() => resolve(p));
      });
    });
    const proxy = new FaultProxy(new URL(upstreamUrl), port);
    await proxy.listen();
    return proxy;
  }

  /** `http://127.0.0.1:PORT`, for `upstream_endpoint`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** `127.0.0.1:PORT`, as the upstream is named in Entrepot's messages. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** TCP connections accepted since start (black-holed ones included). */
  get connections(): number {
    return this.acceptedConnections;
  }

  /** Switches the behaviour for requests from now on (connections in a black hole stay there). */
  async set(mode: FaultMode): Promise<void> {
    const was = this.mode.kind;
    this.mode = mode;
    if (mode.kind === 'refuse' && was !== 'refuse') {
      await this.unlisten();
    } else if (mode.kind !== 'refuse' && was === 'refuse') {
      await this.listen();
    }
    if (was === 'blackhole' && mode.kind !== 'blackhole') this.dropAll();
  }

  /** Requests seen since start or `resetLog()`. */
  requests(): ProxiedRequest[] {
    return [...this.log];
  }

  resetLog(): void {
    this.log.length = 0;
  }

  /** Requests matching method, path (string: exact; RegExp: test) and whether they carried a Range. */
  count(filter: { method?: string; path?: string | RegExp; range?: boolean } = {}): number {
    return this.log.filter(
      (r) =>
        (filter.method === undefined || r.method === filter.method) &&
        (filter.path === undefined || (typeof filter.path === 'string' ? r.path === filter.path : filter.path.test(r.path))) &&
        (filter.range === undefined || (r.range !== undefined) === filter.range),
    ).length;
  }

  /** Number of requests per `METHOD /path`, e.g. `{'GET /v2/library/app/manifests/v1': 2}`. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of this.log) counts[`${r.method} ${r.path}`] = (counts[`${r.method} ${r.path}`] ?? 0) + 1;
    return counts;
  }

  async stop(): Promise<void> {
    await this.unlisten();
    this.upstreamAgent.destroy();
  }

  private async listen(): Promise<void> {
    const listener = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.listener = listener;
  }

  private async unlisten(): Promise<void> {
    const listener = this.listener;
    this.listener = null;
    this.dropAll();
    if (listener) await new Promise<void>((resolve) => listener.close(() => resolve()));
  }

  private dropAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private accept(socket: net.Socket): void {
    this.acceptedConnections++;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    // A black hole: the connection is accepted, nothing is ever read or answered.
    if (this.mode.kind === 'blackhole') return;
    this.http.emit('connection', socket);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const entry: ProxiedRequest = { method: req.method ?? 'GET', path: url.pathname, status: 0 };
    if (req.headers.range !== undefined) entry.range = req.headers.range;
    this.log.push(entry);
    const mode = this.mode;
    // Requests on kept-alive connections fall into the black hole too.
    if (mode.kind === 'blackhole' || mode.kind === 'refuse') return;
    if (mode.kind === 'status' && (mode.paths === undefined || mode.paths.test(url.pathname))) {
      entry.status = mode.status;
      const code = mode.status === 429 ? 'TOOMANYREQUESTS' : mode.status === 401 ? 'UNAUTHORIZED' : 'UNAVAILABLE';
      const body = JSON.stringify({ errors: [{ code, message: `fault proxy answered ${mode.status}`, detail: null }] });
      res.writeHead(mode.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(mode.headers ?? {}) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const headers = forwardable(req.headers);
    if (this.ignoreRange) delete headers.range;
    const upstreamReq = http.request(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers, agent: this.upstreamAgent },
      (upRes) => {
        entry.status = upRes.statusCode ?? 0;
        this.relay(req, upRes, res, mode).catch(() => {
          res.destroy();
          upRes.destroy();
        });
      },
    );
    upstreamReq.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.once('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  }

  /** Sends the upstream's answer on, applying the body faults of `mode`. */
  private async relay(req: http.IncomingMessage, upRes: http.IncomingMessage, res: http.ServerResponse, mode: FaultMode): Promise<void> {
    const status = upRes.statusCode ?? 502;
    res.writeHead(status, forwardable(upRes.headers));
    res.flushHeaders();
    const isBlobBody = req.method === 'GET' && (status === 200 || status === 206) && BLOB_PATH.test(new URL(req.url ?? '/', 'http://proxy').pathname);
    let offset = 0;
    if (status === 206) {
      const m = /bytes\s+(\d+)-/.exec(String(upRes.headers['content-range'] ?? ''));
      offset = m ? Number(m[1]) : 0;
    }
    for await (const raw of upRes as AsyncIterable<Buffer>) {
      if (res.destroyed) {
        upRes.destroy();
        return;
      }
      let chunk = raw;
      const end = offset + chunk.length;
      if (isBlobBody && mode.kind === 'corrupt') {
        const at = mode.atByte ?? 1;
        if (at >= offset && at < end) {
          chunk = Buffer.from(chunk);
          chunk[at - offset] ^= 0xff;
        }
      }
      if (isBlobBody && mode.kind === 'reset' && (mode.times === undefined || mode.times > 0) && mode.atByte < end) {
        if (mode.times !== undefined) mode.times--;
        await this.write(res, chunk.subarray(0, Math.max(0, mode.atByte - offset)));
        upRes.destroy();
        res.socket?.resetAndDestroy();
        return;
      }
      if (mode.kind === 'trickle') {
        for (let i = 0; i < chunk.length; i += mode.bytesPerTick) {
          await this.write(res, chunk.subarray(i, i + mode.bytesPerTick));
          await sleep(mode.tickMs);
        }
      } else {
        await this.write(res, chunk);
      }
      offset = end;
    }
    res.end();
  }

  /** Writes with backpressure; resolves once the data is handed to the socket. */
  private write(res: http.ServerResponse, data: Buffer): Promise<void> {
    if (data.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      res.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }
}
