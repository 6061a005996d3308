/**
 * One HTTP exchange with an upstream (or its token service, or the CDN it
 * redirects to), over one undici Agent per client:
 *
 * - timeouts: connect, response headers, and idle between body chunks —
 *   deliberately no whole-transfer timeout, so a large layer on a slow link
 *   completes;
 * - redirects (301/302/303/307/308) are followed, at most `maxRedirects`
 *   hops; the Authorization header is dropped as soon as a hop leaves the
 *   origin it was meant for (Docker Hub sends blobs to a CDN);
 * - no downgrade to plain http unless the endpoint itself is http or
 *   `insecure` is set (insecure also skips TLS verification);
 * - loop guard: every request says `Via: 1.1 <via>`; a response carrying our
 *   own token means the upstream is ourselves, and is refused;
 * - every response is reported (status, RateLimit-Remaining) to `onResponse`.
 *
 * Errors are UpstreamErrors (see upstream-failure.ts); the caller interprets
 * statuses.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { Logger, PooledReads } from '../core-types';
import { discardBody } from './body-stream';
import { headerValue, rateLimitRemaining, viaHasToken } from './response-headers';
import {
  classifyTransportError,
  loopDetected,
  protocolFailure,
  type TimeoutSettings,
  type UpstreamFailureKind,
} from './upstream-failure';

/** What a request is for; a low-cardinality label for metrics. */
export type UpstreamOperation = 'ping' | 'manifest' | 'blob' | 'tags' | 'referrers' | 'token';

/** Reported for every upstream response (and, with status 0, for requests that got none). */
export interface UpstreamResponseInfo {
  method: string;
  /** Request path without the query string. */
  path: string;
  /** HTTP status; 0 when no response arrived (see `failure`). */
  status: number;
  /** host[:port] that answered. */
  host: string;
  operation: UpstreamOperation;
  /** From `RateLimit-Remaining` (`97;w=21600` → 97), when sent. */
  rateLimitRemaining?: number;
  failure?: UpstreamFailureKind;
}

export interface TransportOptions {
  /** The configured upstream endpoint (decides whether plain http is acceptable). */
  endpoint: URL;
  insecure: boolean;
  timeouts: TimeoutSettings;
  userAgent: string;
  /** Our Via token (e.g. the registry's hostname), sent and checked for loops. */
  via: string;
  logger: Logger;
  onResponse?: (info: UpstreamResponseInfo) => void;
  /** Default 5. */
  maxRedirects?: number;
  /** Connections whose large bodies (`pooled` requests) arrive in the core's reusable buffers; without it, undici's own. */
  pooledReads?: PooledReads;
}

export interface TransportRequest {
  operation: UpstreamOperation;
  method: 'GET' | 'HEAD';
  url: URL;
  headers?: Record<string, string>;
  /** Sent to the request's origin only; dropped once a redirect leaves it. */
  authorization?: string;
  signal?: AbortSignal;
  /** Body buffering (default 64 KiB); blobs use more. */
  highWaterMark?: number;
  /** The body arrives in the core's reusable buffers, each chunk to be recycled (blobs); needs `pooledReads`. */
  pooled?: boolean;
}

/** undici's body stream, or a recycling one for `pooled` requests. */
export type ResponseBody = Readable;

interface Exchanged {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: ResponseBody;
}

export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: ResponseBody;
  /** Final URL, after redirects. */
  url: URL;
  /** host[:port] that answered (the CDN after a redirect). */
  host: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Errors after which an idempotent request is retried once: a reused keep-alive connection the server had closed. */
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

export class UpstreamTransport {
  private readonly agent: Dispatcher;
  /**
   * Blob bodies only: its plain-HTTP sockets read into the core's pool buffers,
   * which small answers (manifests, tokens) would hold without handing back.
   */
  private readonly pooled?: { reads: PooledReads; agent: Dispatcher };
  private readonly maxRedirects: number;

  constructor(private readonly options: TransportOptions) {
    const { timeouts, insecure } = options;
    this.agent = new Agent({
      connect: { timeout: timeouts.connectMs, rejectUnauthorized: !insecure },
      headersTimeout: timeouts.headersMs,
      bodyTimeout: timeouts.idleMs,
    });
    const reads = options.pooledReads;
    if (reads) {
      this.pooled = { reads, agent: reads.agent({ timeouts: { connectMs: timeouts.connectMs, headersMs: timeouts.headersMs, bodyIdleMs: timeouts.idleMs }, rejectUnauthorized: !insecure }) };
    }
    this.maxRedirects = options.maxRedirects ?? 5;
  }

