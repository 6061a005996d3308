import { Readable } from 'node:stream';
import { type ByteRange, type Digest } from '@entrepot/registry-core';
import type { ArrivingBlob } from '../core-types';
import type { RangeOpener } from './piece-download';
import { SharedRange, type SuffixOpener } from './shared-range';

/** Largest single upstream range request; longer client ranges are fetched as consecutive pieces (one ahead). */
const MAX_PIECE_BYTES = 8 * 1024 * 1024;
/** Ranges kept in memory for sharing, over every blob, before the oldest are forgotten. */
const KEPT_BYTES = 128 * 1024 * 1024;
/**
 * A range starting this close ahead of what the fill has received is read
 * from the fill at most; closer still when the fill is slow (below).
 */
const FILL_NEAR_BYTES = 2 * 1024 * 1024;
/**
 * A range is left to the fill when the fill will reach it within this time,
 * about what a ranged upstream GET takes to answer: a fill sharing a slow link
 * with the client's own ranges may take half a second for 2 MiB.
 */
const FILL_NEAR_MS = 50;
/**
 * A range being fetched serves a position at most this far ahead of what it
 * has received; further, the position gets its own request: a range sharing a
 * slow link arrives at a few MB/s, so waiting for its last megabytes could
 * take a second.
 */
const SHARE_NEAR_BYTES = 256 * 1024;

export interface RangeReadRequest {
  digest: Digest;
  range: ByteRange;
  /** The blob's fill, or null when none runs (`fill_on_range: never`). */
  fill: ArrivingBlob | null;
  /** Ranged upstream GET for this blob. */
  open: RangeOpener;
  /** Reads the stored blob once the fill has committed. */
  readStored(range: ByteRange): Promise<Readable>;
  /** A range request went upstream (for metrics). */
  onUpstreamRange?(): void;
  onUpstreamBytes?(bytes: number): void;
}

/**
 * Range requests for blobs that are not stored yet (lazy pulling: eStargz,
 * SOCI, Nydus read a layer's tail, its table of contents, then scattered
 * chunks). Each part is read from wherever it is first: the fill when it has
 * (nearly) got there, storage once the fill has committed, otherwise a ranged
 * upstream GET shared by every request that overlaps it while it is kept.
 */
export class RangeReads {
  private readonly byDigest = new Map<Digest, SharedRange[]>();
  /** Every kept range in the order it was fetched, for forgetting the oldest. */
  private readonly order: Array<{ digest: Digest; range: SharedRange }> = [];
  private keptBytes = 0;
  /** Blobs whose upstream answered a range with the whole body: their ranges wait for the fill. */
  private readonly rangeIgnored = new Set<Digest>();

  /** True when a range request should not wait for the fill: it has not (nearly) reached the range. */
  static wantsUpstream(fill: ArrivingBlob, range: ByteRange): boolean {
    if (fill.committed || fill.failed !== null) return false;
    const pace = fill.bytesPerSecond;
    const near = pace > 0 ? Math.min(FILL_NEAR_BYTES, (pace * FILL_NEAR_MS) / 1000) : FILL_NEAR_BYTES;
    return fill.readable + near < range.start;
  }

  /** Forgets a blob's ranges (its fill has committed: storage serves them now). */
  forget(digest: Digest): void {
    const ranges = this.byDigest.get(digest);
    if (!ranges) return;
    this.byDigest.delete(digest);
    this.rangeIgnored.delete(digest);
    for (const range of ranges) this.keptBytes -= range.length;
    for (let i = this.order.length - 1; i >= 0; i--) if (this.order[i].digest === digest) this.order.splice(i, 1);
  }

  /**
   * Starts fetching `bytes=start-end` of a blob nobody is filling yet, while its
   * fill is still opening: a lazy-pulling client knows the layer's size and asks
   * for absolute ranges, so its first byte need not wait for the fill's headers.
   * Returns the kept range that will hold the start (new, or one already
   * fetching it), read later through `read`; null for a range near the blob's
   * start, which is left to the fill.
   */
  prefetch(digest: Digest, range: ByteRange, open: RangeOpener, dropWholeBody: () => boolean, onBytes?: (bytes: number) => void): SharedRange | null {
    if (range.start <= FILL_NEAR_BYTES) return null;
    const ranges = this.byDigest.get(digest) ?? [];
    const kept = nearestHolding(ranges, range.start);
    if (kept) return kept;
    const end = Math.min(range.end, range.start + MAX_PIECE_BYTES - 1);
    return this.keep(digest, new SharedRange({ start: range.start, end, open, dropWholeBody, onBytes }), ranges);
  }

