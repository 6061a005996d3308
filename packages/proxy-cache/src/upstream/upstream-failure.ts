/**
 * How a conversation with an upstream registry failed. Every failure the
 * upstream client throws is an `UpstreamError`: a RegistryError (so the core's
 * one error handler maps it to an OCI response) that also carries an
 * `UpstreamFailure` classification. The cache uses the kind to decide whether
 * stale content may be served; the circuit breaker uses it to count outages.
 *
 * Messages name the upstream host only: never a URL with userinfo, never
 * credentials or tokens.
 */
import { RegistryError } from '@entrepot/registry-core';
import { type ErrorCode, type RegistryErrorOptions } from '../core-types';

/**
 * - `network`: no HTTP answer (refused, reset, DNS, TLS, connection closed mid-body)
 * - `timeout`: connect, response-headers or idle (between body chunks) timeout
 * - `status`: the upstream answered with an unexpected status (5xx, or e.g. 400/416)
 * - `auth`: the upstream (or its token service) refused our credentials or requires some
 * - `ratelimit`: HTTP 429
 * - `notfound`: HTTP 404 for the thing asked for
 * - `protocol`: the upstream answered, but with something we refuse (digest mismatch,
 *   oversized manifest, bad Content-Range, unusable token response, redirect loop)
 * - `loop`: the upstream is this registry itself (our Via token came back)
 * - `circuit-open`: not attempted, the circuit breaker is open
 * - `cancelled`: the caller's AbortSignal fired
 */
export type UpstreamFailureKind =
  | 'network'
  | 'timeout'
  | 'status'
  | 'auth'
  | 'ratelimit'
  | 'notfound'
  | 'protocol'
  | 'loop'
  | 'circuit-open'
  | 'cancelled';

export interface UpstreamFailure {
  readonly kind: UpstreamFailureKind;
  /** host[:port] that failed (the registry, its token service, or a redirect target). */
  readonly host: string;
  /** HTTP status when the upstream answered. */
  readonly status?: number;
  /** `Retry-After` in seconds, when the upstream sent one (429, 503) or the breaker knows it. */
  readonly retryAfterSeconds?: number;
}

/** A RegistryError raised while talking to an upstream, with its classification. */
export class UpstreamError extends RegistryError {
  readonly failure: UpstreamFailure;

  constructor(code: ErrorCode, message: string, failure: UpstreamFailure, options: RegistryErrorOptions = {}) {
    const headers = { ...(options.headers ?? {}) };
    if (failure.retryAfterSeconds !== undefined && headers['Retry-After'] === undefined) {
      headers['Retry-After'] = String(failure.retryAfterSeconds);
    }
    super(code, message, { ...options, headers });
    this.name = 'UpstreamError';
    this.failure = failure;
  }
}

/** The classification of an error thrown by the upstream client, or null for any other error. */
export function upstreamFailureOf(err: unknown): UpstreamFailure | null {
  return err instanceof UpstreamError ? err.failure : null;
}

/**
 * True for failures that say the upstream is down or broken (network, timeout,
 * 5xx): what the circuit breaker counts. 404, 401/403, 429, protocol errors and
 * cancellations mean the upstream is up and answering.
 */
export function isOutage(failure: UpstreamFailure): boolean {
  if (failure.kind === 'network' || failure.kind === 'timeout') return true;
  return failure.kind === 'status' && (failure.status ?? 0) >= 500;
}

/**
 * True when the cache may answer from stale content instead of failing: every
 * failure except "the upstream says it does not exist" and caller cancellation.
 */
export function allowsStaleServe(failure: UpstreamFailure): boolean {
  return failure.kind !== 'notfound' && failure.kind !== 'cancelled';
}

// ---------------------------------------------------------------------------
// Constructors, one per kind, so messages stay uniform.

export function unavailable(kind: UpstreamFailureKind, host: string, message: string, extra: { status?: number; retryAfterSeconds?: number; cause?: unknown } = {}): UpstreamError {
  return new UpstreamError('UNAVAILABLE', message, { kind, host, status: extra.status, retryAfterSeconds: extra.retryAfterSeconds }, { cause: extra.cause });
}

