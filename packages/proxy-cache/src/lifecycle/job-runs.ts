import type { Clock, Db } from '../core-types';

export type JobRunState = 'completed' | 'failed';

export interface JobRun {
  id: number;
  job: string;
  state: JobRunState;
  /** The instance that ran it. */
  replica: string;
  startedAt: number;
  durationMs: number;
  /** What the run did (counts, bytes, the error of a failed run); empty when there was nothing to do. */
  summary: Record<string, unknown>;
}

/** Runs kept per organization; older ones are pruned as new ones are recorded. */
const KEPT_PER_ORG = 500;

/** The record of lifecycle job runs per cache organization (the Jobs view). */
export class JobRuns {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly replica: string,
  ) {}

  async record(orgId: number, job: string, state: JobRunState, startedAt: number, summary: Record<string, unknown>): Promise<void> {
    const durationMs = Math.max(0, this.clock.now() - startedAt);
    await this.db('proxy_cache_job_runs').insert({ org_id: orgId, job, state, replica: this.replica, started_at: startedAt, duration_ms: durationMs, summary: JSON.stringify(summary) });
    const cutoff = await this.db('proxy_cache_job_runs').where({ org_id: orgId }).orderBy('id', 'desc').offset(KEPT_PER_ORG).first('id');
    if (cutoff) await this.db('proxy_cache_job_runs').where({ org_id: orgId }).where('id', '<=', cutoff.id).delete();
  }

  /** The most recent runs first. */
  async recent(orgId: number, limit: number, job?: string): Promise<JobRun[]> {
    let query = this.db('proxy_cache_job_runs').where({ org_id: orgId });
    if (job) query = query.where({ job });
    const rows = (await query.orderBy('id', 'desc').limit(limit)) as Array<Record<string, unknown>>;
    return rows.map((r) => ({
      id: Number(r.id),
      job: String(r.job),
      state: r.state === 'failed' ? 'failed' : 'completed',
      replica: String(r.replica),
      startedAt: Number(r.started_at),
      durationMs: Number(r.duration_ms),
      summary: r.summary ? (JSON.parse(String(r.summary)) as Record<string, unknown>) : {},
    }));
  }
}
