import { type Digest } from '@entrepot/registry-core';
import type { BlobOpener } from '../core-types';
import { parallelBody } from '../fill/parallel-body';
import type { RangeOpener } from '../fill/piece-download';
import type { SuffixOpener } from '../fill/shared-range';
import { upstreamFailureOf } from '../upstream/upstream-failure';
import type { CacheDeps, CacheRequest } from './cache-context';
import type { UpstreamPort } from './upstream-port';

/** Failures worth another request: the connection, a timeout, a 5xx. */
export function isResumable(err: unknown): boolean {
  const failure = upstreamFailureOf(err);
  return failure !== null && (failure.kind === 'network' || failure.kind === 'timeout' || (failure.kind === 'status' && (failure.status ?? 0) >= 500));
}

/** A ranged GET of one blob of the request's upstream repository, counted under `purpose`. */
export function rangeOpener(deps: CacheDeps, upstream: UpstreamPort, req: CacheRequest, digest: Digest, purpose: 'lazy' | 'piece'): RangeOpener {
  const org = req.orgName;
  return async (start, end, signal) => {
    deps.metrics.rangeRequests.inc({ org, purpose });
    const res = await upstream.getBlob(req.upstreamRepo, digest, { offset: start, end, signal });
    if (!res.ranged) deps.metrics.rangeIgnored.inc({ org });
    return { stream: res.stream, ranged: res.ranged, size: res.size };
  };
}

/** A ranged GET of a blob's last bytes (`bytes=-N`) of the request's upstream repository, counted as `lazy`. */
export function suffixOpener(deps: CacheDeps, upstream: UpstreamPort, req: CacheRequest, digest: Digest): SuffixOpener {
  const org = req.orgName;
  return async (length, signal) => {
    deps.metrics.rangeRequests.inc({ org, purpose: 'lazy' });
    const res = await upstream.getBlob(req.upstreamRepo, digest, { suffix: length, signal });
    if (!res.ranged) deps.metrics.rangeIgnored.inc({ org });
    return { stream: res.stream, ranged: res.ranged, start: res.offset, size: res.size };
  };
}

/** What the fill's own GET delivers before it decides whether pieces over more connections would help. */
const PROBE_BYTES = 2 * 1024 * 1024;
/** Event-loop utilisation during the probe above which the process, not the connection, sets the pace. */
const PROBE_BUSY_ABOVE = 0.8;

/**
 * How a fill reads its blob: one GET from `offset`, and for a blob larger than
 * the threshold the rest as pieces over several connections (the GET's own
 * body supplies the first piece) when that GET turns out slower than
 * `belowBytesPerSecond` on an event loop with time to spare (or always, when
 * so configured). Small blobs keep the one plain stream, and
 * so does a fill started by a Range request (`parallel` false): its client
 * waits for ranges, not for the whole blob, and the ranges share the link.
 */
export function fillOpener(deps: CacheDeps, upstream: UpstreamPort, req: CacheRequest, digest: Digest, options: { parallel: boolean }): BlobOpener {
  const settings = deps.parallelFill;
  const pieces = rangeOpener(deps, upstream, req, digest, 'piece');
  return async (offset, signal) => {
    const askedAt = performance.now();
    const first = await upstream.getBlob(req.upstreamRepo, digest, { offset, signal });
    const firstAnsweredMs = performance.now() - askedAt;
    if (!options.parallel || settings.connections < 2 || first.size - first.offset <= Math.max(settings.thresholdBytes, settings.pieceBytes)) return first;
    const stream = parallelBody({
      first,
      firstAnsweredMs,
      pieceBytes: settings.pieceBytes,
      connections: settings.connections,
      isRetryable: isResumable,
      open: (start, end, pieceSignal) => pieces(start, end, AbortSignal.any([signal, pieceSignal])),
      onPieceBytes: (bytes) => deps.metrics.rangeBytes.inc({ org: req.orgName, purpose: 'piece' }, bytes),
      onPieceActive: (active) => (active ? deps.metrics.piecesInFlight.inc() : deps.metrics.piecesInFlight.dec()),
      onRangeIgnored: () => deps.logger.info('upstream ignores Range: filling over one connection', { digest, upstream: upstream.host }),
      budget: settings.budget,
      probe: settings.always ? undefined : { bytes: PROBE_BYTES, belowBytesPerSecond: settings.belowBytesPerSecond, busyAbove: PROBE_BUSY_ABOVE },
      onProbed: (rate, busy, parallel) =>
        deps.logger.debug(parallel ? 'upstream connection slow: filling in pieces' : 'filling over the one connection', { digest, upstream: upstream.host, mbps: Math.round(rate / 1e6), eventLoopBusy: Number(busy.toFixed(2)) }),
    });
    return { stream, size: first.size, offset: first.offset };
  };
}
