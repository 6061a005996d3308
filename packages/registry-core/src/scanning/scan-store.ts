import type { Db } from '../db/database';
import type { Digest } from '../oci/digest';
import type { Clock } from '../services/clock';
import type { Finding, QuayLayer } from './quay-report';
import { emptyCounts, type SeverityCounts } from './severity';

export type ScanStatus = 'queued' | 'scanned' | 'failed' | 'unsupported';

export interface ScanRow {
  digest: Digest;
  status: ScanStatus;
  reason: string | null;
  attempts: number;
  indexerState: string | null;
  counts: SeverityCounts;
  queuedAt: number;
  scannedAt: number | null;
  updatedAt: number;
}

export interface ScanReport extends ScanRow {
  layer: QuayLayer | null;
  findings: Finding[];
}

const SUMMARY_COLUMNS = ['manifest_digest', 'status', 'reason', 'attempts', 'indexer_state', 'counts', 'queued_at', 'scanned_at', 'updated_at'];

function toRow(r: Record<string, unknown>): ScanRow {
  return {
    digest: r.manifest_digest as Digest,
    status: r.status as ScanStatus,
    reason: r.reason === null || r.reason === undefined ? null : String(r.reason),
    attempts: Number(r.attempts),
    indexerState: r.indexer_state === null || r.indexer_state === undefined ? null : String(r.indexer_state),
    counts: r.counts ? { ...emptyCounts(), ...(JSON.parse(String(r.counts)) as Partial<SeverityCounts>) } : emptyCounts(),
    queuedAt: Number(r.queued_at),
    scannedAt: r.scanned_at === null || r.scanned_at === undefined ? null : Number(r.scanned_at),
    updatedAt: Number(r.updated_at),
  };
}

