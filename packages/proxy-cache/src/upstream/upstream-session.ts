/**
 * The authorized, breaker-guarded channel to one upstream registry that the
 * client's operations are built on: URL building under the endpoint, one
 * 401 challenge answered per request (with a single retry), the circuit
 * breaker around each operation, and the mapping of unexpected statuses to
 * UpstreamErrors.
 */
import { RegistryError } from '@entrepot/registry-core';
import type { Clock, Logger, PooledReads } from '../core-types';
import { pullScope } from './auth-challenge';
import { discardBody, readBounded } from './body-stream';
import type { CircuitBreaker } from './circuit-breaker';
import { UpstreamTransport, type TransportResponse, type UpstreamOperation, type UpstreamResponseInfo } from './http-transport';
import { retryAfterSeconds } from './response-headers';
import { UpstreamAuthenticator, type UpstreamCredentials } from './upstream-auth';
import { rateLimited, statusFailure, upstreamFailureOf, type TimeoutSettings, type UpstreamError } from './upstream-failure';

export interface UpstreamSessionOptions {
  /** Where the registry answers, e.g. `https://registry-1.docker.io` or `http://127.0.0.1:15000`. */
  endpoint: URL;
  /** Skip TLS verification, and allow plain http even when the endpoint is https (redirects, token realm). */
  insecure: boolean;
  credentials?: UpstreamCredentials;
  /** Connect, response-headers and idle (between body chunks) timeouts; there is no whole-transfer timeout. */
  timeouts: TimeoutSettings;
  userAgent: string;
  /** Our loop-guard token: sent as `Via: 1.1 <via>`; a response carrying it is refused. */
  via: string;
  clock: Clock;
  logger: Logger;
  /** Called for every upstream response (metrics: status, rate-limit remaining). */
  onResponse?: (info: UpstreamResponseInfo) => void;
  breaker: CircuitBreaker;
  /** Bodies of `pooled` requests arrive in the core's reusable read buffers. */
  pooledReads?: PooledReads;
}

export interface SessionRequest {
  operation: UpstreamOperation;
  method: 'GET' | 'HEAD';
  url: URL;
  /** Repository whose pull scope the request needs; none for `/v2/`. */
  repo?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  highWaterMark?: number;
  /** See TransportRequest.pooled. */
  pooled?: boolean;
}

const VIA_TOKEN = /^[A-Za-z0-9._:-]+$/;

export class UpstreamSession {
  /** host[:port] of the endpoint, as named in messages. */
  readonly host: string;
  readonly endpoint: URL;
  readonly breaker: CircuitBreaker;
  private readonly transport: UpstreamTransport;
  private readonly auth: UpstreamAuthenticator;

  /** Throws INVALID_REQUEST for a non-http(s) endpoint, credentials in the URL, or a malformed Via token. */
  constructor(options: UpstreamSessionOptions) {
    const endpoint = new URL(options.endpoint.href);
    if (endpoint.protocol !== 'https:' && endpoint.protocol !== 'http:') {
      throw new RegistryError('INVALID_REQUEST', `upstream endpoint must be an http(s) URL, not ${endpoint.protocol}`);
    }
    if (endpoint.username !== '' || endpoint.password !== '') {
      throw new RegistryError('INVALID_REQUEST', 'upstream endpoint must not contain credentials; configure them separately');
    }
    if (!VIA_TOKEN.test(options.via)) throw new RegistryError('INVALID_REQUEST', 'via must be a single token (letters, digits, . _ : -)');
    endpoint.search = '';
    endpoint.hash = '';
    this.endpoint = endpoint;
    this.host = endpoint.host;
    this.breaker = options.breaker;
    this.transport = new UpstreamTransport({
      endpoint,
      insecure: options.insecure,
      timeouts: options.timeouts,
      userAgent: options.userAgent,
      via: options.via,
      logger: options.logger,
      onResponse: options.onResponse,
      pooledReads: options.pooledReads,
    });
    this.auth = new UpstreamAuthenticator({
      host: this.host,
      credentials: options.credentials,
      transport: this.transport,
      clock: options.clock,
      logger: options.logger,
    });
  }

  get timeouts(): TimeoutSettings {
    return this.transport.timeouts;
  }

  /** `path` (starting with `/v2/`) under the endpoint. */
  url(path: string): URL {
    const base = this.endpoint.pathname.replace(/\/+$/, '');
    return new URL(`${base}${path}`, this.endpoint.origin);
  }

  /**
   * Runs one operation under the circuit breaker: throws `circuit-open`
   * without calling it while the breaker refuses; settles the permit from the
   * outcome (see CircuitBreaker).
   */
  async guarded<T>(operation: () => Promise<T>): Promise<T> {
    const permit = this.breaker.acquire();
    try {
      const result = await operation();
      permit.success();
      return result;
    } catch (err) {
      permit.settle(upstreamFailureOf(err));
      throw err;
    }
  }

  /**
   * Sends a request authorized for the repository's pull scope: answers one
   * 401 challenge (refreshing a refused token once) and retries once. A final
   * 401/403 is an `auth` failure; any other status is returned as is.
   */
  async send(req: SessionRequest): Promise<TransportResponse> {
    const scope = req.repo === undefined ? undefined : pullScope(req.repo);
    const base = { operation: req.operation, method: req.method, url: req.url, headers: req.headers, signal: req.signal, highWaterMark: req.highWaterMark, pooled: req.pooled };
    const first = await this.auth.authorizationFor(scope, req.signal);
    const res = await this.transport.send({ ...base, authorization: first });
    if (res.status !== 401 && res.status !== 403) return res;
    discardBody(res.body);
    // A 403 is final; a refusal from a redirect target (a CDN) is not ours to answer.
    if (res.status === 403 || res.url.origin !== this.endpoint.origin) throw this.refusal(res);
    const retry = await this.auth.retryAuthorization(res.headers['www-authenticate'], scope, first, req.signal);
    const again = await this.transport.send({ ...base, authorization: retry });
    if (again.status === 401 || again.status === 403) {
      discardBody(again.body);
      throw this.refusal(again);
    }
    return again;
  }

  /** The error for an unexpected status: `ratelimit` for 429, `status` otherwise (the body is discarded). */
  statusError(res: TransportResponse): UpstreamError {
    discardBody(res.body);
    const retryAfter = retryAfterSeconds(res.headers, Date.now());
    if (res.status === 429) return rateLimited(res.host, retryAfter);
    return statusFailure(res.host, res.status, retryAfter);
  }

  /** Reads a small response body of at most `maxBytes` (`protocol` failure beyond). */
  readSmall(res: TransportResponse, maxBytes: number, what: string, signal?: AbortSignal): Promise<Buffer> {
    return readBounded(res.body, maxBytes, what, { host: res.host, timeouts: this.transport.timeouts, signal });
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  async destroy(): Promise<void> {
    await this.transport.destroy();
  }

  private refusal(res: TransportResponse): UpstreamError {
    if (res.host === this.host) return this.auth.refused(res.status);
    return statusFailure(res.host, res.status);
  }
}
