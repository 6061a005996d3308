/**
 * Background jobs (audit writes, scan submission, eviction). Handlers must be
 * idempotent: a job may run more than once after a crash or retry. Job data
 * never carries secrets. Every driver passes `test/jobs/job-queue.contract.ts`.
 */
export type JobHandler<T = unknown> = (data: T) => Promise<void>;

export interface EnqueueOptions {
  /** Deterministic id: enqueuing a job whose id is still pending is a no-op. */
  jobId?: string;
  delayMs?: number;
  /** Total attempts including the first (default 5), with exponential backoff. */
  attempts?: number;
}

/** Retry policy shared by every driver: attempts, then exponential backoff capped at 30 s. */
export const DEFAULT_JOB_ATTEMPTS = 5;
export const JOB_BACKOFF_BASE_MS = 200;

/** Delay before retrying after the given (1-based) failed attempt. */
export function jobBackoffMs(failedAttempt: number, baseMs = JOB_BACKOFF_BASE_MS): number {
  return Math.min(30_000, baseMs * 2 ** (failedAttempt - 1));
}

/** Thrown by a handler to stop retries of a job that can never succeed. */
export class UnrecoverableJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnrecoverableJobError';
  }
}

export interface JobQueue {
  readonly kind: string;
  /** Registers the handler for a job name; must be called before `start()`. */
  register<T>(name: string, handler: JobHandler<T>, options?: { concurrency?: number }): void;
  /** Throws when the queue backend is unreachable; callers decide the fallback. */
  enqueue<T>(name: string, data: T, options?: EnqueueOptions): Promise<void>;
  start(): Promise<void>;
  /** Resolves once no job is pending or running (tests, shutdown). */
  drain(timeoutMs?: number): Promise<void>;
  /** Stops taking jobs, waits for running ones; pending in-process jobs are run first. */
  close(): Promise<void>;
}
