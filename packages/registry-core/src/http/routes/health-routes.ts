import { Router } from 'express';
import type { CoreMetrics } from '../../metrics/metrics';
import type { Storage } from '../../storage/blob-store';
import { asyncHandler } from '../async-handler';
import { parseDigest } from '../../oci/digest';

const PROBE_DIGEST = parseDigest(`sha256:${'0'.repeat(64)}`);

/** A dependency reported by `/health/endtoend` that does not decide the answer (pulls work without it). */
export interface AdvisoryCheck {
  name: string;
  check(): Promise<{ status: string; error?: string }>;
}

/**
 * Liveness (`/health/instance`), dependency checks (`/health/endtoend`, also
 * `/health`) and `/metrics`. Advisory checks (the security scanner) are listed
 * under `services` and never fail the instance.
 */
export function healthRouter(deps: { databaseReachable: () => Promise<boolean>; storage: Storage; metrics: CoreMetrics; isDraining: () => boolean; advisory?: AdvisoryCheck[] }): Router {
  const router = Router();
  router.get('/health/instance', (_req, res) => {
    res.status(deps.isDraining() ? 503 : 200).json({ status: deps.isDraining() ? 'draining' : 'ok' });
  });
  const endToEnd = asyncHandler(async (_req, res) => {
    const checks: Record<string, boolean> = {};
    checks.database = await deps.databaseReachable();
    checks.storage = await deps.storage.blobs.stat(PROBE_DIGEST).then(() => true, () => false);
    const services: Record<string, { status: string; error?: string }> = {};
    for (const advisory of deps.advisory ?? []) {
      services[advisory.name] = await advisory.check().catch((err: unknown) => ({ status: 'failing', error: String(err) }));
    }
    const ok = Object.values(checks).every(Boolean) && !deps.isDraining();
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'failing', checks, ...(deps.advisory?.length ? { services } : {}) });
  });
  router.get('/health/endtoend', endToEnd);
  router.get('/health', endToEnd);
  router.get('/metrics', asyncHandler(async (_req, res) => {
    res.set('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  }));
  return router;
}
