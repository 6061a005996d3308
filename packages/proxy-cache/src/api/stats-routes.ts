import type { Router } from 'express';
import { RegistryError, type CoreServices } from '@entrepot/registry-core';
import { endpointOf, type CacheConfigStore } from '../config/cache-config-store';
import { cacheStats, WINDOWS, type StatsWindow } from '../stats/stats-query';
import type { StatsRecorder } from '../stats/stats-recorder';

export interface StatsRouteDeps {
  core: CoreServices;
  configs: CacheConfigStore;
  recorder: StatsRecorder;
  /** This replica's circuit breaker state for an upstream endpoint. */
  breakerState(endpoint: string): string;
}

/** `GET /organization/{org}/proxycache/stats?window=24h|7d|30d` (organization members). */
export function statsRoutes(router: Router, deps: StatsRouteDeps): void {
  const { asyncHandler, requireOrgReader } = deps.core.http;
  router.get('/organization/:org/proxycache/stats', asyncHandler(async (req, res) => {
    const org = await requireOrgReader(req);
    const config = await deps.configs.get(org.id);
    if (!config) throw new RegistryError('NOT_FOUND', `organization ${org.name} is not a proxy cache`);
    const window = req.query.window ?? '24h';
    if (typeof window !== 'string' || !(window in WINDOWS)) throw new RegistryError('INVALID_REQUEST', 'window: expected one of 24h, 7d, 30d', { detail: { field: 'window' } });
    // What this replica counted so far is included; other replicas' within their flush interval.
    await deps.recorder.flush();
    const endpoint = endpointOf(config);
    res.json(await cacheStats(deps.core, org, window as StatsWindow, { host: new URL(endpoint).host, breaker: deps.breakerState(endpoint) }));
  }));
}
