/**
 * A small real HTTP relay between Entrepot (or a client) and a real upstream
 * registry that slows response bodies down the way a CDN or a long link does:
 *
 * - `total`: every response together gets `bytesPerSecond` (one slow link);
 * - `per-connection`: each response gets `bytesPerSecond` of its own (a CDN
 *   that caps what one connection carries).
 *
 * A rate of 0 passes bodies through unthrottled; `throttle()` changes the rate
 * of responses already streaming too. `blackHole` makes the upstream accept
 * requests and never answer them (a hung upstream); `delayMs` holds each
 * request that long before passing it on; `holdWholeBlobs` holds blob GETs
 * without a Range header until `releaseWholeBlobs()` (a slow whole download); `addHeaders` adds headers to every
 * response (e.g. `RateLimit-Remaining`).
 *
 * `ignoreRange` strips Range headers, so the upstream answers 200 with the
 * whole blob (an upstream that does not honour Range). Every request is logged
 * with its Range header, status, the body bytes relayed and when it started
 * and ended, and the relay notes how many blob bodies were streaming at once.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ThrottleMode = 'total' | 'per-connection';

export interface RelayedRequest {
  method: string;
  path: string;
  range?: string;
  status: number;
  /** Body bytes relayed to the client (fewer than the upstream's when the client went away). */
  bytes: number;
  startedAt: number;
  endedAt: number;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
const SLICE = 64 * 1024;
/** A relay that fell behind (a late timer, a busy machine) may catch up by this much, so the average rate holds. */
const CATCH_UP_MS = 250;

export class ThrottleRelay {
  private readonly log: RelayedRequest[] = [];
  private sharedCursor = 0;
  private streaming = 0;
  /** Most blob bodies that were streaming at the same moment. */
  maxConcurrentBodies = 0;
  private rangedBytesOpen = 0;
  /** Most bytes asked for by ranged blob bodies streaming at the same moment (each counted whole while it streams). */
  maxConcurrentRangedBytes = 0;
  ignoreRange = false;
  /** Cuts (TCP reset) the first response to a range starting at `rangeStart` after `afterBytes`, once. */
  cutOnce: { rangeStart: number; afterBytes: number } | null = null;
  /** Requests are logged and held open without an answer. */
  blackHole = false;
  /** Each request reaches the upstream this long after it arrived (a slow upstream answer). */
  delayMs = 0;
  /** Headers added to every response. */
  addHeaders: Record<string, string> = {};
  /** Blob GETs without a Range header wait (unanswered) until `releaseWholeBlobs()`. */
  holdWholeBlobs = false;
  private readonly heldWhole: Array<() => void> = [];
  /** Response body bytes sent to clients so far, all requests together. */
  delivered = 0;

  private constructor(
    private readonly server: http.Server,
    private readonly upstream: URL,
    private readonly mode: ThrottleMode,
    private bytesPerSecond: number,
  ) {}

