import { Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Logger } from '../logging/logger';
import { DEFAULT_JOB_ATTEMPTS, EnqueueOptions, JOB_BACKOFF_BASE_MS, JobHandler, JobQueue, jobBackoffMs, UnrecoverableJobError } from './job-queue';

export interface BullMqQueueOptions {
  redisUrl: string;
  /** Redis key prefix of every queue (BullMQ `prefix`); lets deployments and tests share one Redis. */
  prefix: string;
  /** First retry delay; doubles per attempt up to 30 s (default 200 ms, as the in-process driver). */
  backoffBaseMs?: number;
  /** How long `enqueue` may take before it rejects (default 2000 ms). */
  enqueueTimeoutMs?: number;
}

interface Registration {
  handler: JobHandler;
  concurrency: number;
  queue: Queue;
  worker?: Worker;
}

const DRAIN_POLL_MS = 50;
/** How long `start()` waits for Redis before logging and letting workers connect in the background. */
const START_WAIT_MS = 5_000;
/** Finished jobs kept for inspection; a finished job does not block re-enqueuing its id (see `enqueue`). */
const KEEP_COMPLETED = { count: 1000, age: 24 * 3600 };
const KEEP_FAILED = { count: 5000, age: 7 * 24 * 3600 };
const ERROR_LOG_INTERVAL_MS = 60_000;
const PENDING_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/**
 * BullMQ ids may not contain `:` nor look like integers; this maps any id to
 * an allowed one, deterministically and without collisions.
 */
