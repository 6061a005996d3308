import type { Readable } from 'node:stream';
import { RegistryError, type BlobHit, type BlobStat, type ByteRange, type Digest, type LookupContext, type RepositoryRow } from '@entrepot/registry-core';
import type { ArrivingBlob } from '../core-types';
import { RangeReads } from '../fill/range-reads';
import type { SharedRange } from '../fill/shared-range';
import { NOTHING_HELD, type QuotaHold } from '../eviction/quota-keeper';
import { upstreamFailureOf } from '../upstream/upstream-failure';
import { cacheRequest, ensureRepository, type CacheDeps, type CacheRequest } from './cache-context';
import { endpointOf } from '../config/cache-config-store';
import { Coalescer } from '../freshness/coalescer';
import { fillOpener, isResumable, rangeOpener, suffixOpener } from './upstream-blob-openers';
import { acquireFillLease, fillLeaseName } from '../peer/fill-lease';
import { FollowerSource } from '../peer/follower-source';

const REMOTE_POLL_MS = 200;
/** A follower reading through peers tolerates this many broken sources (each resume waits for the next one). */
const FOLLOWER_MAX_RESUMES = 20;

/**
 * Blobs of cache organizations. The core already served blobs this repository
 * references; what reaches here is either stored for another repository (served
 * only once the upstream confirms this repository has it) or not stored at all
 * (one single-flight fill streamed to every requester while it is stored).
 */
export class BlobLookup {
  /** Concurrent first requests for a digest in this process decide together whether to fill or wait. */
  private readonly starting = new Coalescer<{ fill: ArrivingBlob; started: boolean } | 'stored'>();
  /**
   * Requests that finish together record a blob for one repository once: the
   * clients of one download would otherwise queue for the digest's lock one by
   * one, each making the same idempotent inserts (seconds of work after a herd).
   */
  private readonly linking = new Coalescer<boolean>();
  /** Ranges of blobs not stored yet, read from the upstream while (or instead of) filling them. */
  private readonly ranges = new RangeReads();
  private readonly heads = new Coalescer<{ size: number } | null>();
  /** Fills started for requests a range answered, per blob and repository. */
  private readonly besideFill = new Coalescer<BlobHit | null>();

  constructor(private readonly deps: CacheDeps) {}

  /** `stored`: what the blob store holds for the digest, as the core found it. */
  async find(digest: Digest, ctx: LookupContext, stored: BlobStat | null): Promise<BlobHit | null> {
    const req = await cacheRequest(this.deps, ctx);
    if (!req || !this.deps.upstreamEnabled) return null;
    if (stored) return this.confirmStored(req, digest, stored.size);
    const running = this.deps.fills.get(digest);
    if (running && running.originKey !== originKey(req)) {
      // Joining another repository's download needs the same confirmation as a stored blob.
      if (!(await this.upstreamConfirms(req, digest))) return null;
    }
    if (ctx.headOnly && !running) return this.coldHead(req, digest);
    // A range the fill cannot answer soon (not answered yet, or not near the range) goes upstream at once.
    if (ctx.range !== undefined && (!running || running.size < 0 || aheadOfFill(running, ctx.range))) {
      if (!running && req.config.fillOnRange === 'never') return this.rangeOnly(req, digest);
      const early = await this.prefetchRange(req, digest, ctx.range);
      if (early) return this.answerBesideFill(req, digest, early, running === undefined);
    }
    return this.fromFill(req, digest);
  }

  private async upstreamConfirms(req: CacheRequest, digest: Digest): Promise<boolean> {
    const upstream = await this.deps.upstreamFor(req.config);
    return (await upstream.headBlob(req.upstreamRepo, digest)) !== null;
  }

