/**
 * The client the pull-through cache uses to talk to one upstream registry
 * (OCI distribution-spec / Docker Registry HTTP API v2). No caching here:
 * correct and robust requests only.
 *
 * Error contract (every method): failures are RegistryErrors, and those that
 * come from the upstream are `UpstreamError`s carrying an `UpstreamFailure`
 * (see upstream-failure.ts):
 * - 404 → null from the `head*`, `listTags` and `getReferrers` methods;
 *   MANIFEST_UNKNOWN / BLOB_UNKNOWN (404, kind `notfound`) from `getManifest` / `getBlob`;
 * - 401/403 after answering the challenge → UNAVAILABLE (kind `auth`),
 *   "upstream <host> refused our credentials" (or "requires credentials");
 * - 429 → TOOMANYREQUESTS (kind `ratelimit`) with the upstream's Retry-After in `headers`;
 * - 5xx, network errors, timeouts → UNAVAILABLE (503, kinds `status` / `network` / `timeout`)
 *   naming the upstream host, never the credentials;
 * - bad content (digest mismatch, manifest over 4 MiB, wrong Content-Range) → UNAVAILABLE (kind `protocol`);
 * - circuit open → UNAVAILABLE (kind `circuit-open`) without contacting the upstream;
 * - invalid arguments → NAME_INVALID / DIGEST_INVALID / MANIFEST_INVALID (plain RegistryErrors).
 */
import type { Readable } from 'node:stream';
import { RegistryError, type Digest, oci } from '@entrepot/registry-core';
import type { Logger } from '../core-types';
import { abandonBody, discardBody, upstreamBodyStream } from './body-stream';
import { CircuitBreaker, type BreakerState, type CircuitBreakerOptions } from './circuit-breaker';
import type { TransportResponse } from './http-transport';
import { contentLength, headerValue, mediaTypeOf, parseContentRange } from './response-headers';
import { isManifestMediaType, manifestMediaType, parseReferrers, parseTagList, type TagList } from './upstream-documents';
import { notFound, protocolFailure, upstreamFailureOf } from './upstream-failure';
import { UpstreamSession, type UpstreamSessionOptions } from './upstream-session';

/** The session's settings (see upstream-session.ts), with the breaker optional: by default the client makes its own. */
export interface UpstreamClientOptions extends Omit<UpstreamSessionOptions, 'breaker'> {
  /** A breaker shared by every client of this upstream. */
  breaker?: CircuitBreaker;
  /** Settings of the client's own breaker (ignored when `breaker` is given). */
  breakerOptions?: Omit<CircuitBreakerOptions, 'host' | 'clock'>;
}

export interface ManifestDescriptor {
  digest: Digest;
  mediaType: string;
  size: number;
}

export interface ManifestResponse extends ManifestDescriptor {
  /** The exact bytes the upstream sent. */
  body: Buffer;
}

export interface BlobResponse {
  /** The body from `offset`; errors are UpstreamErrors. Not digest-checked here: the caller verifies. */
  stream: Readable;
  /** Total size of the blob. */
  size: number;
  /** Where `stream` starts: the requested offset, or 0 when the upstream ignored the Range. */
  offset: number;
  /** False when the upstream answered a Range request with the whole body (200). */
  ranged: boolean;
}

const BLOB_HIGH_WATER_MARK = 1024 * 1024;
const MAX_TAG_LIST_BYTES = 16 * 1024 * 1024;
const MAX_REFERRERS_BYTES = 4 * 1024 * 1024;
const MAX_REFERRER_PAGES = 20;

export class UpstreamClient {
  /** host[:port] of the endpoint, as named in messages. */
  readonly host: string;
  readonly breaker: CircuitBreaker;
  private readonly session: UpstreamSession;
  private readonly logger: Logger;

  /** Throws INVALID_REQUEST for a non-http(s) endpoint, credentials in the URL, or a malformed Via token. */
  constructor(options: UpstreamClientOptions) {
    const host = options.endpoint.host;
    this.breaker = options.breaker ?? new CircuitBreaker({ ...(options.breakerOptions ?? {}), host, clock: options.clock });
    this.logger = options.logger.child({ upstream: host });
    this.session = new UpstreamSession({ ...options, logger: this.logger, breaker: this.breaker });
    this.host = this.session.host;
  }

  /** The breaker's state, for metrics. */
  breakerState(): BreakerState {
    return this.breaker.state();
  }

