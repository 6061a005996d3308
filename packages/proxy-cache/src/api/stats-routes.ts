import type { Router } from 'express';
import { z } from 'zod';
import { RegistryError, type CorePorts } from '@entrepot/registry-core';
import { endpointOf, type CacheConfigStore } from '../config/cache-config-store';
import { cacheStats, type StatsWindow } from '../stats/stats-query';
import type { StatsRecorder } from '../stats/stats-recorder';

export interface StatsRouteDeps {
  core: CorePorts;
  configs: CacheConfigStore;
  recorder: StatsRecorder;
  /** This replica's circuit breaker state for an upstream endpoint. */
  breakerState(endpoint: string): string;
}

export const statsQuery = z.object({ window: z.enum(['24h', '7d', '30d']).optional().meta({ description: 'default 24h' }) });

/** `GET /organization/{org}/proxycache/stats?window=24h|7d|30d` (organization members). */
export function statsRoutes(router: Router, deps: StatsRouteDeps): void {
  const { asyncHandler, requireOrgReader } = deps.core.http;
  router.get('/organization/:org/proxycache/stats', asyncHandler(async (req, res) => {
    const org = await requireOrgReader(req);
    const config = await deps.configs.get(org.id);
    if (!config) throw new RegistryError('NOT_FOUND', `organization ${org.name} is not a proxy cache`);
    const query = statsQuery.safeParse(req.query);
    if (!query.success || Array.isArray(req.query.window)) throw new RegistryError('INVALID_REQUEST', 'window: expected one of 24h, 7d, 30d', { detail: { field: 'window' } });
    const window: StatsWindow = query.data.window ?? '24h';
    await deps.recorder.flush();
    const endpoint = endpointOf(config);
    res.json(await cacheStats(deps.core, org, window, { host: new URL(endpoint).host, breaker: deps.breakerState(endpoint) }));
  }));
}
