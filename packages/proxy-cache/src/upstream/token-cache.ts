/**
 * Bearer tokens of one upstream, cached per key (realm + service + scope)
 * until shortly before they expire, with one shared in-flight fetch per key:
 * N concurrent requests that need the same token cause one token request.
 *
 * Time comes from the injected clock. Tokens are never logged.
 */
import type { Clock } from '../core-types';

export interface IssuedToken {
  token: string;
  /** Clock time (ms) after which the token is no longer used. */
  expiresAt: number;
}

/** Token lifetime when the token service sends no usable `expires_in` (the Docker token spec's default). */
export const DEFAULT_TOKEN_LIFETIME_S = 60;

/**
 * When a token obtained by a fetch that started at `fetchStartedAt` stops
 * being used: `expires_in` (default 60 s) after it was issued, minus a margin
 * of a tenth of the lifetime (at most 30 s) so that a request never leaves with
 * a token about to expire.
 *
 * The issue time is `issued_at` when the token service sent one that is
 * earlier than our fetch (e.g. a token service that hands out a cached
 * token) and not so old that our clocks evidently disagree; otherwise the
 * start of our fetch, which is never later than the real issue time.
 */
export function tokenExpiry(fetchStartedAt: number, expiresInSeconds: number | undefined, issuedAt: string | undefined): number {
  const lifetimeMs = (expiresInSeconds !== undefined && Number.isFinite(expiresInSeconds) && expiresInSeconds > 0 ? expiresInSeconds : DEFAULT_TOKEN_LIFETIME_S) * 1000;
  let issued = fetchStartedAt;
  if (issuedAt !== undefined) {
    const t = Date.parse(issuedAt);
    // Earlier than our request but still valid by our clock: trust it. Otherwise assume skew.
    if (!Number.isNaN(t) && t < fetchStartedAt && t + lifetimeMs > fetchStartedAt) issued = t;
  }
  const margin = Math.min(30_000, lifetimeMs / 10);
  return issued + lifetimeMs - margin;
}

/** Resolves like `promise`, or rejects with the signal's reason when it fires first. */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error('aborted');
  err.name = 'AbortError';
  return err;
}

export class TokenCache {
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly inflight = new Map<string, Promise<IssuedToken>>();

  constructor(
    private readonly clock: Clock,
    /** Upper bound on cached entries (expired ones are swept first). */
    private readonly maxEntries = 10_000,
  ) {}

  /** A cached token that is still usable, without fetching. */
  peek(key: string): string | undefined {
    const entry = this.tokens.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.tokens.delete(key);
      return undefined;
    }
    return entry.token;
  }

  /**
   * The cached token for `key`, or the result of `fetch()`: started once and
   * shared with every concurrent caller of the same key. `signal` only stops
   * this caller from waiting; the shared fetch goes on for the others.
   * Rejects with the fetch's error (nothing is cached then).
   */
  async get(key: string, fetch: () => Promise<IssuedToken>, signal?: AbortSignal): Promise<string> {
    const cached = this.peek(key);
    if (cached !== undefined) return cached;
    let pending = this.inflight.get(key);
    if (!pending) {
      const started = fetch().then((issued) => {
        if (issued.expiresAt > this.clock.now()) this.store(key, issued);
        return issued;
      });
      pending = started.finally(() => {
        if (this.inflight.get(key) === pending) this.inflight.delete(key);
      });
      // The waiters handle the rejection; this keeps an abandoned fetch from being "unhandled".
      pending.catch(() => undefined);
      this.inflight.set(key, pending);
    }
    return (await raceSignal(pending, signal)).token;
  }

  /**
   * Forgets `token` for `key` (the upstream refused it). A different token that
   * a concurrent caller already fetched is kept, so that N requests failing
   * with the same old token cause one refresh. Returns whether it was dropped.
   */
  invalidate(key: string, token: string): boolean {
    const entry = this.tokens.get(key);
    if (!entry || entry.token !== token) return false;
    this.tokens.delete(key);
    return true;
  }

  /** Number of cached tokens (expired ones may still be counted until swept). */
  get size(): number {
    return this.tokens.size;
  }

  clear(): void {
    this.tokens.clear();
  }

  private store(key: string, issued: IssuedToken): void {
    this.tokens.delete(key);
    this.tokens.set(key, issued);
    if (this.tokens.size <= this.maxEntries) return;
    const now = this.clock.now();
    for (const [k, v] of this.tokens) if (v.expiresAt <= now) this.tokens.delete(k);
    // Still too many: drop the oldest insertions.
    for (const k of this.tokens.keys()) {
      if (this.tokens.size <= this.maxEntries) break;
      this.tokens.delete(k);
    }
  }
}
