import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../logging/logger';
import type { TrimHeap } from './memory-trim';

export interface IdleCollectionOptions {
  /** How often activity is sampled (default 1 s). */
  intervalMs?: number;
  /** Consecutive idle samples after a busy one before collecting (default 2): a pause between requests is not idleness. */
  idleSamples?: number;
  /** Event-loop utilisation at or under which a sample counts as idle (default 0.02). */
  idleUtilization?: number;
  /** Called just before each collection: caches drop what they can rebuild (e.g. kept read buffers). */
  release?: ReadonlyArray<() => void>;
  /** Run after each collection: gives the C heap's free pages back to the system (see memory-trim.ts). */
  trimHeap?: TrimHeap;
  /** Told of each collection, with memory before and after (metrics, tests). */
  onCollect?: (before: NodeJS.MemoryUsage, after: NodeJS.MemoryUsage) => void;
}

/**
 * One full garbage collection when the process goes idle after being busy.
 * Blob transfers leave their socket and file buffers behind as garbage, tens
 * of megabytes after a burst of pulls; V8 collects on allocation, so a process
 * that has gone quiet keeps them, and its RSS stays at the burst's peak until
 * the next burst. At idle a collection (tens of milliseconds) costs nothing a
 * client notices and gives that memory back to the C allocator; a heap trim
 * then returns its free pages to the system (glibc keeps them otherwise).
 *
 * Process-wide: `main` runs one for the process, not one per instance.
 */
export class IdleCollection {
  private timer: NodeJS.Timeout | null = null;
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private busySinceCollection = false;
  private idleStreak = 0;
  /** The sample after a collection would count the collection's own aftermath (freeing, finalizers) as activity. */
  private skipNextSample = false;
  /** A heap trim is running on a worker thread. */
  private trimming = false;
  private readonly collect: () => void;

  constructor(
    private readonly logger: Logger,
    private readonly options: IdleCollectionOptions = {},
  ) {
    this.collect = exposeGc();
  }

  start(): this {
    this.last = performance.eventLoopUtilization();
    this.timer = setInterval(() => this.sample(), this.options.intervalMs ?? 1000);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private sample(): void {
    const now = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(now, this.last).utilization;
    this.last = now;
    if (this.skipNextSample) {
      this.skipNextSample = false;
      return;
    }
    if (utilization > (this.options.idleUtilization ?? 0.02)) {
      this.busySinceCollection = true;
      this.idleStreak = 0;
      return;
    }
    if (this.trimming || !this.busySinceCollection || ++this.idleStreak < (this.options.idleSamples ?? 2)) return;
    this.busySinceCollection = false;
    this.idleStreak = 0;
    const before = process.memoryUsage();
    const started = performance.now();
    for (const release of this.options.release ?? []) release();
    this.collect();
    this.skipNextSample = true;
    const trim = this.options.trimHeap;
    if (!trim) {
      this.collected(before, started, false);
      return;
    }
    this.trimming = true;
    trim().then(
      (trimmed) => this.collected(before, started, trimmed),
      (err: unknown) => {
        this.logger.warn('malloc_trim failed', { error: err instanceof Error ? err.message : String(err) });
        this.collected(before, started, false);
      },
    );
  }

  private collected(before: NodeJS.MemoryUsage, started: number, trimmed: boolean): void {
    this.trimming = false;
    const after = process.memoryUsage();
    this.logger.debug('idle garbage collection', {
      ms: Math.round(performance.now() - started),
      trimmed,
      rssBefore: before.rss,
      rssAfter: after.rss,
      arrayBuffersBefore: before.arrayBuffers,
      arrayBuffersAfter: after.arrayBuffers,
    });
    this.options.onCollect?.(before, after);
  }
}

/** V8's `gc()` without `--expose-gc` on the command line: the flag applies to contexts created after it is set. */
export function exposeGc(): () => void {
  if (typeof globalThis.gc === 'function') return globalThis.gc as () => void;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
