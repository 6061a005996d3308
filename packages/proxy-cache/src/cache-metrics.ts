import { Counter, Gauge } from 'prom-client';
import type { CoreMetrics } from './core-types';

/** The proxy cache's Prometheus metrics, registered on the core's registry. */
export interface CacheMetrics {
  bytes: Counter<'org' | 'source'>;
  upstreamRequests: Counter<'upstream' | 'method' | 'status'>;
  rateLimitRemaining: Gauge<'upstream'>;
  digestMismatches: Counter<'org'>;
  breakerState: Gauge<'upstream'>;
  inFlightFills: Gauge;
  staleServes: Counter<'org' | 'reason'>;
  rangeRequests: Counter<'org' | 'purpose'>;
  rangeBytes: Counter<'org' | 'purpose'>;
  fillsStartedByRange: Counter<'org'>;
  piecesInFlight: Gauge;
  pieceBytesAhead: Gauge;
  rangeIgnored: Counter<'org'>;
}

export function createCacheMetrics(core: CoreMetrics, inFlight: () => number, piecesAhead: () => number): CacheMetrics {
  const registers = [core.registry];
  return {
    bytes: new Counter({
      name: 'entrepot_cache_bytes_total',
      help: 'Blob bytes by source: upstream (downloaded) or cache (served from storage)',
      labelNames: ['org', 'source'],
      registers,
    }),
    upstreamRequests: new Counter({
      name: 'entrepot_upstream_requests_total',
      help: 'Requests sent to upstream registries, by method and status (or error kind)',
      labelNames: ['upstream', 'method', 'status'],
      registers,
    }),
    rateLimitRemaining: new Gauge({
      name: 'entrepot_upstream_ratelimit_remaining',
      help: 'Last RateLimit-Remaining value an upstream reported',
      labelNames: ['upstream'],
      registers,
    }),
    digestMismatches: new Counter({
      name: 'entrepot_cache_digest_mismatches_total',
      help: 'Upstream content refused because it did not hash to its digest',
      labelNames: ['org'],
      registers,
    }),
    breakerState: new Gauge({
      name: 'entrepot_upstream_circuit_state',
      help: 'Circuit breaker per upstream: 0 closed, 1 half-open, 2 open',
      labelNames: ['upstream'],
      registers,
    }),
    inFlightFills: new Gauge({
      name: 'entrepot_cache_fills_in_flight',
      help: 'Blob downloads from upstreams currently running',
      registers,
      collect() {
        this.set(inFlight());
      },
    }),
    staleServes: new Counter({
      name: 'entrepot_cache_stale_serves_total',
      help: 'Cached tags served past their staleness period because the upstream failed',
      labelNames: ['org', 'reason'],
      registers,
    }),
    rangeRequests: new Counter({
      name: 'entrepot_upstream_range_requests_total',
      help: 'Ranged GETs sent upstream: for a client range of a blob not cached yet (lazy), or a piece of a parallel fill (piece)',
      labelNames: ['org', 'purpose'],
      registers,
    }),
    rangeBytes: new Counter({
      name: 'entrepot_upstream_range_bytes_total',
      help: 'Bytes received from ranged upstream GETs, by purpose (lazy, piece)',
      labelNames: ['org', 'purpose'],
      registers,
    }),
    fillsStartedByRange: new Counter({
      name: 'entrepot_cache_fills_started_by_range_total',
      help: 'Whole-blob downloads started in the background by a Range request',
      labelNames: ['org'],
      registers,
    }),
    piecesInFlight: new Gauge({
      name: 'entrepot_cache_fill_pieces_in_flight',
      help: 'Pieces of parallel fills being downloaded',
      registers,
    }),
    pieceBytesAhead: new Gauge({
      name: 'entrepot_cache_fill_piece_bytes_ahead',
      help: 'Bytes of pieces parallel fills hold ahead of their readers (bounded by fill_pieces_max_bytes)',
      registers,
      collect() {
        this.set(piecesAhead());
      },
    }),
    rangeIgnored: new Counter({
      name: 'entrepot_upstream_range_ignored_total',
      help: 'Range requests an upstream answered with the whole blob (200)',
      labelNames: ['org'],
      registers,
    }),
  };
}