  /**
   * Starts fetching a cold blob's last `length` bytes (`bytes=-length`, how
   * lazy-pulling clients read a layer's footer) before anyone knows its size:
   * the upstream's answer says where they start. Requests for the tail read it
   * once it is placed; a herd asking for the same tail shares one request.
   */
  prefetchTail(digest: Digest, length: number, openSuffix: SuffixOpener, dropWholeBody: () => boolean, onBytes?: (bytes: number) => void): SharedRange | null {
    if (length > MAX_PIECE_BYTES) return null;
    const ranges = this.byDigest.get(digest) ?? [];
    const kept = ranges.find((r) => usable(r) && r.suffix !== null && r.suffix >= length);
    if (kept) return kept;
    return this.keep(digest, new SharedRange({ suffix: length, openSuffix, dropWholeBody, onBytes }), ranges);
  }

  read(request: RangeReadRequest): Readable {
    return Readable.from(this.bytes(request), { objectMode: false, highWaterMark: 1024 * 1024 });
  }

  private async *bytes(request: RangeReadRequest): AsyncGenerator<Buffer> {
    const { fill, range } = request;
    await this.placeTails(request);
    let pos = range.start;
    while (pos <= range.end) {
      if (fill && fill.committed) {
        this.forget(request.digest);
        yield* (await request.readStored({ start: pos, end: range.end })) as AsyncIterable<Buffer>;
        return;
      }
      if (fill && fill.failed === null && (this.rangeIgnored.has(request.digest) || !RangeReads.wantsUpstream(fill, { start: pos, end: range.end }))) {
        const reader = fill.tryReader({ start: pos, end: range.end });
        if (reader) {
          yield* reader as AsyncIterable<Buffer>;
          return;
        }
        // Not answered yet (a range answered beside it can get here first): wait for it. Otherwise it
        // just ended: committed (storage) or failed (upstream).
        if (fill.size < 0) await fill.ready.catch(() => undefined);
        continue;
      }
      const shared = this.covering(request, pos);
      // Fetch the next piece of a long range while this one is read.
      if (shared.end < range.end) this.covering(request, shared.end + 1);
      const until = Math.min(range.end, shared.end);
      for await (const chunk of shared.read(pos, until)) {
        pos += chunk.length;
        yield chunk;
      }
      if (shared.dropped) {
        // The upstream ignores Range: the fill brings these bytes (it downloads the same body).
        this.rangeIgnored.add(request.digest);
        continue;
      }
      if (pos <= until) throw new Error(`range ${pos}-${until} of ${request.digest} could not be read`);
    }
  }

  /** Places the blob's tails still asked by suffix: by the fill's size when known, else once the upstream answered. */
  private async placeTails(request: RangeReadRequest): Promise<void> {
    const size = request.fill?.size ?? -1;
    for (const r of this.byDigest.get(request.digest) ?? []) {
      if (r.isPlaced) continue;
      if (size > 0) r.placeIn(size);
      else await r.placed;
    }
  }

  /** The kept range that has (nearly) got to byte `pos`, or a new upstream range from `pos` (up to the next kept one). */
  private covering(request: RangeReadRequest, pos: number): SharedRange {
    const ranges = this.byDigest.get(request.digest) ?? [];
    const found = nearestHolding(ranges, pos);
    if (found) return found;
    let end = Math.min(request.range.end, pos + MAX_PIECE_BYTES - 1);
    const fillSize = request.fill?.size ?? -1;
    if (fillSize > 0) end = Math.min(end, fillSize - 1);
    for (const r of ranges) if (usable(r) && r.start > pos && r.start <= end) end = r.start - 1;
    request.onUpstreamRange?.();
    const fill = request.fill;
    const created = new SharedRange({
      start: pos,
      end,
      open: request.open,
      dropWholeBody: () => fill !== null && fill.failed === null,
      onBytes: request.onUpstreamBytes,
    });
    this.keep(request.digest, created, ranges);
    return created;
  }

  private keep(digest: Digest, range: SharedRange, ranges: SharedRange[]): SharedRange {
    ranges.push(range);
    this.byDigest.set(digest, ranges);
    this.order.push({ digest, range });
    this.keptBytes += range.length;
    while (this.keptBytes > KEPT_BYTES && this.order.length > 1) {
      const oldest = this.order.shift();
      if (!oldest) break;
      this.keptBytes -= oldest.range.length;
      const list = this.byDigest.get(oldest.digest);
      if (!list) continue;
      const rest = list.filter((r) => r !== oldest.range);
      if (rest.length > 0) this.byDigest.set(oldest.digest, rest);
      else this.byDigest.delete(oldest.digest);
    }
    return range;
  }
}

/** Of the kept ranges holding byte `pos`, the one first to get there, if it has (nearly) got there. */
function nearestHolding(ranges: SharedRange[], pos: number): SharedRange | undefined {
  let found: SharedRange | undefined;
  for (const r of ranges) if (usable(r) && r.isPlaced && r.start <= pos && pos <= r.end && (!found || r.reached > found.reached)) found = r;
  return found && found.reached + SHARE_NEAR_BYTES >= pos ? found : undefined;
}

/** A kept range that can still be read from (placed, or a suffix range about to be). */
function usable(range: SharedRange): boolean {
  return !range.failed && !range.dropped;
}