  /** Checks that the endpoint is a registry we may read (`GET /v2/`, answering its challenge). */
  async ping(signal?: AbortSignal): Promise<void> {
    await this.session.guarded(async () => {
      const res = await this.session.send({ operation: 'ping', method: 'GET', url: this.session.url('/v2/'), signal });
      discardBody(res.body);
      if (res.status === 404) throw protocolFailure(res.host, 'is not a registry (no /v2/ endpoint)');
      if (res.status < 200 || res.status >= 300) throw this.session.statusError(res);
    });
  }

  /**
   * HEAD of a manifest: its digest, media type and size, or null on 404.
   * Falls back to a GET when the upstream's HEAD lacks Docker-Content-Digest
   * (for a tag) or Content-Type / Content-Length.
   */
  async headManifest(repo: string, reference: string, signal?: AbortSignal): Promise<ManifestDescriptor | null> {
    oci.validateRepositoryName(repo);
    const ref = oci.parseReference(reference);
    const head = await this.session.guarded(async () => {
      const res = await this.session.send({ operation: 'manifest', method: 'HEAD', url: this.manifestUrl(repo, ref), repo, headers: { accept: oci.ACCEPTED_MANIFEST_TYPES }, signal });
      discardBody(res.body);
      if (res.status === 404) return null;
      if (res.status !== 200) throw this.session.statusError(res);
      const header = headerValue(res.headers, 'docker-content-digest');
      const announced = header === undefined ? null : oci.tryParseDigest(header.trim());
      if (ref.kind === 'digest' && announced !== null && announced !== ref.digest) {
        throw protocolFailure(res.host, `answered for ${ref.digest} with Docker-Content-Digest ${announced}`);
      }
      const digest = announced ?? (ref.kind === 'digest' ? ref.digest : null);
      const size = contentLength(res.headers);
      const mediaType = mediaTypeOf(res.headers);
      if (digest === null || size === undefined || !isManifestMediaType(mediaType)) return 'incomplete' as const;
      return { digest, mediaType, size };
    });
    if (head !== 'incomplete') return head;
    const { digest, mediaType, size } = await this.getManifest(repo, reference, signal);
    return { digest, mediaType, size };
  }

  /**
   * GET of a manifest, byte-exact: the digest is computed from the body (with
   * the requested digest's algorithm), and must equal the requested digest and
   * any Docker-Content-Digest when the reference is a digest. Bodies over
   * 4 MiB are refused. Throws MANIFEST_UNKNOWN on 404.
   */
  async getManifest(repo: string, reference: string, signal?: AbortSignal): Promise<ManifestResponse> {
    oci.validateRepositoryName(repo);
    const ref = oci.parseReference(reference);
    return this.session.guarded(async () => {
      const res = await this.session.send({ operation: 'manifest', method: 'GET', url: this.manifestUrl(repo, ref), repo, headers: { accept: oci.ACCEPTED_MANIFEST_TYPES }, signal });
      if (res.status === 404) {
        discardBody(res.body);
        throw notFound('MANIFEST_UNKNOWN', res.host, `manifest ${repo}${ref.kind === 'tag' ? `:${ref.tag}` : `@${ref.digest}`}`);
      }
      if (res.status !== 200) throw this.session.statusError(res);
      const declared = contentLength(res.headers);
      if (declared !== undefined && declared > oci.MAX_MANIFEST_BYTES) {
        abandonBody(res.body);
        throw protocolFailure(res.host, `sent a manifest of ${declared} bytes; the limit is ${oci.MAX_MANIFEST_BYTES}`);
      }
      const body = await this.session.readSmall(res, oci.MAX_MANIFEST_BYTES, 'manifest', signal);
      const digest = oci.digestOf(body, ref.kind === 'digest' ? oci.digestAlgorithm(ref.digest) : 'sha256');
      const announced = headerValue(res.headers, 'docker-content-digest')?.trim();
      if (ref.kind === 'digest') {
        if (digest !== ref.digest) throw protocolFailure(res.host, `sent a manifest whose digest ${digest} is not the requested ${ref.digest}`);
        if (announced !== undefined && announced !== ref.digest) {
          throw protocolFailure(res.host, `answered for ${ref.digest} with Docker-Content-Digest ${announced}`);
        }
      } else if (announced !== undefined && announced !== digest) {
        this.logger.warn('upstream Docker-Content-Digest differs from the manifest body digest', { repo, tag: ref.tag, announced, computed: digest });
      }
      return { body, digest, mediaType: manifestMediaType(mediaTypeOf(res.headers), body), size: body.length };
    });
  }

