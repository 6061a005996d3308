/**
 * Test support for the upstream client: small REAL servers on 127.0.0.x for
 * the faults a real registry cannot produce (black holes, resets, 429, 503,
 * trickles, redirects to another host, a Via loop), a manual clock, and a
 * logger that records everything so tests can prove secrets are never logged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import type { Readable } from 'node:stream';
import type { Clock } from '../../../registry-core/src/services/clock';
import type { Logger } from '../../../registry-core/src/logging/logger';
import { UpstreamClient, type UpstreamClientOptions } from '../../src/upstream';

export interface RecordedRequest {
  method: string;
  /** Path with query string. */
  url: string;
  headers: http.IncomingHttpHeaders;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A real HTTP server whose handler a test sets; records every request. */
export class TestServer {
  readonly requests: RecordedRequest[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: http.Server,
    readonly host: string,
    readonly port: number,
    public handler: Handler,
  ) {}

  static async start(handler: Handler, host = '127.0.0.1'): Promise<TestServer> {
    // eslint-disable-next-line prefer-const -- assigned once the server it closes over exists
    let self: TestServer | undefined;
    const server = http.createServer((req, res) => {
      if (!self) return;
      self.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      self.handler(req, res);
    });
    server.on('connection', (socket) => {
      self?.sockets.add(socket);
      socket.on('close', () => self?.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const port = (server.address() as net.AddressInfo).port;
    self = new TestServer(server, host, port, handler);
    return self;
  }

  get origin(): string {
    return `http://${this.host}:${this.port}`;
  }

  get authority(): string {
    return `${this.host}:${this.port}`;
  }

  count(filter: (r: RecordedRequest) => boolean = () => true): number {
    return this.requests.filter(filter).length;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Serves `data` honouring `Range: bytes=N-` unless told otherwise. */
export function serveBlob(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer, honorRange = true): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m && honorRange) {
    const start = Number(m[1]);
    res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
    res.end(data.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': data.length, 'content-type': 'application/octet-stream' });
  res.end(req.method === 'HEAD' ? undefined : data);
}

/** A TCP server that accepts connections and never says anything. */
export class SilentTcpServer {
  private constructor(
    private readonly server: net.Server,
    private readonly sockets: Set<net.Socket>,
    readonly port: number,
  ) {}

  static async start(): Promise<SilentTcpServer> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return new SilentTcpServer(server, sockets, (server.address() as net.AddressInfo).port);
  }

  /** Connections currently open. */
  get connections(): number {
    return this.sockets.size;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A port whose listener never accepts: a child process listens with backlog 1
 * and is stopped (SIGSTOP); a few connections fill its accept queue, after
 * which the kernel drops new SYNs, so connecting hangs like a black-holed host.
 */
export class NeverAcceptingPort {
  private readonly fillers: net.Socket[] = [];
  private constructor(private readonly child: ChildProcess, readonly port: number) {}

  static async start(): Promise<NeverAcceptingPort> {
    const script =
      "const s=require('net').createServer(()=>{});" +
      "s.listen({port:0,host:'127.0.0.1',backlog:1},()=>{process.stdout.write(String(s.address().port)+'\\n')});";
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      child.once('exit', (code) => reject(new Error(`listener exited with ${code}`)));
    });
    child.kill('SIGSTOP');
    const self = new NeverAcceptingPort(child, port);
    for (let i = 0; i < 5; i++) {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.on('error', () => undefined);
      self.fillers.push(s);
    }
    await sleep(200);
    return self;
  }

  /** True when a fresh connection attempt does not complete within `ms` (the black hole works). */
  async connectHangs(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect({ port: this.port, host: '127.0.0.1' });
      const timer = setTimeout(() => {
        s.destroy();
        resolve(true);
      }, ms);
      s.once('connect', () => {
        clearTimeout(timer);
        s.destroy();
        resolve(false);
      });
      s.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
  }

  async stop(): Promise<void> {
    for (const s of this.fillers) s.destroy();
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** A clock the test moves by hand (starts at the real time). */
export class ManualClock implements Clock {
  private t = Date.now();
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface LogRecord {
  level: string;
  message: string;
  meta: Record<string, unknown>;
}

/** A Logger that keeps every record (children share the list). */
export class RecordingLogger implements Logger {
  constructor(
    readonly records: LogRecord[] = [],
    private readonly base: Record<string, unknown> = {},
  ) {}
  error(message: string, meta: Record<string, unknown> = {}): void {
    this.records.push({ level: 'error', message, meta: { ...this.base, ...meta } });
  }
  warn(message: string, meta: Record<string, unknown> = {}): void {
    this.records.push({ level: 'warn', message, meta: { ...this.base, ...meta } });
  }
  info(message: string, meta: Record<string, unknown> = {}): void {
    this.records.push({ level: 'info', message, meta: { ...this.base, ...meta } });
  }
  debug(message: string, meta: Record<string, unknown> = {}): void {
    this.records.push({ level: 'debug', message, meta: { ...this.base, ...meta } });
  }
  child(meta: Record<string, unknown>): Logger {
    return new RecordingLogger(this.records, { ...this.base, ...meta });
  }
  /** Everything logged, as one string, to search for secrets. */
  dump(): string {
    return JSON.stringify(this.records);
  }
}

export const TEST_TIMEOUTS = { connectMs: 1000, headersMs: 1500, idleMs: 1500 };

/** A client for `endpoint` with test defaults (plain http allowed, short timeouts, recording logger). */
export function makeClient(endpoint: string, overrides: Partial<UpstreamClientOptions> = {}): UpstreamClient {
  return new UpstreamClient({
    endpoint: new URL(endpoint),
    insecure: true,
    timeouts: TEST_TIMEOUTS,
    userAgent: 'entrepot-test/1.0',
    via: 'entrepot-test-node',
    clock: new ManualClock(),
    logger: new RecordingLogger(),
    ...overrides,
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Reads a stream to the end. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads until the stream fails; returns what arrived and the error (or null when it ended). */
export async function readUntilError(stream: Readable): Promise<{ data: Buffer; error: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return { data: Buffer.concat(chunks), error: null };
  } catch (error) {
    return { data: Buffer.concat(chunks), error };
  }
}

/** Awaits a promise expected to reject and returns the rejection (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/**
 * One fault server for a whole test file, answering 404 until a test installs a
 * handler; its request log is cleared before each test.
 */
export function sharedTestServer(): { server(): TestServer; useHandler(handler: Handler): void } {
  let server: TestServer | null = null;
  beforeAll(async () => {
    server = await TestServer.start((_req, res) => res.writeHead(404).end());
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(() => {
    if (server) server.requests.length = 0;
  });
  const current = (): TestServer => {
    if (!server) throw new Error('test server used outside a test');
    return server;
  };
  return { server: current, useHandler: (handler) => (current().handler = handler) };
}
