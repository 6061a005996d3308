import { Logger } from '../logging/logger';
import { DEFAULT_JOB_ATTEMPTS, EnqueueOptions, JobHandler, JobQueue, jobBackoffMs, UnrecoverableJobError } from './job-queue';

interface PendingJob {
  name: string;
  data: unknown;
  attempt: number;
  maxAttempts: number;
  jobId?: string;
}


/** The embedded default: jobs run in this process, with retries and backoff. */
export class InProcessQueue implements JobQueue {
  readonly kind = 'in-process';
  private readonly handlers = new Map<string, { handler: JobHandler; concurrency: number; running: number }>();
  private readonly ready: PendingJob[] = [];
  private readonly pendingIds = new Set<string>();
  private readonly timers = new Map<NodeJS.Timeout, PendingJob>();
  private started = false;
  private closing = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly logger: Logger) {}

  register<T>(name: string, handler: JobHandler<T>, options: { concurrency?: number } = {}): void {
    this.handlers.set(name, { handler: handler as JobHandler, concurrency: options.concurrency ?? 4, running: 0 });
  }

  async enqueue<T>(name: string, data: T, options: EnqueueOptions = {}): Promise<void> {
    if (!this.handlers.has(name)) throw new Error(`no handler registered for job "${name}"`);
    // After close nothing would run the job: fail so the caller can fall back (as with an unreachable backend).
    if (this.closed) throw new Error('job queue is closed');
    if (options.jobId) {
      if (this.pendingIds.has(options.jobId)) return;
      this.pendingIds.add(options.jobId);
    }
    const job: PendingJob = { name, data, attempt: 0, maxAttempts: options.attempts ?? DEFAULT_JOB_ATTEMPTS, jobId: options.jobId };
    if (options.delayMs && options.delayMs > 0 && !this.closing) this.schedule(job, options.delayMs);
    else this.push(job);
  }

  async start(): Promise<void> {
    this.started = true;
    this.pump();
  }

  private push(job: PendingJob): void {
    this.ready.push(job);
    this.pump();
  }

  private schedule(job: PendingJob, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.push(job);
    }, delayMs);
    timer.unref();
    this.timers.set(timer, job);
  }

  private pump(): void {
    if (!this.started) return;
    for (let i = 0; i < this.ready.length; ) {
      const job = this.ready[i];
      const entry = this.handlers.get(job.name);
      if (entry && entry.running < entry.concurrency) {
        this.ready.splice(i, 1);
        entry.running++;
        void this.run(job, entry).finally(() => {
          entry.running--;
          this.pump();
          this.notifyIfIdle();
        });
      } else i++;
    }
    this.notifyIfIdle();
  }

  private async run(job: PendingJob, entry: { handler: JobHandler }): Promise<void> {
    job.attempt++;
    try {
      await entry.handler(job.data);
      if (job.jobId) this.pendingIds.delete(job.jobId);
    } catch (err) {
      const permanent = err instanceof UnrecoverableJobError || job.attempt >= job.maxAttempts;
      this.logger.warn('job failed', { job: job.name, attempt: job.attempt, permanent, error: String(err) });
      if (permanent) {
        if (job.jobId) this.pendingIds.delete(job.jobId);
        return;
      }
      const backoff = jobBackoffMs(job.attempt);
      // While closing, retry promptly so nothing accepted is dropped.
      if (this.closing) this.ready.push(job);
      else this.schedule(job, backoff);
    }
  }

  private busy(): boolean {
    if (this.ready.length > 0 || this.timers.size > 0) return true;
    for (const entry of this.handlers.values()) if (entry.running > 0) return true;
    return false;
  }

  private notifyIfIdle(): void {
    if (this.busy()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  drain(timeoutMs = 30_000): Promise<void> {
    if (!this.busy()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('job queue did not drain in time')), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    // Delayed jobs are brought forward so that accepted work (audit entries) is not lost.
    for (const [timer, job] of this.timers) {
      clearTimeout(timer);
      this.ready.push(job);
    }
    this.timers.clear();
    this.pump();
    await this.drain(60_000).catch((err: unknown) => this.logger.error('jobs still pending at shutdown', { error: String(err) }));
    this.started = false;
    this.closed = true;
  }
}