  /** HEAD of a blob: its size, or null on 404. A 200 without Content-Length is a `protocol` failure. */
  async headBlob(repo: string, digest: string, signal?: AbortSignal): Promise<{ size: number } | null> {
    oci.validateRepositoryName(repo);
    const d = checkDigest(digest);
    return this.session.guarded(async () => {
      const res = await this.session.send({ operation: 'blob', method: 'HEAD', url: this.session.url(`/v2/${repo}/blobs/${d}`), repo, signal });
      discardBody(res.body);
      if (res.status === 404) return null;
      if (res.status !== 200) throw this.session.statusError(res);
      const size = contentLength(res.headers);
      if (size === undefined) throw protocolFailure(res.host, `answered a blob HEAD for ${d} without Content-Length`);
      return { size };
    });
  }

  /**
   * GET of a blob, from `offset` with `Range: bytes=<offset>-` when offset > 0
   * (`bytes=<offset>-<end>` when `end` is given: a piece of the blob),
   * following redirects (without Authorization to other hosts). A 206 must
   * start at `offset`; a 200 means the upstream ignored the range, and the
   * result says `offset: 0`. The stream is not digest-checked here. Throws
   * BLOB_UNKNOWN on 404. A body that breaks later errors the stream with an
   * UpstreamError; the circuit breaker counts the call when the body ends or
   * fails (destroying the stream unread counts as neither). A response that
   * does not announce the size (no Content-Length, `*` total) is a `protocol` failure.
   * With `suffix` (instead of offset and end) it asks for the last `suffix` bytes
   * (`bytes=-<suffix>`): the 206 must end at the blob's last byte, and its
   * `offset` says where it starts.
   */
  async getBlob(repo: string, digest: string, options: { offset?: number; end?: number; suffix?: number; signal?: AbortSignal } = {}): Promise<BlobResponse> {
    oci.validateRepositoryName(repo);
    const d = checkDigest(digest);
    const offset = options.offset ?? 0;
    const end = options.end;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RegistryError('RANGE_INVALID', `invalid blob offset ${offset}`);
    if (end !== undefined && (!Number.isSafeInteger(end) || end < offset)) throw new RegistryError('RANGE_INVALID', `invalid blob range ${offset}-${end}`);
    const { signal, suffix } = options;
    if (suffix !== undefined && (!Number.isSafeInteger(suffix) || suffix < 1 || offset > 0 || end !== undefined)) throw new RegistryError('RANGE_INVALID', `invalid blob suffix range ${suffix}`);
    // The permit is settled by the body: a blob whose headers arrive but whose body breaks is an outage.
    const permit = this.breaker.acquire();
    let res: TransportResponse;
    try {
      const headers: Record<string, string> =
        suffix !== undefined ? { range: `bytes=-${suffix}` } : end !== undefined ? { range: `bytes=${offset}-${end}` } : offset > 0 ? { range: `bytes=${offset}-` } : {};
      res = await this.session.send({ operation: 'blob', method: 'GET', url: this.session.url(`/v2/${repo}/blobs/${d}`), repo, headers, signal, highWaterMark: BLOB_HIGH_WATER_MARK, pooled: true });
    } catch (err) {
      permit.settle(upstreamFailureOf(err));
      throw err;
    }
    let start = 0;
    let size: number | undefined;
    let expectedLength: number | undefined;
    try {
      if (res.status === 404) {
        discardBody(res.body);
        throw notFound('BLOB_UNKNOWN', res.host, `blob ${d} of ${repo}`);
      }
      if (res.status === 200) {
        expectedLength = contentLength(res.headers);
        size = expectedLength;
      } else if (res.status === 206) {
        const range = parseContentRange(headerValue(res.headers, 'content-range'));
        const wantedEnd = end !== undefined && range?.total !== undefined ? Math.min(end, range.total - 1) : range?.end;
        const wantedStart = suffix !== undefined && range?.total !== undefined ? Math.max(0, range.total - suffix) : offset;
        const wantedLast = suffix !== undefined ? (range?.total ?? 0) - 1 : wantedEnd;
        if (range === null || range.start !== wantedStart || range.end !== wantedLast) {
          abandonBody(res.body);
          throw protocolFailure(res.host, `answered a range request ${suffix !== undefined ? `bytes=-${suffix}` : `from byte ${offset}`} with Content-Range ${headerValue(res.headers, 'content-range') ?? '(none)'}`);
        }
        start = range.start;
        expectedLength = range.end - range.start + 1;
        size = range.total;
      } else {
        throw this.session.statusError(res);
      }
      if (size === undefined) {
        abandonBody(res.body);
        throw protocolFailure(res.host, `sent blob ${d} without announcing its size`);
      }
    } catch (err) {
      permit.settle(upstreamFailureOf(err));
      throw err;
    }
    const stream = upstreamBodyStream(res.body, {
      host: res.host,
      timeouts: this.session.timeouts,
      expectedLength,
      signal,
      onEnd: () => permit.success(),
      onAbandon: () => permit.release(),
      onError: (err) => {
        permit.settle(err.failure);
        this.logger.info('upstream blob body failed', { repo, digest: d, host: err.failure.host, kind: err.failure.kind });
      },
    });
    return { stream, size, offset: start, ranged: res.status === 206 };
  }