  /**
   * Cross-repository safety: a blob cached through another repository needs the
   * upstream's word. One this repository already references or links needs none;
   * it gets here when the core looked for the file just before a fill put it in place.
   */
  private async confirmStored(req: CacheRequest, digest: Digest, size: number): Promise<BlobHit | null> {
    const own = req.ctx.repository ? await this.deps.content.isBlobLinked(req.ctx.repository.id, digest) : false;
    // The repository's own blob is counted already: an admission would only count it a second time while it lasted.
    if (!own) {
      if (!(await this.upstreamConfirms(req, digest))) return null;
      const repository = await ensureRepository(this.deps, req);
      const keeping = await this.keepAs(req, repository, digest, size);
      try {
        if (keeping.as === 'linked') await this.link(repository.id, digest);
      } finally {
        await keeping.hold.release();
      }
    }
    return { digest, size, open: (range) => this.readStored(req, digest, range), cacheResult: 'hit' };
  }

  /**
   * Garbage collection may take a blob nothing keeps (not admitted under the
   * quota, or its repository's reference just evicted) between the check that
   * found it and the read: fetch it again then.
   */
  private readStored(req: CacheRequest, digest: Digest, range?: ByteRange): Promise<Readable> {
    return this.deps.storage.blobs.read(digest, range).catch((err: unknown) => (isBlobUnknown(err) ? this.refill(req, digest, range) : Promise.reject(err)));
  }

