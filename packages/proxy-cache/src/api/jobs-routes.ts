import type { Router } from 'express';
import { z } from 'zod';
import { RegistryError, type CorePorts } from '@entrepot/registry-core';
import type { CacheConfigStore } from '../config/cache-config-store';
import type { JobRuns } from '../lifecycle/job-runs';
import { EVICT_JOB, EXPIRE_JOB, REFRESH_JOB } from '../lifecycle/lifecycle-jobs';

export interface JobsRouteDeps {
  core: CorePorts;
  configs: CacheConfigStore;
  runs: JobRuns;
}

const JOB_NAMES: readonly string[] = [EXPIRE_JOB, EVICT_JOB, REFRESH_JOB];

export const jobsQuery = z.object({
  job: z.enum([EXPIRE_JOB, EVICT_JOB, REFRESH_JOB]).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional().meta({ description: 'default 50' }),
});

/** `GET /organization/{org}/proxycache/jobs[?job=&limit=]`: recent lifecycle job runs, newest first (org admins). */
export function jobsRoutes(router: Router, deps: JobsRouteDeps): void {
  const { asyncHandler, requireOrgAdmin } = deps.core.http;
  router.get('/organization/:org/proxycache/jobs', asyncHandler(async (req, res) => {
    const org = await requireOrgAdmin(req);
    if (!(await deps.configs.get(org.id))) throw new RegistryError('NOT_FOUND', `organization ${org.name} is not a proxy cache`);
    const query = jobsQuery.safeParse(req.query);
    if (!query.success) {
      const field = String(query.error.issues[0].path[0] ?? 'job');
      const message = field === 'limit' ? 'limit: expected an integer from 1 to 500' : `job: expected one of ${JOB_NAMES.join(', ')}`;
      throw new RegistryError('INVALID_REQUEST', message, { detail: { field } });
    }
    const rawLimit = query.data.limit ?? 50;
    const job = query.data.job;
    const runs = await deps.runs.recent(org.id, rawLimit, job);
    res.json({
      runs: runs.map((r) => ({ id: r.id, job: r.job, state: r.state, replica: r.replica, started: new Date(r.startedAt).toISOString(), duration_ms: r.durationMs, summary: r.summary })),
    });
  }));
}
