import { type CorePorts, type OrganizationRow } from '@entrepot/registry-core';
import type { JobHandler } from '../core-types';
import type { CacheConfig, CacheConfigStore } from '../config/cache-config-store';
import type { JobRuns } from './job-runs';
import type { LifecycleMetrics } from './lifecycle-metrics';

export const EXPIRE_JOB = 'cache.expire';
export const EVICT_JOB = 'cache.evict';
export const REFRESH_JOB = 'cache.refresh';
export type CacheJobName = typeof EXPIRE_JOB | typeof EVICT_JOB | typeof REFRESH_JOB;

/** Job data: only the organization (never secrets). */
export interface CacheJobData {
  orgId: number;
}

/** What one run of a job does for one organization; returns its summary, or null when there was nothing to do (recorded as an empty summary). */
export type CacheJobWork = (org: OrganizationRow, config: CacheConfig) => Promise<Record<string, unknown> | null>;

/** How long a run's lease lasts without renewal (renewed every third of it). */
const RUN_LEASE_MS = 60_000;

export interface LifecycleJobDeps {
  core: CorePorts;
  configs: CacheConfigStore;
  runs: JobRuns;
  metrics: LifecycleMetrics;
}

/** One pending job per job and organization: its queue id, also the key of its runs here. */
function jobKey(job: CacheJobName, orgId: number): string {
  return `${job}|${orgId}`;
}

/**
 * Queues the lifecycle jobs and wraps their work: one run per job and
 * organization at a time across replicas (a deterministic job id while it is
 * pending, and a lease while it runs), each run recorded, counted and timed.
 * A run that throws is retried by the queue with backoff.
 */
export class LifecycleJobs {
  /** Runs under way in this process, by `jobKey`. */
  private readonly running = new Set<string>();
  /**
   * Runs asked for while one was under way here: the request fell on the
   * running job's own id and was dropped, so another run follows this one.
   */
  private readonly askedAgain = new Set<string>();

  constructor(private readonly deps: LifecycleJobDeps) {}

  /** Queues `job` for the organization unless it is already pending. Throws when the queue is unreachable. */
  async enqueue(job: CacheJobName, orgId: number, delayMs?: number): Promise<void> {
    const data: CacheJobData = { orgId };
    await this.deps.core.queue.enqueue(job, data, { jobId: jobKey(job, orgId), delayMs });
  }

  /** Like `enqueue`, logging instead of throwing (callers on request paths). */
  request(job: CacheJobName, orgId: number): void {
    const key = jobKey(job, orgId);
    if (this.running.has(key)) this.askedAgain.add(key);
    this.enqueue(job, orgId).catch((err: unknown) => this.deps.core.logger.warn('cache job not queued', { job, orgId, error: String(err) }));
  }

  handler(job: CacheJobName, work: CacheJobWork): JobHandler<CacheJobData> {
    return async (data) => {
      const key = jobKey(job, Number(data.orgId));
      this.running.add(key);
      try {
        await this.run(job, work, data);
      } finally {
        this.running.delete(key);
        // Once this run's job id is free again.
        if (this.askedAgain.delete(key)) setTimeout(() => this.request(job, Number(data.orgId)), 0);
      }
    };
  }

  private async run(job: CacheJobName, work: CacheJobWork, data: CacheJobData): Promise<void> {
    const { core, configs } = this.deps;
    const org = await core.repositories.findOrgById(Number(data.orgId));
    const config = org ? await configs.get(org.id) : null;
    // The organization was deleted or is no longer a cache: nothing to do, nothing to retry.
    if (!org || !config) return;
    const lease = await core.coordinator.tryAcquire(`cache-job:${job}:${org.id}`, RUN_LEASE_MS);
    // Another replica is running this job for this organization right now.
    if (!lease) return;
    const renewal = setInterval(() => void lease.renew().catch(() => false), RUN_LEASE_MS / 3);
    renewal.unref();
    const startedAt = core.clock.now();
    const timer = this.deps.metrics.jobSeconds.startTimer({ job });
    try {
      const summary = await work(org, config);
      timer();
      this.deps.metrics.jobs.inc({ job, state: 'completed' });
      await this.deps.runs.record(org.id, job, 'completed', startedAt, summary ?? {});
    } catch (err) {
      timer();
      this.deps.metrics.jobs.inc({ job, state: 'failed' });
      const error = err instanceof Error ? err.message : String(err);
      await this.deps.runs.record(org.id, job, 'failed', startedAt, { error }).catch(() => undefined);
      throw err;
    } finally {
      clearInterval(renewal);
      await lease.release();
    }
  }
}

/**
 * Queues the periodic jobs of every cache organization once per interval. Each
 * replica ticks, but only the one that takes the interval's lease queues, so a
 * job is queued once per interval however many replicas run.
 */
export class LifecycleScheduler {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: LifecycleJobDeps,
    private readonly jobs: LifecycleJobs,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async tick(): Promise<void> {
    const { core, configs } = this.deps;
    try {
      // Real time, not the service clock: the interval is a timer's.
      const slot = Math.floor(Date.now() / this.intervalMs);
      if (!(await core.coordinator.tryAcquire(`cache-lifecycle-tick:${slot}`, 2 * this.intervalMs))) return;
      for (const config of await configs.listAll()) {
        if (config.idleExpirationS) await this.jobs.enqueue(EXPIRE_JOB, config.orgId);
        if (config.refreshMinPulls) await this.jobs.enqueue(REFRESH_JOB, config.orgId);
        if (await this.aboveWatermark(config)) await this.jobs.enqueue(EVICT_JOB, config.orgId);
      }
    } catch (err) {
      core.logger.warn('cache lifecycle jobs not queued', { error: String(err) });
    }
  }

  /** Whether the organization's counted usage (an upper bound) exceeds its low watermark. */
  private async aboveWatermark(config: CacheConfig): Promise<boolean> {
    if (!config.lowWatermark) return false;
    const quota = await this.deps.core.quotas.get(config.orgId);
    return quota !== null && quota.counted !== null && quota.counted.bytes > quota.hardLimitBytes * config.lowWatermark;
  }
}