  /** One page of the upstream's tags (`n`, `last` as in the distribution spec), or null on 404. */
  async listTags(repo: string, options: { n?: number; last?: string; signal?: AbortSignal } = {}): Promise<TagList | null> {
    oci.validateRepositoryName(repo);
    const url = this.session.url(`/v2/${repo}/tags/list`);
    if (options.n !== undefined) url.searchParams.set('n', String(options.n));
    if (options.last !== undefined) url.searchParams.set('last', options.last);
    return this.session.guarded(async () => {
      const res = await this.session.send({ operation: 'tags', method: 'GET', url: url, repo, headers: { accept: 'application/json' }, signal: options.signal });
      if (res.status === 404) {
        discardBody(res.body);
        return null;
      }
      if (res.status !== 200) throw this.session.statusError(res);
      const body = await this.session.readSmall(res, MAX_TAG_LIST_BYTES, 'tag list', options.signal);
      return parseTagList(body, res, repo);
    });
  }

  /**
   * The OCI referrers of `digest` (all pages), filtered by `artifactType` when
   * given (by the upstream, or here when it did not apply the filter); null
   * when the upstream lacks the referrers API (404).
   */
  async getReferrers(repo: string, digest: string, artifactType?: string, signal?: AbortSignal): Promise<oci.ReferrerDescriptor[] | null> {
    oci.validateRepositoryName(repo);
    const d = checkDigest(digest);
    let url: URL | null = this.session.url(`/v2/${repo}/referrers/${d}`);
    if (artifactType !== undefined) url.searchParams.set('artifactType', artifactType);
    const result: oci.ReferrerDescriptor[] = [];
    for (let page = 0; url !== null && page < MAX_REFERRER_PAGES; page++) {
      const pageUrl: URL = url;
      const parsed = await this.session.guarded(async () => {
        const res = await this.session.send({ operation: 'referrers', method: 'GET', url: pageUrl, repo, headers: { accept: oci.MediaType.OciIndex }, signal });
        if (res.status === 404) {
          discardBody(res.body);
          return null;
        }
        if (res.status !== 200) throw this.session.statusError(res);
        const body = await this.session.readSmall(res, MAX_REFERRERS_BYTES, 'referrers index', signal);
        return parseReferrers(body, res, artifactType);
      });
      if (parsed === null) return page === 0 ? null : result;
      result.push(...parsed.manifests);
      url = parsed.next !== null && parsed.next.origin === this.session.endpoint.origin ? parsed.next : null;
    }
    return result;
  }

  /** Waits for in-flight requests (including blob bodies being read), then closes the connections. */
  async close(): Promise<void> {
    await this.session.close();
  }

  /** Closes the connections now, failing whatever is in flight. */
  async destroy(): Promise<void> {
    await this.session.destroy();
  }

  private manifestUrl(repo: string, ref: oci.Reference): URL {
    return this.session.url(`/v2/${repo}/manifests/${ref.kind === 'tag' ? ref.tag : ref.digest}`);
  }
}

function checkDigest(digest: string): Digest {
  const d = oci.tryParseDigest(digest);
  if (d === null) throw new RegistryError('DIGEST_INVALID', `invalid digest "${digest.slice(0, 200)}"`);
  return d;
}