  get timeouts(): TimeoutSettings {
    return this.options.timeouts;
  }

  /** Whether requests to `url` are acceptable (https, or plain http when allowed). */
  allowsUrl(url: URL): boolean {
    if (url.protocol === 'https:') return true;
    if (url.protocol !== 'http:') return false;
    return this.options.insecure || this.options.endpoint.protocol === 'http:';
  }

  /**
   * Sends the request and follows redirects. Resolves with the final response
   * whatever its status; the caller owns (and must consume or discard) its body.
   * Rejects with an UpstreamError (network, timeout, loop, protocol, cancelled).
   */
  async send(req: TransportRequest): Promise<TransportResponse> {
    let url = req.url;
    let method = req.method;
    let authorization = req.authorization;
    for (let hop = 0; ; hop++) {
      if (!this.allowsUrl(url)) {
        throw protocolFailure(req.url.host, `sent us to ${url.protocol}//${url.host}, which is not allowed (plain http needs insecure)`);
      }
      const res = await this.exchange(req, method, url, authorization);
      const location = headerValue(res.headers, 'location');
      if (!REDIRECTS.has(res.statusCode) || location === undefined) {
        return { status: res.statusCode, headers: res.headers, body: res.body, url, host: url.host };
      }
      discardBody(res.body);
      if (hop >= this.maxRedirects) throw protocolFailure(req.url.host, `redirected more than ${this.maxRedirects} times`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw protocolFailure(url.host, 'sent a redirect to an invalid URL');
      }
      // Credentials are for the origin they were issued for, never for a CDN or another host.
      if (next.origin !== url.origin) authorization = undefined;
      if (res.statusCode === 303) method = 'GET';
      this.options.logger.debug('upstream redirect', { operation: req.operation, from: url.host, to: next.host, status: res.statusCode });
      url = next;
    }
  }

  /** Waits for in-flight requests to finish, then closes every connection. */
  async close(): Promise<void> {
    await Promise.all([this.agent.close(), this.pooled?.agent.close()]);
  }

  /** Closes every connection now, failing in-flight requests. */
  async destroy(): Promise<void> {
    await Promise.all([this.agent.destroy(), this.pooled?.agent.destroy()]);
  }

  private async exchange(req: TransportRequest, method: 'GET' | 'HEAD', url: URL, authorization: string | undefined): Promise<Exchanged> {
    const headers: Record<string, string> = {
      ...(req.headers ?? {}),
      'user-agent': this.options.userAgent,
      via: `1.1 ${this.options.via}`,
    };
    if (authorization !== undefined) headers.authorization = authorization;
    const path = `${url.pathname}${url.search}`;
    const pooled = req.pooled ? this.pooled : undefined;
    let res: Exchanged;
    for (let attempt = 0; ; attempt++) {
      try {
        res = pooled
          ? await pooled.reads.request(pooled.agent, { origin: url.origin, path, method, headers }, req.signal)
          : await this.agent.request({ origin: url.origin, path, method, headers, signal: req.signal, highWaterMark: req.highWaterMark });
        break;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (attempt === 0 && typeof code === 'string' && STALE_CONNECTION.has(code) && !req.signal?.aborted) {
          this.options.logger.debug('upstream connection reset before a response; retrying once', { host: url.host, code });
          continue;
        }
        const failure = classifyTransportError(err, url.host, this.options.timeouts, req.signal);
        this.report({ method, path: url.pathname, status: 0, host: url.host, operation: req.operation, failure: failure.failure.kind });
        throw failure;
      }
    }
    const remaining = rateLimitRemaining(res.headers);
    this.report({
      method,
      path: url.pathname,
      status: res.statusCode,
      host: url.host,
      operation: req.operation,
      ...(remaining === undefined ? {} : { rateLimitRemaining: remaining }),
    });
    this.options.logger.debug('upstream response', { operation: req.operation, method, host: url.host, path: url.pathname, status: res.statusCode });
    if (viaHasToken(headerValue(res.headers, 'via'), this.options.via)) {
      discardBody(res.body);
      throw loopDetected(url.host, this.options.via);
    }
    return res;
  }

  private report(info: UpstreamResponseInfo): void {
    if (!this.options.onResponse) return;
    try {
      this.options.onResponse(info);
    } catch (err) {
      this.options.logger.warn('upstream onResponse hook failed', { error: err instanceof Error ? err.message : String(err) });
    }
  }
}