  /** `bytesPerSecond` 0: unthrottled until `throttle()` says otherwise. */
  static async start(upstreamUrl: string, mode: ThrottleMode, bytesPerSecond: number): Promise<ThrottleRelay> {
    const server = http.createServer();
    const relay = new ThrottleRelay(server, new URL(upstreamUrl), mode, bytesPerSecond);
    server.on('request', (req, res) => relay.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** 0: no limit. Applies to responses already streaming too. */
  throttle(bytesPerSecond: number): void {
    this.bytesPerSecond = bytesPerSecond;
  }

  /** Passes on the blob GETs held by `holdWholeBlobs`, and stops holding them. */
  releaseWholeBlobs(): void {
    this.holdWholeBlobs = false;
    for (const forward of this.heldWhole.splice(0)) forward();
  }

  requests(): RelayedRequest[] {
    return [...this.log];
  }

  resetLog(): void {
    this.log.length = 0;
    this.maxConcurrentBodies = 0;
    this.maxConcurrentRangedBytes = 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || name === 'host') continue;
      if (name === 'range' && this.ignoreRange) continue;
      headers[name] = value;
    }
    const entry: RelayedRequest = { method: req.method ?? 'GET', path: (req.url ?? '').split('?')[0], range: req.headers.range, status: 0, bytes: 0, startedAt: Date.now(), endedAt: 0 };
    this.log.push(entry);
    res.on('close', () => {
      if (!entry.endedAt) entry.endedAt = Date.now();
    });
    if (this.blackHole) {
      req.resume();
      return;
    }
    const delay = this.delayMs;
    const hold = this.holdWholeBlobs && entry.method === 'GET' && /\/blobs\/sha256:/.test(entry.path) && entry.range === undefined;
    if (delay > 0 || hold) req.pause();
    const forward = (): void => this.forward(req, res, headers, entry);
    if (hold) this.heldWhole.push(forward);
    else if (delay > 0) setTimeout(forward, delay);
    else forward();
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, headers: http.OutgoingHttpHeaders, entry: RelayedRequest): void {
    if (res.destroyed) return;
    const out = http.request({ host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers }, (up) => {
      entry.status = up.statusCode ?? 0;
      const back: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(up.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) back[name] = value;
      Object.assign(back, this.addHeaders);
      res.writeHead(up.statusCode ?? 502, back);
      void this.pump(up, res, entry);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  }

  /** Relays the body in slices, each sent no earlier than the throttle allows. */
  private async pump(up: http.IncomingMessage, res: http.ServerResponse, entry: RelayedRequest): Promise<void> {
    const isBody = /\/blobs\//.test(entry.path) && entry.method === 'GET';
    if (isBody) this.maxConcurrentBodies = Math.max(this.maxConcurrentBodies, ++this.streaming);
    const rangedBytes = isBody ? rangeLength(entry.range) : 0;
    this.rangedBytesOpen += rangedBytes;
    this.maxConcurrentRangedBytes = Math.max(this.maxConcurrentRangedBytes, this.rangedBytesOpen);
    let ownCursor = Date.now();
    const cut = this.cutOnce !== null && entry.range?.startsWith(`bytes=${this.cutOnce.rangeStart}-`) ? this.cutOnce : null;
    if (cut) this.cutOnce = null;
    try {
      for await (const chunk of up as AsyncIterable<Buffer>) {
        for (let at = 0; at < chunk.length; at += SLICE) {
          if (res.destroyed) return;
          const slice = chunk.subarray(at, at + SLICE);
          const now = Date.now();
          const rate = this.bytesPerSecond;
          const cost = rate > 0 ? (slice.length / rate) * 1000 : 0;
          let sendAt: number;
          if (rate <= 0) {
            sendAt = now;
            ownCursor = now;
          } else if (this.mode === 'total') {
            sendAt = Math.max(now - CATCH_UP_MS, this.sharedCursor);
            this.sharedCursor = sendAt + cost;
          } else {
            sendAt = Math.max(now - CATCH_UP_MS, ownCursor);
            ownCursor = sendAt + cost;
          }
          if (sendAt > now) await new Promise((resolve) => setTimeout(resolve, sendAt - now));
          if (res.destroyed) return;
          if (cut && entry.bytes + slice.length > cut.afterBytes) {
            res.socket?.resetAndDestroy();
            return;
          }
          entry.bytes += slice.length;
          this.delivered += slice.length;
          if (!res.write(slice)) await drained(res);
        }
      }
      res.end();
    } catch {
      res.destroy();
    } finally {
      up.destroy();
      if (isBody) this.streaming--;
      this.rangedBytesOpen -= rangedBytes;
      entry.endedAt = Date.now();
    }
  }
}

/** Bytes a `bytes=a-b` range asks for; 0 without a header or for an open-ended range. */
function rangeLength(range: string | undefined): number {
  const match = /^bytes=(\d+)-(\d+)$/.exec(range ?? '');
  return match ? Number(match[2]) - Number(match[1]) + 1 : 0;
}

/** Resolves when the response can take more, or is gone. */
function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
