import type { Db } from '../db/database';
import type { Logger } from '../logging/logger';
import type { Digest } from '../oci/digest';
import type { Clock } from '../services/clock';
import type { ContentService } from '../services/content-service';
import type { Storage } from '../storage/blob-store';
import { ClairClient, ScannerResponseError, ScannerUnreachableError } from './clair-client';
import { layerPlan } from './image-layers';
import type { LayerAccess } from './layer-access';
import { convertReport } from './quay-report';
import type { ScanMetrics } from './scan-metrics';
import type { ScanStore } from './scan-store';

/** `scan.index`: index one manifest with Clair and store its vulnerability report. Data: `{ digest }`, nothing secret. */
export const SCAN_INDEX_JOB = 'scan.index';
export interface ScanIndexJob {
  digest: Digest;
}

/** Clair errors before a scan is marked failed. */
export const SCAN_FAILURE_ATTEMPTS = 3;

export const UNSUPPORTED_INDEX = 'an image index: each platform stored is scanned on its own';

/**
 * Runs `scan.index`. Idempotent: it reads the manifest again, and a run that
 * finds it gone does nothing. Throws (the queue retries with backoff) while
 * Clair is unreachable or the layers are not stored yet; Clair's own errors
 * count towards SCAN_FAILURE_ATTEMPTS, then the scan is marked failed with
 * Clair's reason.
 */
export class ScanWorker {
  constructor(
    private readonly deps: {
      db: Db;
      storage: Storage;
      content: ContentService;
      clock: Clock;
      logger: Logger;
      store: ScanStore;
      clair: ClairClient;
      layers: LayerAccess;
      metrics: ScanMetrics;
    },
  ) {}

  /** A repository holding the manifest (any: the content is the same), with its full name. */
  private async holder(digest: Digest): Promise<{ repoId: number; name: string } | null> {
    const row = await this.deps.db('manifests as m')
      .join('repositories as r', 'r.id', 'm.repo_id')
      .join('organizations as o', 'o.id', 'r.org_id')
      .where('m.digest', digest)
      .orderBy('m.created_at')
      .first('m.repo_id', 'r.name as repo', 'o.name as org');
    return row ? { repoId: Number(row.repo_id), name: `${String(row.org)}/${String(row.repo)}` } : null;
  }

  async run({ digest }: ScanIndexJob): Promise<void> {
    const { store, clair, metrics } = this.deps;
    const row = await store.get(digest);
    if (!row) return;
    const holder = await this.holder(digest);
    if (!holder) return;
    const hit = await this.deps.content.getManifest(holder.repoId, { kind: 'digest', digest });
    if (!hit) return;
    const plan = layerPlan(hit.body, hit.mediaType);
    if (plan.kind !== 'image') {
      await store.markUnsupported(digest, plan.kind === 'index' ? UNSUPPORTED_INDEX : plan.reason);
      if (plan.kind === 'unsupported') metrics.failed.inc({ reason: 'unsupported' });
      return;
    }
    // A cache fetches layers when a client pulls them; scanning never makes it fetch them.
    const missing: Digest[] = [];
    for (const layer of plan.layers) if (!(await this.deps.storage.blobs.stat(layer))) missing.push(layer);
    if (missing.length > 0) {
      const reason = `waiting for ${missing.length} of ${plan.layers.length} layers to be stored`;
      await store.noteWaiting(digest, reason);
      throw new Error(`${digest}: ${reason}`);
    }
    try {
      const { state } = await clair.index(digest, this.deps.layers.layers(holder.name, plan.layers));
      const report = await clair.vulnerabilityReport(digest);
      if (!report) throw new ScannerResponseError('Clair has no vulnerability report for the manifest it indexed', 404);
      const converted = convertReport(digest, report);
      await store.markScanned(digest, { indexerState: state, counts: converted.counts, findings: converted.findings, layer: converted.layer });
      metrics.completed.inc();
      if (row.status === 'queued') metrics.latency.observe(Math.max(0, this.deps.clock.now() - row.queuedAt) / 1000);
    } catch (err) {
      if (err instanceof ScannerUnreachableError) {
        await store.noteWaiting(digest, err.message);
        throw err;
      }
      if (err instanceof ScannerResponseError) {
        const attempts = await store.noteAttempt(digest, err.message);
        if (attempts >= SCAN_FAILURE_ATTEMPTS) {
          await store.markFailed(digest, err.message);
          metrics.failed.inc({ reason: 'scanner_error' });
          this.deps.logger.warn('security scan failed', { digest, error: err.message });
          return;
        }
      }
      throw err;
    }
  }
}
