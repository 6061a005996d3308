import { Router } from 'express';
import type { Db } from '../../db/database';
import type { CoreMetrics } from '../../metrics/metrics';
import type { Storage } from '../../storage/blob-store';
import { asyncHandler } from '../async-handler';
import { parseDigest } from '../../oci/digest';

const PROBE_DIGEST = parseDigest(`sha256:${'0'.repeat(64)}`);

/** Liveness (`/health/instance`), dependency checks (`/health/endtoend`) and `/metrics`. */
export function healthRouter(deps: { db: Db; storage: Storage; metrics: CoreMetrics; isDraining: () => boolean }): Router {
  const router = Router();
  router.get('/health/instance', (_req, res) => {
    res.status(deps.isDraining() ? 503 : 200).json({ status: deps.isDraining() ? 'draining' : 'ok' });
  });
  router.get('/health/endtoend', asyncHandler(async (_req, res) => {
    const checks: Record<string, boolean> = {};
    checks.database = await deps.db.raw('select 1').then(() => true, () => false);
    checks.storage = await deps.storage.blobs.stat(PROBE_DIGEST).then(() => true, () => false);
    const ok = Object.values(checks).every(Boolean) && !deps.isDraining();
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'failing', checks });
  }));
  router.get('/metrics', asyncHandler(async (_req, res) => {
    res.set('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  }));
  return router;
}