export function bullJobId(jobId: string): string {
  const escaped = jobId.replace(/%/g, '%25').replace(/:/g, '%3A');
  return `${parseInt(escaped, 10)}` === escaped ? `%i${escaped}` : escaped;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Jobs in Redis through BullMQ: one queue (and one worker) per job name, so
 * each name keeps its own concurrency and a slow job kind cannot starve the
 * others. Producers share one connection that fails fast while Redis is down
 * (`enqueue` rejects within `enqueueTimeoutMs`, callers fall back); workers
 * share one that retries forever, so they resume after a Redis restart.
 */
export class BullMqQueue implements JobQueue {
  readonly kind = 'bullmq';
  private readonly registrations = new Map<string, Registration>();
  private readonly producer: Redis;
  private readonly workerConnection: Redis;
  private readonly backoffBaseMs: number;
  private readonly enqueueTimeoutMs: number;
  private started = false;
  private closed = false;
  /** Set by a producer connection error, cleared when it is ready again: while set, enqueue fails at once. */
  private producerError: Error | null = null;
  /** Last time each error message was logged: an unreachable Redis repeats the same error many times a second. */
  private readonly loggedErrors = new Map<string, number>();

  constructor(
    private readonly options: BullMqQueueOptions,
    private readonly logger: Logger,
  ) {
    if (options.prefix.includes(':')) throw new Error('BullMQ prefix must not contain ":"');
    this.backoffBaseMs = options.backoffBaseMs ?? JOB_BACKOFF_BASE_MS;
    this.enqueueTimeoutMs = options.enqueueTimeoutMs ?? 2000;
    // Both connect at once (not lazily): BullMQ treats a failed first `connect()` as fatal for a
    // queue, while a connection that is already connecting is waited for and retried.
    this.producer = new Redis(options.redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: this.enqueueTimeoutMs,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    this.workerConnection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
    for (const redis of [this.producer, this.workerConnection]) {
      redis.on('error', (err: Error) => this.reportError('redis connection error', err));
      redis.on('ready', () => this.loggedErrors.clear());
    }
    this.producer.on('error', (err: Error) => (this.producerError = err));
    this.producer.on('ready', () => (this.producerError = null));
  }

  private reportError(message: string, err: Error, meta: Record<string, unknown> = {}): void {
    const now = Date.now();
    const key = `${message}|${err.message}`;
    if (now - (this.loggedErrors.get(key) ?? 0) < ERROR_LOG_INTERVAL_MS) return;
    this.loggedErrors.set(key, now);
    this.logger.warn(message, { ...meta, error: err.message });
  }

  register<T>(name: string, handler: JobHandler<T>, options: { concurrency?: number } = {}): void {
    if (name.includes(':')) throw new Error(`job name "${name}" must not contain ":"`);
    if (this.registrations.has(name)) throw new Error(`job "${name}" is already registered`);
    const queue = new Queue(name, {
      connection: this.producer,
      prefix: this.options.prefix,
      defaultJobOptions: { removeOnComplete: KEEP_COMPLETED, removeOnFail: KEEP_FAILED },
    });
    queue.on('error', (err: Error) => this.reportError('job queue error', err, { job: name }));
    const registration: Registration = { handler: handler as JobHandler, concurrency: options.concurrency ?? 4, queue };
    this.registrations.set(name, registration);
    if (this.started) this.startWorker(name, registration);
  }

  /**
   * Adds a job. Rejects within `enqueueTimeoutMs` when Redis is unreachable, and
   * at once for an unregistered name or a closed queue.
   */
  async enqueue<T>(name: string, data: T, options: EnqueueOptions = {}): Promise<void> {
    const registration = this.registrations.get(name);
    if (!registration) throw new Error(`no handler registered for job "${name}"`);
    if (this.closed) throw new Error('job queue is closed');
    let timedOut = false;
    const add = async (): Promise<void> => {
      await this.producerReady(this.enqueueTimeoutMs);
      await registration.queue.waitUntilReady();
      // Nothing is sent after the caller was told the enqueue failed (it may have used a fallback).
      if (timedOut) return;
      const jobId = options.jobId === undefined ? undefined : bullJobId(options.jobId);
      if (jobId !== undefined) await this.releaseFinished(registration.queue, jobId);
      await registration.queue.add(name, data, {
        jobId,
        delay: options.delayMs && options.delayMs > 0 ? options.delayMs : undefined,
        attempts: options.attempts ?? DEFAULT_JOB_ATTEMPTS,
        backoff: { type: 'capped-exponential' },
      });
    };
    const attempt = add();
    try {
      await withTimeout(attempt, this.enqueueTimeoutMs, `job queue unavailable: Redis did not accept job "${name}" within ${this.enqueueTimeoutMs} ms`);
    } catch (err) {
      timedOut = true;
      attempt.catch(() => undefined);
      throw err;
    }
  }

  /**
   * BullMQ ignores an add whose id exists in any state; the contract only dedupes
   * pending jobs, so a finished job with the same id is removed first.
   */
  private async releaseFinished(queue: Queue, jobId: string): Promise<void> {
    const state = await queue.getJobState(jobId);
    if (state === 'completed' || state === 'failed') await queue.remove(jobId);
  }

  /**
   * Resolves when the producer connection is ready. Rejects at once when Redis is
   * known to be down (a connection error since it was last ready), so that callers
   * fall back without waiting on every request; otherwise (still connecting at
   * start) waits up to `timeoutMs`.
   */
  private producerReady(timeoutMs: number): Promise<void> {
    const redis = this.producer;
    if (redis.status === 'ready') return Promise.resolve();
    if (redis.status === 'end') return Promise.reject(new Error('job queue connection is closed'));
    if (this.producerError) return Promise.reject(new Error(`job queue unavailable: ${this.producerError.message}`));
    return new Promise((resolve, reject) => {
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        redis.off('ready', onReady);
        reject(new Error(`Redis not ready within ${timeoutMs} ms (${redis.status})`));
      }, timeoutMs);
      redis.once('ready', onReady);
    });
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const [name, registration] of this.registrations) this.startWorker(name, registration);
    const workers = [...this.registrations.values()].map((r) => r.worker!.waitUntilReady());
    try {
      await withTimeout(Promise.all([this.producerReady(START_WAIT_MS), ...workers]), START_WAIT_MS, 'Redis not reachable');
    } catch (err) {
      // Workers keep reconnecting; jobs run once Redis is back, enqueue fails fast meanwhile.
      this.logger.error('job queue started without Redis', { error: String(err) });
    }
  }

  private startWorker(name: string, registration: Registration): void {
    const handler = registration.handler;
    const worker = new Worker(
      name,
      async (job: Job) => {
        try {
          await handler(job.data);
        } catch (err) {
          if (err instanceof UnrecoverableJobError) throw new UnrecoverableError(err.message);
          throw err instanceof Error ? err : new Error(String(err));
        }
      },
      {
        connection: this.workerConnection,
        prefix: this.options.prefix,
        concurrency: registration.concurrency,
        settings: {
          backoffStrategy: (attemptsMade: number) => jobBackoffMs(attemptsMade, this.backoffBaseMs),
        },
      },
    );
    worker.on('error', (err: Error) => this.reportError('job worker error', err, { job: name }));
    worker.on('failed', (job: Job | undefined, err: Error) => {
      const attempts = job?.opts.attempts ?? 1;
      const permanent = err instanceof UnrecoverableError || (job?.attemptsMade ?? attempts) >= attempts;
      this.logger.warn('job failed', { job: name, attempt: job?.attemptsMade, permanent, error: err.message });
    });
    registration.worker = worker;
  }

  /** Resolves once no job of a registered name is waiting, delayed or running (across all replicas). */
  async drain(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let pending = 0;
      for (const { queue } of this.registrations.values()) {
        const counts = await queue.getJobCounts(...PENDING_STATES);
        for (const state of PENDING_STATES) pending += counts[state] ?? 0;
      }
      if (pending === 0) return;
      if (Date.now() >= deadline) throw new Error(`job queue did not drain in time (${pending} jobs pending)`);
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
  }

  /**
   * Stops fetching jobs and waits for running ones; pending jobs stay in Redis for
   * the next worker. When Redis is unreachable at that moment, workers are closed
   * without waiting (a graceful BullMQ close would wait for Redis forever); jobs cut
   * off that way are picked up again as stalled once their lock expires.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const registrations = [...this.registrations.values()];
    const force = this.workerConnection.status !== 'ready';
    await Promise.all(registrations.map((r) => (r.worker ? r.worker.close(force) : Promise.resolve())));
    await Promise.all(registrations.map((r) => r.queue.close()));
    for (const redis of [this.producer, this.workerConnection]) {
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
    }
  }
}