/** Scan results per manifest digest (`security_scans`). SQL for scanning lives here. */
export class ScanStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async get(digest: Digest): Promise<ScanRow | null> {
    const row = await this.db('security_scans').where({ manifest_digest: digest }).first(SUMMARY_COLUMNS);
    return row ? toRow(row) : null;
  }

  async getReport(digest: Digest): Promise<ScanReport | null> {
    const row = await this.db('security_scans').where({ manifest_digest: digest }).first();
    if (!row) return null;
    return {
      ...toRow(row),
      layer: row.report ? (JSON.parse(String(row.report)) as QuayLayer) : null,
      findings: row.findings ? (JSON.parse(String(row.findings)) as Finding[]) : [],
    };
  }

  /** Status and findings only: what the pull policy reads. */
  async getFindings(digest: Digest): Promise<{ status: ScanStatus; findings: Finding[] } | null> {
    const row = await this.db('security_scans').where({ manifest_digest: digest }).first('status', 'findings');
    if (!row) return null;
    return { status: row.status as ScanStatus, findings: row.findings ? (JSON.parse(String(row.findings)) as Finding[]) : [] };
  }

  /** Summaries of many manifests at once (tag listings). */
  async summaries(digests: Digest[]): Promise<Map<Digest, ScanRow>> {
    const out = new Map<Digest, ScanRow>();
    const unique = [...new Set(digests)];
    for (let i = 0; i < unique.length; i += 500) {
      const rows = await this.db('security_scans').whereIn('manifest_digest', unique.slice(i, i + 500)).select(SUMMARY_COLUMNS);
      for (const r of rows) out.set(r.manifest_digest as Digest, toRow(r));
    }
    return out;
  }

  /** Records a manifest as queued unless it has a row already. */
  async addQueued(digest: Digest): Promise<void> {
    const now = this.clock.now();
    await this.db('security_scans').insert({ manifest_digest: digest, status: 'queued', attempts: 0, queued_at: now, updated_at: now }).onConflict('manifest_digest').ignore();
  }

  /** Queues a failed scan again (the manifest was stored again). */
  async reopen(digest: Digest): Promise<void> {
    const now = this.clock.now();
    await this.db('security_scans').where({ manifest_digest: digest, status: 'failed' }).update({ status: 'queued', attempts: 0, reason: null, queued_at: now, updated_at: now });
  }

  /** Puts a manifest back in the queue (a re-index); its current report stays readable meanwhile. */
  async requeue(digest: Digest, reason: string | null): Promise<void> {
    await this.db('security_scans').where({ manifest_digest: digest }).update({ attempts: 0, reason, updated_at: this.clock.now() });
  }

  async markUnsupported(digest: Digest, reason: string): Promise<void> {
    const now = this.clock.now();
    await this.db('security_scans')
      .insert({ manifest_digest: digest, status: 'unsupported', reason, attempts: 0, queued_at: now, updated_at: now })
      .onConflict('manifest_digest')
      .merge({ status: 'unsupported', reason, updated_at: now });
  }

  /** Notes a failed attempt; returns the attempts counted so far. */
  async noteAttempt(digest: Digest, reason: string): Promise<number> {
    await this.db('security_scans').where({ manifest_digest: digest }).update({ attempts: this.db.raw('attempts + 1'), reason, updated_at: this.clock.now() });
    const row = await this.db('security_scans').where({ manifest_digest: digest }).first('attempts');
    return row ? Number(row.attempts) : 0;
  }

  /** Records why a scan is still waiting (Clair unreachable, layers not stored yet) without counting it as a failure. */
  async noteWaiting(digest: Digest, reason: string): Promise<void> {
    await this.db('security_scans').where({ manifest_digest: digest }).update({ reason, updated_at: this.clock.now() });
  }

  async markFailed(digest: Digest, reason: string): Promise<void> {
    await this.db('security_scans').where({ manifest_digest: digest }).update({ status: 'failed', reason, updated_at: this.clock.now() });
  }

  async markScanned(digest: Digest, result: { indexerState: string | null; counts: SeverityCounts; findings: Finding[]; layer: QuayLayer }): Promise<void> {
    const now = this.clock.now();
    const values = {
      status: 'scanned',
      reason: null,
      attempts: 0,
      indexer_state: result.indexerState,
      counts: JSON.stringify(result.counts),
      findings: JSON.stringify(result.findings),
      report: JSON.stringify(result.layer),
      scanned_at: now,
      updated_at: now,
    };
    await this.db('security_scans')
      .insert({ manifest_digest: digest, queued_at: now, ...values })
      .onConflict('manifest_digest')
      .merge(values);
  }

  /** Rows due for the periodic pass: queued ones idle for `idleMs`, and scanned ones older than `refreshMs` or made under another indexer state. */
  async due(options: { idleMs: number; refreshMs: number; indexerState: string | null; limit: number }): Promise<Array<{ digest: Digest; status: ScanStatus; stale: boolean }>> {
    const now = this.clock.now();
    const queued = await this.db('security_scans')
      .where({ status: 'queued' })
      .where('updated_at', '<=', now - options.idleMs)
      .limit(options.limit)
      .select('manifest_digest');
    const scanned = await this.db('security_scans')
      .where({ status: 'scanned' })
      .where((q) => {
        q.where('scanned_at', '<=', now - options.refreshMs);
        if (options.indexerState !== null) q.orWhereNot('indexer_state', options.indexerState).orWhereNull('indexer_state');
      })
      .limit(options.limit)
      .select('manifest_digest', 'indexer_state');
    return [
      ...queued.map((r: Record<string, unknown>) => ({ digest: r.manifest_digest as Digest, status: 'queued' as const, stale: false })),
      ...scanned.map((r: Record<string, unknown>) => ({
        digest: r.manifest_digest as Digest,
        status: 'scanned' as const,
        stale: options.indexerState !== null && r.indexer_state !== options.indexerState,
      })),
    ];
  }

  /** Results of manifests no repository holds any more. */
  async removeOrphans(): Promise<number> {
    return this.db('security_scans').whereNotExists(this.db('manifests').whereRaw('manifests.digest = security_scans.manifest_digest').select(this.db.raw('1'))).delete();
  }
}