export function statusFailure(host: string, status: number, retryAfterSeconds?: number): UpstreamError {
  const what = status >= 500 ? 'failed' : 'answered unexpectedly';
  return unavailable('status', host, `upstream ${host} ${what} with HTTP ${status}`, { status, retryAfterSeconds });
}

export function rateLimited(host: string, retryAfterSeconds?: number): UpstreamError {
  const when = retryAfterSeconds === undefined ? '' : `; retry after ${retryAfterSeconds} s`;
  return new UpstreamError('TOOMANYREQUESTS', `upstream ${host} is rate limiting our requests (HTTP 429)${when}`, {
    kind: 'ratelimit',
    host,
    status: 429,
    retryAfterSeconds,
  });
}

export function notFound(code: ErrorCode, host: string, what: string): UpstreamError {
  return new UpstreamError(code, `${what} is unknown to upstream ${host}`, { kind: 'notfound', host, status: 404 });
}

/** `withCredentials`: whether credentials were sent (refused) or not (required). */
export function authRefused(host: string, status: number, withCredentials: boolean, service = 'upstream'): UpstreamError {
  const message = withCredentials
    ? `${service} ${host} refused our credentials (HTTP ${status})`
    : `${service} ${host} requires credentials (HTTP ${status}); configure upstream credentials for this cache`;
  return unavailable('auth', host, message, { status });
}

export function protocolFailure(host: string, message: string): UpstreamError {
  return unavailable('protocol', host, `upstream ${host} ${message}`);
}

export function loopDetected(host: string, via: string): UpstreamError {
  return unavailable('loop', host, `upstream ${host} is this registry itself (its response carries our Via token "${via}"); refusing to proxy to ourselves`);
}

export function circuitOpen(host: string, retryAfterSeconds?: number): UpstreamError {
  return unavailable('circuit-open', host, `upstream ${host} is unavailable (circuit open)`, { retryAfterSeconds });
}

export function cancelled(host: string): UpstreamError {
  return unavailable('cancelled', host, `request to upstream ${host} was cancelled`);
}

// ---------------------------------------------------------------------------
// Transport errors (undici and Node socket errors) → classification.

export interface TimeoutSettings {
  connectMs: number;
  headersMs: number;
  idleMs: number;
}

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  EADDRNOTAVAIL: 'address not available',
  UND_ERR_SOCKET: 'connection closed unexpectedly',
  UND_ERR_CLOSED: 'client closed',
  UND_ERR_DESTROYED: 'client closed',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'response shorter than its Content-Length',
};

function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const cause = (err as { cause?: unknown }).cause;
    if (cause !== undefined && cause !== err) return errorCode(cause);
  }
  return '';
}

/**
 * Maps an error from undici (request or body stream) to an UpstreamError.
 * Errors that already are UpstreamErrors pass through; a fired `signal` wins.
 */
export function classifyTransportError(err: unknown, host: string, timeouts: TimeoutSettings, signal?: AbortSignal): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (signal?.aborted) return cancelled(host);
  const code = errorCode(err);
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return unavailable('timeout', host, `upstream ${host} did not accept a connection within ${timeouts.connectMs} ms`, { cause: err });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return unavailable('timeout', host, `upstream ${host} sent no response within ${timeouts.headersMs} ms`, { cause: err });
    case 'UND_ERR_BODY_TIMEOUT':
      return unavailable('timeout', host, `upstream ${host} sent no data for ${timeouts.idleMs} ms`, { cause: err });
    case 'UND_ERR_ABORTED':
    case 'ABORT_ERR':
      return cancelled(host);
    default:
      break;
  }
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL') || code === 'EPROTO') {
    return unavailable('network', host, `upstream ${host} failed the TLS handshake (${code}); set insecure to skip verification`, { cause: err });
  }
  if (code.startsWith('HPE_')) {
    return unavailable('protocol', host, `upstream ${host} sent a malformed HTTP response (${code})`, { cause: err });
  }
  if (err instanceof Error && err.name === 'AbortError') return cancelled(host);
  const what = NETWORK_CODES[code] ?? (code ? code : 'connection failed');
  return unavailable('network', host, `upstream ${host} is unreachable (${what})`, { cause: err });
}
