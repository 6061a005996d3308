import type { TokenService } from '../auth/token-service';
import type { Config } from '../config/config';
import type { ChangeNotices } from '../coordination/change-notices';
import type { Db } from '../db/database';
import { RegistryError } from '../errors/registry-error';
import type { JobQueue } from '../jobs/job-queue';
import type { Logger } from '../logging/logger';
import type { CoreMetrics } from '../metrics/metrics';
import type { Digest } from '../oci/digest';
import type { Clock } from '../services/clock';
import type { ContentService } from '../services/content-service';
import type { Storage } from '../storage/blob-store';
import { ClairClient, ScannerUnreachableError } from './clair-client';
import { LayerAccess } from './layer-access';
import { PullPolicy, type PullRefusal } from './pull-policy';
import { convertReport, withoutVulnerabilities, type QuayLayer } from './quay-report';
import { scannerSetup, type ScannerSetup } from './scanner-config';
import { createScanMetrics, type ScanMetrics } from './scan-metrics';
import { SCAN_RESCAN_JOB, ScanScheduler } from './scan-scheduler';
import { ScanStore, type ScanRow, type ScanStatus } from './scan-store';
import { SCAN_INDEX_JOB, ScanWorker, type ScanIndexJob } from './scan-worker';
import { emptyCounts, SEVERITIES, type Severity, type SeverityCounts } from './severity';

/** What `.../manifest/{digest}/security` answers (Quay's shape, plus the reason of a failed scan). */
export interface SecurityAnswer {
  status: ScanStatus;
  data: { Layer: QuayLayer } | null;
  reason?: string;
}

/** A tag's scan summary in tag listings. */
export interface ScanSummary {
  status: ScanStatus;
  counts: SeverityCounts;
  highest: Severity | null;
}

export interface ScannerHealth {
  status: 'off' | 'ok' | 'unreachable' | 'misconfigured';
  error?: string;
}

export interface SecurityScanningDeps {
  config: Config;
  db: Db;
  queue: JobQueue;
  content: ContentService;
  storage: Storage;
  tokens: TokenService;
  clock: Clock;
  logger: Logger;
  metrics: CoreMetrics;
  notices: ChangeNotices;
  /** The port the server listens on, once it does (layer URLs on loopback). */
  listenPort: () => number | null;
}

function highest(counts: SeverityCounts): Severity | null {
  for (let i = SEVERITIES.length - 1; i >= 0; i--) if (counts[SEVERITIES[i]] > 0) return SEVERITIES[i];
  return null;
}

/**
 * Security scanning with Clair v4: submission of stored manifests as jobs,
 * the periodic pass, stored results in Quay's shape, the pull policy and
 * the scanner's health. With the feature off it does nothing and costs the
 * pull path nothing.
 */
