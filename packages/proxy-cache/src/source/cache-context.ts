import type { CorePorts, LookupContext, RepositoryRow } from '@entrepot/registry-core';
import { type Content, type Repositories, type Storage } from '../core-types';
import type { Locks, Logger, Clock } from '../core-types';
import type { CacheConfig, CacheConfigStore } from '../config/cache-config-store';
import type { CacheMetrics } from '../cache-metrics';
import type { TagFreshness } from '../freshness/tag-freshness';
import { upstreamRepository } from '../routing/upstream-ref';
import type { UpstreamPort } from './upstream-port';
import type { QuotaKeeper } from '../eviction/quota-keeper';
import type { BypassSet } from '../eviction/bypass-set';
import type { StatsRecorder } from '../stats/stats-recorder';
import type { PieceBudget } from '../fill/piece-budget';
import type { PeerClient } from '../peer/peer-client';

/** Everything the cache's lookup code shares. */
export interface CacheDeps {
  configs: CacheConfigStore;
  content: Content;
  repositories: Repositories;
  storage: Storage;
  fills: CorePorts['fills'];
  freshness: TagFreshness;
  metrics: CacheMetrics;
  logger: Logger;
  clock: Clock;
  /** The upstream client for a cache org's current configuration. */
  upstreamFor(config: CacheConfig): Promise<UpstreamPort>;
  /** False when FEATURE_PROXY_CACHE is off: cached content is served, the upstream never contacted. */
  upstreamEnabled: boolean;
  quota: QuotaKeeper;
  bypass: BypassSet;
  coordinator: Locks;
  /** Reading other replicas' fills, when a peer listener is configured. */
  peers?: { client: PeerClient; selfUrl: string };
  /** How long a pull waits for a revalidation before cached content is served stale. */
  revalidationDeadlineMs: number;
  stats: StatsRecorder;
  /** Large blobs are filled as pieces over several connections (see fill/parallel-body.ts). */
  parallelFill: ParallelFillSettings;
}

export interface ParallelFillSettings {
  thresholdBytes: number;
  pieceBytes: number;
  /** 1: one connection per fill. */
  connections: number;
  /** Pieces start only when the fill's own GET delivers less than this (bytes per second) over its first bytes, with the event loop not saturated. */
  belowBytesPerSecond: number;
  /** Pieces for every blob above the threshold, without measuring the first GET. */
  always: boolean;
  /** Shared by every fill of the process: how far ahead of their readers their pieces may run. */
  budget: PieceBudget;
}

/** A request against a cache organization, with its configuration resolved. */
export interface CacheRequest {
  ctx: LookupContext;
  config: CacheConfig;
  orgName: string;
  /** Repository path at the upstream. */
  upstreamRepo: string;
}

export async function cacheRequest(deps: CacheDeps, ctx: LookupContext): Promise<CacheRequest | null> {
  const config = await deps.configs.get(ctx.target.org.id);
  if (!config) return null;
  return { ctx, config, orgName: ctx.target.org.name, upstreamRepo: upstreamRepository(config.spec, ctx.target.repoName) };
}

/** The local repository for a cache request, created on first fill (default permissions applied). */
export async function ensureRepository(deps: CacheDeps, req: CacheRequest): Promise<RepositoryRow> {
  return req.ctx.repository ?? deps.repositories.ensure(req.ctx.target.org.id, req.ctx.target.repoName);
}
