import { randomUUID } from 'node:crypto';
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

export const AUDIT_JOB = 'audit.write';

/**
 * Writes audit entries through the job queue so requests never wait on them.
 * If the queue is unreachable the entry is written directly; the write is
 * idempotent (entry_id is unique), so a job retried after a blip never duplicates.
 */
export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly queue: JobQueue,
    private readonly logger: Logger,
    private readonly metrics: CoreMetrics,
    private readonly clock: Clock,
  ) {}

  registerJobs(): void {
    this.queue.register<AuditRow>(AUDIT_JOB, (row) => this.insert(row), { concurrency: 8 });
  }

  /** Never throws: failures are logged with the entry so nothing disappears silently. */
  async record(entry: AuditEntry): Promise<void> {
    const row: AuditRow = {
      entry_id: randomUUID(),
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
    try {
      await this.queue.enqueue(AUDIT_JOB, row, { jobId: row.entry_id, attempts: 20 });
    } catch (queueError) {
      this.metrics.auditFallbackWrites.inc();
      try {
        await this.insert(row);
      } catch (dbError) {
        this.logger.error('audit entry could not be written', { entry: row, queueError: String(queueError), dbError: String(dbError) });
      }
    }
  }

  private async insert(row: AuditRow): Promise<void> {
    await this.db('audit_logs').insert(row).onConflict('entry_id').ignore();
  }
}