export class SecurityScanning {
  readonly setup: ScannerSetup;
  readonly store: ScanStore;
  readonly policy: PullPolicy;
  private readonly metrics: ScanMetrics;
  private readonly clair: ClairClient | null = null;
  private readonly scheduler: ScanScheduler | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: SecurityScanningDeps) {
    this.setup = scannerSetup(deps.config);
    this.store = new ScanStore(deps.db, deps.clock);
    this.policy = new PullPolicy(deps.db, this.store, deps.clock, deps.notices);
    this.metrics = createScanMetrics(deps.metrics, deps.db, { countVulnerabilities: this.setup.state === 'on' });
    if (this.setup.state === 'misconfigured') {
      deps.logger.error('security scanning is not running: the configuration is invalid', { error: this.setup.error });
      return;
    }
    if (this.setup.state !== 'on') return;
    const settings = this.setup.settings;
    this.clair = new ClairClient(settings);
    const scheduler = new ScanScheduler({ db: deps.db, queue: deps.queue, store: this.store, clair: this.clair, clock: deps.clock, logger: deps.logger, metrics: this.metrics, rescanIntervalMs: settings.rescanIntervalMs });
    this.scheduler = scheduler;
    const worker = new ScanWorker({
      db: deps.db,
      storage: deps.storage,
      content: deps.content,
      clock: deps.clock,
      logger: deps.logger,
      store: this.store,
      clair: this.clair,
      layers: new LayerAccess(deps.config, settings, deps.tokens, deps.listenPort),
      metrics: this.metrics,
    });
    deps.queue.register<ScanIndexJob>(SCAN_INDEX_JOB, (job) => worker.run(job), { concurrency: 2 });
    deps.queue.register(SCAN_RESCAN_JOB, () => scheduler.rescan(), { concurrency: 1 });
    deps.content.onManifestStored(({ repoId, digest, parsed }) => scheduler.manifestStored(repoId, digest, parsed));
  }

  get enabled(): boolean {
    return this.setup.state === 'on';
  }

  /** After the server listens: checks Clair once (an error is logged, never fatal) and starts the periodic pass. */
  async start(): Promise<void> {
    if (!this.scheduler || this.setup.state !== 'on') return;
    const health = await this.health();
    if (health.status === 'ok') this.deps.logger.info('security scanner reachable', { indexer: this.setup.settings.indexerUrl });
    else this.deps.logger.error('security scanner unreachable at start-up; scans wait in the queue until it answers', { error: health.error });
    const scheduler = this.scheduler;
    const requestRescan = (): void => void scheduler.requestRescan().catch((err: unknown) => this.deps.logger.warn('rescan not queued', { error: String(err) }));
    this.timer = setInterval(requestRescan, this.setup.settings.rescanIntervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.scheduler?.flush();
  }

  async health(): Promise<ScannerHealth> {
    if (this.setup.state === 'off') return { status: 'off' };
    if (this.setup.state === 'misconfigured') return { status: 'misconfigured', error: this.setup.error };
    try {
      await this.clair!.indexState();
      return { status: 'ok' };
    } catch (err) {
      return { status: 'unreachable', error: (err as Error).message };
    }
  }

  /** The pull policy's verdict; always null while scanning is not running. */
  async checkPull(org: { id: number; name: string }, repository: string, manifest: { digest: Digest; mediaType: string }): Promise<PullRefusal | null> {
    if (!this.enabled) return null;
    return this.policy.check(org, repository, manifest);
  }

  countBlocked(org: string): void {
    this.metrics.pullsBlocked.inc({ org });
  }

  /**
   * The security answer for a stored manifest. Throws FEATURE_DISABLED when
   * scanning is off, and a 520 UNAVAILABLE when the report is not stored yet
   * and Clair cannot be reached.
   */
  async answer(digest: Digest, withVulnerabilities: boolean): Promise<SecurityAnswer> {
    if (this.setup.state === 'off') throw new RegistryError('FEATURE_DISABLED', 'security scanning is disabled (FEATURE_SECURITY_SCANNER=false)');
    if (this.setup.state === 'misconfigured') throw new RegistryError('UNAVAILABLE', `the security scanner is misconfigured: ${this.setup.error}`, { status: 520 });
    const row = await this.store.getReport(digest);
    if (row && row.status === 'scanned' && row.layer) return { status: 'scanned', data: { Layer: withVulnerabilities ? row.layer : withoutVulnerabilities(row.layer) } };
    if (row && (row.status === 'failed' || row.status === 'unsupported')) return { status: row.status, data: null, ...(row.reason ? { reason: row.reason } : {}) };
    // Not stored yet: Clair may have it already (indexed for another registry, or the job is finishing).
    try {
      const live = await this.clair!.vulnerabilityReport(digest);
      if (live) {
        const layer = convertReport(digest, live).layer;
        return { status: 'scanned', data: { Layer: withVulnerabilities ? layer : withoutVulnerabilities(layer) } };
      }
    } catch (err) {
      if (err instanceof ScannerUnreachableError) throw new RegistryError('UNAVAILABLE', `the security scanner could not be reached: ${err.message}`, { status: 520 });
      throw new RegistryError('UNAVAILABLE', `the security scanner failed: ${(err as Error).message}`, { status: 520 });
    }
    if (!row) await this.scheduler!.submit(digest).catch((err: unknown) => this.deps.logger.warn('scan not queued', { digest, error: String(err) }));
    return { status: 'queued', data: null };
  }

  /**
   * Summaries for tag listings, keyed by the tags' manifest digests; an index
   * sums the platforms the repository holds. Empty while scanning is not running.
   */
  async summaries(repoId: number, manifests: Array<{ digest: Digest; isIndex: boolean }>): Promise<Map<Digest, ScanSummary>> {
    const out = new Map<Digest, ScanSummary>();
    if (!this.enabled || manifests.length === 0) return out;
    const indexes = manifests.filter((m) => m.isIndex).map((m) => m.digest);
    const children = new Map<Digest, Digest[]>();
    if (indexes.length > 0) {
      const refs = await this.deps.db('manifest_refs as f')
        .join('manifests as m', (j) => j.on('m.repo_id', 'f.repo_id').andOn('m.digest', 'f.child_digest'))
        .where('f.repo_id', repoId)
        .where('f.child_kind', 'manifest')
        .whereIn('f.manifest_digest', indexes)
        .select('f.manifest_digest', 'f.child_digest');
      for (const r of refs as Array<{ manifest_digest: Digest; child_digest: Digest }>) children.set(r.manifest_digest, [...(children.get(r.manifest_digest) ?? []), r.child_digest]);
    }
    const rows = await this.store.summaries([...manifests.map((m) => m.digest), ...[...children.values()].flat()]);
    for (const m of manifests) {
      if (!m.isIndex) {
        const row = rows.get(m.digest);
        if (row) out.set(m.digest, { status: row.status, counts: row.counts, highest: row.status === 'scanned' ? highest(row.counts) : null });
        continue;
      }
      const parts = (children.get(m.digest) ?? []).map((d) => rows.get(d)).filter((r): r is ScanRow => r !== undefined);
      out.set(m.digest, aggregate(parts));
    }
    return out;
  }
}

/** An index's summary: counts summed over its scanned platforms; queued while any is, failed when one failed. */
function aggregate(parts: ScanRow[]): ScanSummary {
  const counts = emptyCounts();
  for (const p of parts) if (p.status === 'scanned') for (const s of SEVERITIES) counts[s] += p.counts[s];
  const has = (s: ScanStatus): boolean => parts.some((p) => p.status === s);
  const status: ScanStatus = parts.length === 0 ? 'unsupported' : has('queued') ? 'queued' : has('failed') ? 'failed' : has('scanned') ? 'scanned' : 'unsupported';
  return { status, counts, highest: has('scanned') ? highest(counts) : null };
}
