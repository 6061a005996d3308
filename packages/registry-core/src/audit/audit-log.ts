import { v7 as timeOrderedUuid } from 'uuid';
import { Db } from '../db/database';
import { JobQueue } from '../jobs/job-queue';
import { Logger } from '../logging/logger';
import { CoreMetrics } from '../metrics/metrics';
import { Clock } from '../services/clock';
import { Principal, principalName } from '../auth/principal';

export interface AuditEntry {
  orgId: number | null;
  repo?: string;
  /** Quay's log kinds where they exist: pull_repo, push_repo, create_robot, ... */
  kind: string;
  performer: Principal;
  ip?: string;
  userAgent?: string;
  metadata?: Record<string, unknown>;
}

interface AuditRow {
  entry_id: string;
  org_id: number | null;
  repo: string | null;
  kind: string;
  performer_kind: string;
  performer_name: string;
  ip: string | null;
  user_agent: string | null;
  metadata: string;
  created_at: number;
}

/** One entry per job: the format of earlier releases, still accepted from a queue that holds such jobs. */
export const AUDIT_JOB = 'audit.write';
/** A batch of entries per job. */
export const AUDIT_BATCH_JOB = 'audit.write-batch';

/** How long entries gather before they are handed to the queue together. */
const BATCH_WINDOW_MS = 25;
const MAX_BATCH = 200;

interface PendingBatch {
  rows: AuditRow[];
  /** Settles once the batch is queued or written. */
  done: Promise<void>;
  settle: () => void;
}

/**
 * Writes audit entries through the job queue so requests never wait on them.
 * Entries recorded within a few milliseconds of each other travel as one job
 * and one multi-row INSERT, so a busy pull path costs a database write per
 * batch, not per pull. If the queue is unreachable the batch is written
 * directly; writes are idempotent (entry_id is unique), so a job retried after
 * a blip never duplicates.
 */
export class AuditLog {
  private pending: PendingBatch | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly flushing = new Set<Promise<void>>();

  constructor(
    private readonly db: Db,
    private readonly queue: JobQueue,
    private readonly logger: Logger,
    private readonly metrics: CoreMetrics,
    private readonly clock: Clock,
  ) {}

  registerJobs(): void {
    this.queue.register<{ rows: AuditRow[] }>(AUDIT_BATCH_JOB, ({ rows }) => this.insert(rows), { concurrency: 4 });
    this.queue.register<AuditRow>(AUDIT_JOB, (row) => this.insert([row]), { concurrency: 4 });
  }

  /**
   * Never throws: failures are logged with the entry so nothing disappears
   * silently. Resolves once the entry is queued (or written); callers on a
   * request path do not wait for it.
   */
  record(entry: AuditEntry): Promise<void> {
    const row: AuditRow = {
      // Time-ordered ids land at the end of the unique index; random ones touch a
      // random page of it per row, which made batch inserts ~3.5 × slower.
      entry_id: timeOrderedUuid(),
      org_id: entry.orgId,
      repo: entry.repo ?? null,
      kind: entry.kind,
      performer_kind: entry.performer.kind,
      performer_name: principalName(entry.performer),
      ip: entry.ip ?? null,
      user_agent: entry.userAgent?.slice(0, 512) ?? null,
      metadata: JSON.stringify(entry.metadata ?? {}),
      created_at: this.clock.now(),
    };
    const batch = (this.pending ??= newBatch());
    batch.rows.push(row);
    if (batch.rows.length >= MAX_BATCH) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), BATCH_WINDOW_MS);
    return batch.done;
  }

  /** Hands every gathered entry to the queue now, and waits for batches already on their way (shutdown). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    this.pending = null;
    if (batch) {
      const sending = this.send(batch.rows).finally(batch.settle);
      this.flushing.add(sending);
      void sending.finally(() => this.flushing.delete(sending));
    }
    await Promise.all([...this.flushing]);
  }

  private async send(rows: AuditRow[]): Promise<void> {
    try {
      await this.queue.enqueue(AUDIT_BATCH_JOB, { rows }, { jobId: `batch-${rows[0].entry_id}`, attempts: 20 });
    } catch (queueError) {
      this.metrics.auditFallbackWrites.inc(rows.length);
      try {
        await this.insert(rows);
      } catch (dbError) {
        for (const row of rows) this.logger.error('audit entry could not be written', { entry: row, queueError: String(queueError), dbError: String(dbError) });
      }
    }
  }

  private async insert(rows: AuditRow[]): Promise<void> {
    await this.db('audit_logs').insert(rows).onConflict('entry_id').ignore();
  }
}

function newBatch(): PendingBatch {
  let settle!: () => void;
  const done = new Promise<void>((resolve) => (settle = resolve));
  return { rows: [], done, settle };
}
