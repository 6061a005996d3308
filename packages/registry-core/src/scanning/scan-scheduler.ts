import type { Db } from '../db/database';
import type { JobQueue } from '../jobs/job-queue';
import type { Logger } from '../logging/logger';
import type { Digest } from '../oci/digest';
import type { ParsedManifest } from '../oci/manifest';
import type { Clock } from '../services/clock';
import { ClairClient, ScannerUnreachableError } from './clair-client';
import { convertReport } from './quay-report';
import type { ScanMetrics } from './scan-metrics';
import type { ScanStore } from './scan-store';
import { SCAN_INDEX_JOB, UNSUPPORTED_INDEX, type ScanIndexJob } from './scan-worker';

/** `scan.rescan`: the periodic pass (new vulnerability data, indexer changes, scans left queued). No data. */
export const SCAN_RESCAN_JOB = 'scan.rescan';

/** Queue attempts of one `scan.index` job; the periodic pass queues what is still waiting after them. */
const INDEX_JOB_ATTEMPTS = 12;
/** Rows the periodic pass handles per run. */
const RESCAN_BATCH = 500;

export function scanJobId(digest: Digest): string {
  return `${SCAN_INDEX_JOB}-${digest}`;
}

/**
 * Puts stored manifests in the scan queue and runs the periodic pass. Queuing
 * never holds up the request that stored the manifest: it runs after it, and
 * a queue that is down leaves the manifest `queued` for the periodic pass.
 */
export class ScanScheduler {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly deps: { db: Db; queue: JobQueue; store: ScanStore; clair: ClairClient; clock: Clock; logger: Logger; metrics: ScanMetrics; rescanIntervalMs: number },
  ) {}

  /** ContentService listener: returns at once. */
  manifestStored(repoId: number, digest: Digest, parsed: ParsedManifest): void {
    const work = this.submitStored(repoId, digest, parsed)
      .catch((err: unknown) => this.deps.logger.warn('scan not queued; the periodic pass will queue it', { digest, error: String(err) }))
      .finally(() => this.inFlight.delete(work));
    this.inFlight.add(work);
  }

  private async submitStored(repoId: number, digest: Digest, parsed: ParsedManifest): Promise<void> {
    if (!parsed.isIndex) return this.submit(digest);
    await this.deps.store.markUnsupported(digest, UNSUPPORTED_INDEX);
    // Children this repository holds are scanned; one never pulled is not fetched for it.
    const children = parsed.manifests.map((d) => d.digest);
    if (children.length === 0) return;
    const stored = (await this.deps.db('manifests').where({ repo_id: repoId }).whereIn('digest', children).pluck('digest')) as Digest[];
    for (const child of stored) await this.submit(child);
  }

  /** Queues a scan unless the manifest has results already (a failed scan is tried again). */
  async submit(digest: Digest): Promise<void> {
    const row = await this.deps.store.get(digest);
    if (row && (row.status === 'scanned' || row.status === 'unsupported')) return;
    if (!row) await this.deps.store.addQueued(digest);
    else if (row.status === 'failed') await this.deps.store.reopen(digest);
    await this.enqueue(digest);
    this.deps.metrics.queued.inc();
  }

  private enqueue(digest: Digest): Promise<void> {
    return this.deps.queue.enqueue<ScanIndexJob>(SCAN_INDEX_JOB, { digest }, { jobId: scanJobId(digest), attempts: INDEX_JOB_ATTEMPTS });
  }

  /** Asks for a periodic pass (deduplicated across replicas by its job id). */
  requestRescan(): Promise<void> {
    return this.deps.queue.enqueue(SCAN_RESCAN_JOB, {}, { jobId: SCAN_RESCAN_JOB, attempts: 1 });
  }

  /**
   * The periodic pass: reports older than the interval are fetched again (Clair
   * matches stored indexes against new vulnerability data); manifests indexed
   * under another indexer state are indexed again; scans still queued after
   * their job's retries are queued again; results nothing holds are dropped.
   */
  async rescan(): Promise<void> {
    const { store, clair, logger } = this.deps;
    let state: string | null;
    try {
      state = await clair.indexState();
    } catch (err) {
      // Nothing can progress without Clair; queued scans wait for the next pass.
      logger.warn('security scanner unreachable; rescan skipped', { error: String(err) });
      return;
    }
    await store.removeOrphans();
    const due = await store.due({ idleMs: Math.min(this.deps.rescanIntervalMs, 60_000), refreshMs: this.deps.rescanIntervalMs, indexerState: state, limit: RESCAN_BATCH });
    for (const item of due) {
      try {
        if (item.status === 'queued') await this.enqueue(item.digest);
        else if (item.stale) {
          await store.requeue(item.digest, 'indexing again: the scanner changed');
          await this.enqueue(item.digest);
        } else await this.refresh(item.digest, state);
      } catch (err) {
        if (err instanceof ScannerUnreachableError) return;
        logger.warn('rescan of a manifest failed', { digest: item.digest, error: String(err) });
      }
    }
  }

  private async refresh(digest: Digest, state: string): Promise<void> {
    const report = await this.deps.clair.vulnerabilityReport(digest);
    if (!report) {
      // Clair lost the index (a new database): index it again.
      await this.deps.store.requeue(digest, 'indexing again: the scanner no longer knows this manifest');
      await this.enqueue(digest);
      return;
    }
    const converted = convertReport(digest, report);
    await this.deps.store.markScanned(digest, { indexerState: state, counts: converted.counts, findings: converted.findings, layer: converted.layer });
  }

  /** Waits for submissions under way (shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }
}
