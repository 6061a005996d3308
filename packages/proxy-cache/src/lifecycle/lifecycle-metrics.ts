import { Counter, Histogram } from 'prom-client';
import type { CoreMetrics } from '../core-types';

/** Metrics of the cache lifecycle jobs (expiry, eviction, refresh ahead). */
export interface LifecycleMetrics {
  jobs: Counter<'job' | 'state'>;
  jobSeconds: Histogram<'job'>;
  expired: Counter<'org'>;
  expiredBytes: Counter<'org'>;
  refreshes: Counter<'org' | 'result'>;
  prefetchedBytes: Counter<'org'>;
}

export function createLifecycleMetrics(core: CoreMetrics): LifecycleMetrics {
  const registers = [core.registry];
  return {
    jobs: new Counter({ name: 'entrepot_cache_jobs_total', help: 'Cache lifecycle job runs by job and outcome (completed, failed)', labelNames: ['job', 'state'], registers }),
    jobSeconds: new Histogram({
      name: 'entrepot_cache_job_duration_seconds',
      help: 'Duration of cache lifecycle job runs',
      labelNames: ['job'],
      buckets: [0.01, 0.05, 0.25, 1, 5, 30, 120, 600],
      registers,
    }),
    expired: new Counter({ name: 'entrepot_cache_expired_total', help: 'Tags and by-digest manifests removed for not being pulled within idle_expiration_s', labelNames: ['org'], registers }),
    expiredBytes: new Counter({ name: 'entrepot_cache_expired_bytes_total', help: 'Quota usage freed by idle expiry', labelNames: ['org'], registers }),
    refreshes: new Counter({ name: 'entrepot_cache_refreshes_total', help: 'Hot tags revalidated ahead of their staleness period, by result (unchanged, changed, removed, failed)', labelNames: ['org', 'result'], registers }),
    prefetchedBytes: new Counter({ name: 'entrepot_cache_prefetched_bytes_total', help: 'Blob bytes fetched by refreshes of changed hot tags (prefetch_changed_tags)', labelNames: ['org'], registers }),
  };
}