  private async refill(req: CacheRequest, digest: Digest, range?: ByteRange): Promise<Readable> {
    const hit = await this.fromFill(req, digest);
    if (!hit) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is no longer available upstream`);
    return hit.open(range);
  }

  /**
   * How the repository keeps the blob under its organization's quota:
   * - `referenced`: a cached manifest of the repository references (and counts)
   *   it; that reference is what keeps it, so eviction of the manifest releases it
   *   even if the blob arrives afterwards;
   * - `linked`: admitted on its own (no cached manifest refers to it) and linked;
   * - `not-kept`: a blob of a bypassed image, or one the quota cannot admit. It is
   *   still served; garbage collection removes it once nothing references it.
   * A linked blob's room is held until it is linked (or will not be): released
   * earlier, a decision in between would measure the organization without it.
   */
  private async keepAs(req: CacheRequest, repository: RepositoryRow, digest: Digest, size: number): Promise<{ as: 'referenced' | 'linked' | 'not-kept'; hold: QuotaHold }> {
    const orgId = req.ctx.target.org.id;
    if (this.deps.bypass.has(orgId, digest)) return { as: 'not-kept', hold: NOTHING_HELD };
    if (await this.deps.content.isReferenced(repository.id, digest)) return { as: 'referenced', hold: NOTHING_HELD };
    const hold = await this.deps.quota.hold(req.ctx.target.org, [{ digest, size }]);
    return hold === 'bypass' ? { as: 'not-kept', hold: NOTHING_HELD } : { as: 'linked', hold };
  }

  /** Links a stored blob to the repository (or only records it, for null); concurrent calls for the same pair share one. */
  private link(repoId: number | null, digest: Digest): Promise<boolean> {
    return this.linking.run(`${digest}|${repoId ?? ''}`, () => this.deps.content.linkStoredBlob(repoId, digest));
  }

  /** HEAD of an uncached blob: one upstream HEAD, no body download. */
  private async coldHead(req: CacheRequest, digest: Digest): Promise<BlobHit | null> {
    const upstream = await this.deps.upstreamFor(req.config);
    const head = await upstream.headBlob(req.upstreamRepo, digest);
    if (!head) return null;
    return { digest, size: head.size, open: () => Promise.reject(new RegistryError('INTERNAL', 'HEAD has no body')), cacheResult: 'miss' };
  }

  /**
   * A Range request for an uncached blob of an organization with `fill_on_range:
   * never`: the size from one upstream HEAD (shared by concurrent requests), the
   * bytes from ranged upstream GETs, nothing stored.
   */
  private async rangeOnly(req: CacheRequest, digest: Digest): Promise<BlobHit | null> {
    const early = await this.prefetchRange(req, digest, req.ctx.range ?? '');
    await ensureRepository(this.deps, req);
    const upstream = await this.deps.upstreamFor(req.config);
    // The range's own answer carries the blob's size; a HEAD only for ranges left to a fill.
    const answered = early ? await early.answered : null;
    const head = answered !== null ? { size: answered } : await this.heads.run(`${originKey(req)}|${digest}`, () => upstream.headBlob(req.upstreamRepo, digest));
    if (!head) return null;
    return this.rangeHit(req, digest, head.size, 'miss');
  }

  /** A blob not stored yet whose ranges are read through `readRange` (from the fill, kept ranges or the upstream). */
  private async rangeHit(req: CacheRequest, digest: Digest, size: number, cacheResult: 'miss' | 'hit'): Promise<BlobHit> {
    const lazy = rangeOpener(this.deps, await this.deps.upstreamFor(req.config), req, digest, 'lazy');
    return {
      digest,
      size,
      open: async (range) => {
        // No Range after all (the core asked for the whole body): fill as for any GET.
        if (!range) return this.refill(req, digest);
        return this.readRange(req, this.deps.fills.get(digest) ?? null, digest, range, lazy);
      },
      cacheResult,
    };
  }

  /**
   * A cold blob's range starts upstream at once, alongside the fill's first
   * request: an absolute range as asked, a suffix (`bytes=-N`) before the size
   * is known. Returns the kept range holding its first byte, or null when the
   * range is left to the fill (near the blob's start, or not a single range).
   */
  private async prefetchRange(req: CacheRequest, digest: Digest, header: string): Promise<SharedRange | null> {
    const asked = singleRange(header);
    if (!asked) return null;
    const upstream = await this.deps.upstreamFor(req.config);
    const org = req.orgName;
    // An upstream ignoring Range sends the whole body: drop it when the fill (downloading the same) runs.
    const filling = (): boolean => {
      const fill = this.deps.fills.get(digest);
      return fill !== undefined && fill.failed === null;
    };
    const onBytes = (bytes: number): void => this.deps.metrics.rangeBytes.inc({ org, purpose: 'lazy' }, bytes);
    if ('suffix' in asked) return this.ranges.prefetchTail(digest, asked.suffix, suffixOpener(this.deps, upstream, req, digest), filling, onBytes);
    return this.ranges.prefetch(digest, asked, rangeOpener(this.deps, upstream, req, digest, 'lazy'), filling, onBytes);
  }

  /**
   * Answers a range the fill cannot serve soon (not answered yet, or far from
   * the range) from the range's own upstream request, whose answer gives the
   * blob's size: the fill starts (or is joined) once that request is answered
   * rather than before it, so the client's first byte costs what the
   * upstream's does (the fill's start and its bookkeeping — repository row,
   * lease, quota, its own request — would hold the event loop while the
   * range's request waits to be sent). When that request fails, the fill's
   * outcome decides (a 404 there makes the blob unknown). The fill's path
   * records the repository.
   */
  private async answerBesideFill(req: CacheRequest, digest: Digest, early: SharedRange, cold: boolean): Promise<BlobHit | null> {
    const size = await early.answered;
    if (size === null) return this.fromFill(req, digest);
    // A herd answered by one range starts (or joins) the fill once, not once per request ahead of its first byte.
    this.besideFill
      .run(`${digest}|${req.ctx.target.fullName}`, () => this.fromFill(req, digest))
      .catch((err: unknown) => this.deps.logger.info('fill beside a range request failed', { digest, error: err instanceof Error ? err.message : String(err) }));
    return this.rangeHit(req, digest, size, cold ? 'miss' : 'hit');
  }

  private readRange(req: CacheRequest, fill: ArrivingBlob | null, digest: Digest, range: ByteRange, open: ReturnType<typeof rangeOpener>): Readable {
    const org = req.orgName;
    return this.ranges.read({
      digest,
      range,
      fill,
      open,
      readStored: (part) => this.readStored(req, digest, part),
      onUpstreamBytes: (bytes) => this.deps.metrics.rangeBytes.inc({ org, purpose: 'lazy' }, bytes),
    });
  }

  private async fromFill(req: CacheRequest, digest: Digest): Promise<BlobHit | null> {
    const repository = await ensureRepository(this.deps, req);
    const outcome = this.deps.fills.get(digest) ? await this.startFill(req, digest) : await this.starting.run(digest, () => this.startOrAwaitRemote(req, digest));
    if (outcome === 'stored') {
      const stored = await this.deps.storage.blobs.stat(digest);
      return stored ? this.confirmStored(req, digest, stored.size) : null;
    }
    const { fill, started } = outcome;
    try {
      await fill.ready;
    } catch (err) {
      if (upstreamFailureOf(err)?.kind === 'notfound') return null;
      throw err;
    }
    if (started && req.ctx.range !== undefined) this.deps.metrics.fillsStartedByRange.inc({ org: req.orgName });
    // A blob already kept for the repository needs no second admission (which could evict that very blob to make room for itself) and no second link.
    if (!fill.keeps(repository.id)) {
      const keeping = await this.keepAs(req, repository, digest, fill.size);
      fill.keepFor(keeping.as === 'linked' ? repository.id : null, keeping.hold);
    }
    return {
      digest,
      size: fill.size,
      open: (range) => this.openFromFill(req, fill, digest, range),
      // Joining a download already under way costs the upstream nothing more.
      cacheResult: started ? 'miss' : 'hit',
    };
  }

  /**
   * Single flight across replicas: the replica holding the fill lease downloads;
   * the others follow it, streaming its bytes through its peer listener as they
   * arrive (or, without peer listeners, wait until the blob is stored). When the
   * owner dies its lease lapses within seconds and a follower takes the fill over,
   * so N replicas still make one upstream GET per blob.
   */
  private async startOrAwaitRemote(req: CacheRequest, digest: Digest): Promise<{ fill: ArrivingBlob; started: boolean } | 'stored'> {
    const name = fillLeaseName(digest);
    const peers = this.deps.peers;
    for (;;) {
      if (this.deps.fills.get(digest)) return this.startFill(req, digest);
      const lease = await acquireFillLease(this.deps.coordinator, digest, peers?.selfUrl ?? '', this.deps.logger);
      if (lease) {
        // The previous owner may have stored the blob and let the lease go since this request looked.
        if (await this.deps.storage.blobs.stat(digest)) {
          lease.release();
          return 'stored';
        }
        const outcome = await this.startFill(req, digest);
        outcome.fill.holdUntilDone(lease);
        return outcome;
      }
      if (peers && (await this.deps.coordinator.holderOf(name))) return this.startFollowing(req, digest);
      while (await this.deps.coordinator.isHeld(name)) {
        if (await this.deps.storage.blobs.stat(digest)) return 'stored';
        await new Promise((r) => setTimeout(r, REMOTE_POLL_MS));
      }
      if (await this.deps.storage.blobs.stat(digest)) return 'stored';
    }
  }

  /** A local fill of another replica's download: verified, served and resumed like any other; the owner stores the blob (see FollowerSource.storeFor). */
  private async startFollowing(req: CacheRequest, digest: Digest): Promise<{ fill: ArrivingBlob; started: boolean }> {
    const peers = this.deps.peers!;
    const upstream = await this.deps.upstreamFor(req.config);
    const org = req.orgName;
    const follower = new FollowerSource(
      { coordinator: this.deps.coordinator, peers: peers.client, selfUrl: peers.selfUrl, blobs: this.deps.storage.blobs, logger: this.deps.logger },
      digest,
      (offset, signal) => upstream.getBlob(req.upstreamRepo, digest, { offset, signal }),
    );
    const outcome = this.deps.fills.getOrStart({
      digest,
      originKey: originKey(req),
      store: follower.storeFor(this.deps.storage.blobs),
      open: follower.open,
      maxResumes: FOLLOWER_MAX_RESUMES,
      // Peers and storage are read again from the bytes written; the upstream, as for any fill.
      isResumable: (err) => follower.source !== 'upstream' || isResumableUpstreamFailure(err),
      onSourceBytes: (bytes) => {
        if (follower.source === 'upstream') this.deps.metrics.bytes.inc({ org, source: 'upstream' }, bytes);
      },
      onDigestMismatch: () => this.deps.metrics.digestMismatches.inc({ org }),
    });
    if (outcome.started) outcome.fill.holdUntilDone(follower);
    // This replica's later requests for the digest join the local fill: the peer is read once per replica.
    return { fill: outcome.fill, started: false };
  }

  private async startFill(req: CacheRequest, digest: Digest): Promise<{ fill: ArrivingBlob; started: boolean }> {
    const upstream = await this.deps.upstreamFor(req.config);
    const org = req.orgName;
    return this.deps.fills.getOrStart({
      digest,
      originKey: originKey(req),
      // A fill a Range request starts runs behind that client's ranges: one connection, leaving the link to them.
      open: fillOpener(this.deps, upstream, req, digest, { parallel: req.ctx.range === undefined }),
      isResumable,
      onSourceBytes: (bytes) => this.deps.metrics.bytes.inc({ org, source: 'upstream' }, bytes),
      onDigestMismatch: () => this.deps.metrics.digestMismatches.inc({ org }),
    });
  }

  /**
   * Reads from the running fill, or from storage once the fill has committed and
   * let go of its file. A range the fill has not (nearly) reached comes from the
   * upstream meanwhile, so a lazy-pulling client does not wait for the whole blob.
   */
  private async openFromFill(req: CacheRequest, fill: ArrivingBlob, digest: Digest, range?: ByteRange): Promise<Readable> {
    if (range && RangeReads.wantsUpstream(fill, range)) {
      return this.readRange(req, fill, digest, range, rangeOpener(this.deps, await this.deps.upstreamFor(req.config), req, digest, 'lazy'));
    }
    const reader = fill.tryReader(range);
    if (reader) return reader;
    if (fill.committed) return this.readStored(req, digest, range);
    throw fill.failed ?? new RegistryError('UNAVAILABLE', `download of ${digest} ended without content`);
  }
}

/**
 * An absolute range the answered fill has not (nearly) reached: the fill's
 * bookkeeping for the request (repository, quota) need not go before its
 * upstream request.
 */
function aheadOfFill(fill: ArrivingBlob, header: string): boolean {
  const asked = singleRange(header);
  return asked !== null && !('suffix' in asked) && asked.end < fill.size && RangeReads.wantsUpstream(fill, asked);
}

/** A `Range` header asking for one absolute range (`bytes=a-b`) or a blob's last bytes (`bytes=-n`); null for anything else. */
function singleRange(header: string): ByteRange | { suffix: number } | null {
  const absolute = /^bytes=(\d+)-(\d+)$/.exec(header.trim());
  if (absolute) {
    const range = { start: Number(absolute[1]), end: Number(absolute[2]) };
    return Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start <= range.end ? range : null;
  }
  const suffix = /^bytes=-(\d+)$/.exec(header.trim());
  const length = suffix ? Number(suffix[1]) : NaN;
  return Number.isSafeInteger(length) && length >= 1 ? { suffix: length } : null;
}

/** As a fill from the upstream resumes (see startFill). */
function isResumableUpstreamFailure(err: unknown): boolean {
  const failure = upstreamFailureOf(err);
  return failure !== null && (failure.kind === 'network' || failure.kind === 'timeout' || (failure.kind === 'status' && (failure.status ?? 0) >= 500));
}

function isBlobUnknown(err: unknown): boolean {
  return err instanceof RegistryError && err.code === 'BLOB_UNKNOWN';
}

/** Fills are shared without re-checking only between requests for the same upstream repository. */
function originKey(req: CacheRequest): string {
  return `${endpointOf(req.config)}|${req.config.username ?? ''}|${req.upstreamRepo}`;
}
