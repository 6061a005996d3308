import type { Router } from 'express';
import { RegistryError, type CoreServices } from '@entrepot/registry-core';
import type { CacheConfigStore } from '../config/cache-config-store';
import type { JobRuns } from '../lifecycle/job-runs';
import { EVICT_JOB, EXPIRE_JOB, REFRESH_JOB } from '../lifecycle/lifecycle-jobs';

export interface JobsRouteDeps {
  core: CoreServices;
  configs: CacheConfigStore;
  runs: JobRuns;
}

const JOB_NAMES: readonly string[] = [EXPIRE_JOB, EVICT_JOB, REFRESH_JOB];

/** `GET /organization/{org}/proxycache/jobs[?job=&limit=]`: recent lifecycle job runs, newest first (org admins). */
export function jobsRoutes(router: Router, deps: JobsRouteDeps): void {
  const { asyncHandler, requireOrgAdmin } = deps.core.http;
  router.get('/organization/:org/proxycache/jobs', asyncHandler(async (req, res) => {
    const org = await requireOrgAdmin(req);
    if (!(await deps.configs.get(org.id))) throw new RegistryError('NOT_FOUND', `organization ${org.name} is not a proxy cache`);
    const job = typeof req.query.job === 'string' ? req.query.job : undefined;
    if (job !== undefined && !JOB_NAMES.includes(job)) throw new RegistryError('INVALID_REQUEST', `job: expected one of ${JOB_NAMES.join(', ')}`, { detail: { field: 'job' } });
    const rawLimit = typeof req.query.limit === 'string' ? Number(req.query.limit) : 50;
    if (!Number.isInteger(rawLimit) || rawLimit < 1 || rawLimit > 500) throw new RegistryError('INVALID_REQUEST', 'limit: expected an integer from 1 to 500', { detail: { field: 'limit' } });
    const runs = await deps.runs.recent(org.id, rawLimit, job);
    res.json({
      runs: runs.map((r) => ({ id: r.id, job: r.job, state: r.state, replica: r.replica, started: new Date(r.startedAt).toISOString(), duration_ms: r.durationMs, summary: r.summary })),
    });
  }));
}
