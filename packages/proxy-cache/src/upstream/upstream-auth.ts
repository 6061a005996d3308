/**
 * Authentication towards one upstream registry: answers its challenges
 * (Basic, or the Docker token flow for Bearer) with the cache org's
 * credentials, or anonymously when none are configured.
 *
 * The challenge is learnt from the first 401 and remembered, so later
 * requests are authorized up front: with Bearer, one token request per scope
 * per token lifetime (tokens cached in a TokenCache, concurrent requests share
 * one fetch); with Basic, the credentials are simply sent.
 *
 * Credentials and tokens never appear in messages or logs; credentials are
 * never sent over plain http unless the endpoint itself is http or insecure.
 */
import type { Clock, Logger } from '../core-types';
import { parseWwwAuthenticate, selectChallenge, tokenRequestUrl, type UpstreamChallenge } from './auth-challenge';
import { readBounded, discardBody } from './body-stream';
import type { UpstreamTransport } from './http-transport';
import { retryAfterSeconds } from './response-headers';
import { TokenCache, tokenExpiry, type IssuedToken } from './token-cache';
import { authRefused, protocolFailure, rateLimited, statusFailure, type UpstreamError } from './upstream-failure';

export interface UpstreamCredentials {
  username: string;
  password: string;
}

export interface UpstreamAuthOptions {
  /** host[:port] of the registry, for messages. */
  host: string;
  credentials?: UpstreamCredentials;
  transport: UpstreamTransport;
  clock: Clock;
  logger: Logger;
  /** Shared cache, if the caller keeps one; otherwise the authenticator has its own. */
  tokens?: TokenCache;
}

/** Token responses are small JSON documents; anything bigger is refused. */
const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;

export class UpstreamAuthenticator {
  private challenge: UpstreamChallenge | null = null;
  private readonly tokens: TokenCache;

  constructor(private readonly options: UpstreamAuthOptions) {
    this.tokens = options.tokens ?? new TokenCache(options.clock);
  }

  /** The scheme learnt from the upstream so far, or null before its first challenge. */
  get scheme(): 'basic' | 'bearer' | null {
    return this.challenge?.scheme ?? null;
  }

  /**
   * The Authorization header for a request needing `scope` (e.g.
   * `repository:library/alpine:pull`, or undefined for `/v2/`), or undefined
   * when the upstream has not challenged us yet or we have nothing to send.
   * May fetch a token (shared with concurrent callers).
   */
  async authorizationFor(scope: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const challenge = this.challenge;
    if (challenge === null) return undefined;
    if (challenge.scheme === 'basic') return this.basicHeader();
    const token = await this.tokens.get(this.tokenKey(challenge, scope), () => this.fetchToken(challenge, scope), signal);
    return `Bearer ${token}`;
  }

  /**
   * After a 401 to a request that carried `sent` (or nothing): learns the
   * challenge and returns the Authorization to retry with, once. A refused
   * Bearer token is dropped from the cache first, so the retry uses a fresh
   * one (shared with concurrent requests refused with the same token).
   *
   * Throws an `auth` UpstreamError when there is nothing better to send:
   * Basic credentials already refused, none configured, or an unusable challenge.
   */
  async retryAuthorization(wwwAuthenticate: string | string[] | undefined, scope: string | undefined, sent: string | undefined, signal?: AbortSignal): Promise<string> {
    const challenge = selectChallenge(parseWwwAuthenticate(wwwAuthenticate));
    if (challenge === null) throw this.refused(401);
    this.challenge = challenge;
    if (challenge.scheme === 'basic') {
      const basic = this.basicHeader();
      if (basic === undefined || sent === basic) throw this.refused(401);
      return basic;
    }
    const key = this.tokenKey(challenge, scope);
    if (sent !== undefined && sent.startsWith('Bearer ')) this.tokens.invalidate(key, sent.slice('Bearer '.length));
    const token = await this.tokens.get(key, () => this.fetchToken(challenge, scope), signal);
    return `Bearer ${token}`;
  }

  /** The error for a final 401/403: credentials refused, or required but not configured. */
  refused(status: number): UpstreamError {
    return authRefused(this.options.host, status, this.options.credentials !== undefined);
  }

  /** Forgets the learnt challenge and cached tokens (e.g. after a credentials change). */
  reset(): void {
    this.challenge = null;
    this.tokens.clear();
  }

  private basicHeader(): string | undefined {
    const creds = this.options.credentials;
    if (!creds) return undefined;
    return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
  }

  private tokenKey(challenge: { realm: string; service?: string }, scope: string | undefined): string {
    return `${challenge.realm}\u0000${challenge.service ?? ''}\u0000${scope ?? ''}`;
  }

  /**
   * Docker token flow: GET realm?service=…&scope=… with Basic credentials when
   * configured. Accepts `token` or `access_token`, `expires_in`, `issued_at`.
   */
  private async fetchToken(challenge: { realm: string; service?: string }, scope: string | undefined): Promise<IssuedToken> {
    const { transport, clock, logger } = this.options;
    const url = tokenRequestUrl(challenge, scope);
    const host = url.host;
    if (!transport.allowsUrl(url)) {
      throw protocolFailure(this.options.host, `names a token service on ${url.protocol}//${host}, which is not allowed (plain http needs insecure)`);
    }
    const authorization = this.basicHeader();
    const startedAt = clock.now();
    // No caller signal: the fetch is shared, and bounded by the transport's timeouts.
    const res = await transport.send({ operation: 'token', method: 'GET', url, headers: { accept: 'application/json' }, authorization });
    if (res.status === 401 || res.status === 403) {
      discardBody(res.body);
      throw authRefused(host, res.status, authorization !== undefined, 'upstream token service');
    }
    if (res.status === 429) {
      discardBody(res.body);
      throw rateLimited(host, retryAfterSeconds(res.headers, Date.now()));
    }
    if (res.status !== 200) {
      discardBody(res.body);
      throw statusFailure(host, res.status, retryAfterSeconds(res.headers, Date.now()));
    }
    const raw = await readBounded(res.body, MAX_TOKEN_RESPONSE_BYTES, 'token response', { host, timeouts: transport.timeouts });
    let doc: unknown;
    try {
      doc = JSON.parse(raw.toString('utf8'));
    } catch {
      throw protocolFailure(host, 'sent a token response that is not JSON');
    }
    const fields = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
    const token = typeof fields.token === 'string' && fields.token !== '' ? fields.token : fields.access_token;
    if (typeof token !== 'string' || token === '') throw protocolFailure(host, 'sent a token response without a token');
    const expiresIn = typeof fields.expires_in === 'number' ? fields.expires_in : undefined;
    const issuedAt = typeof fields.issued_at === 'string' ? fields.issued_at : undefined;
    const expiresAt = tokenExpiry(startedAt, expiresIn, issuedAt);
    logger.debug('upstream token obtained', { host, scope: scope ?? '', expiresInSeconds: expiresIn ?? null, authenticated: authorization !== undefined });
    return { token, expiresAt };
  }
}
