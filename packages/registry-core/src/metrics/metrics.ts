import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Core metrics; plugins register theirs on the same registry. */
export interface CoreMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  blobBytesServed: Counter<'source'>;
  pulls: Counter<'org' | 'result' | 'kind'>;
  digestMismatches: Counter<'origin'>;
  auditFallbackWrites: Counter;
  queueDepth: Gauge<'queue'>;
}

/** What the buffer-pool gauges read (storage/buffer-pool). */
interface PoolFigures {
  readonly chunkSize: number;
  readonly kept: number;
  readonly allocated: number;
}

/**
 * Gauges of the read-buffer pool: what it keeps between uses, and what it
 * has allocated, which reuse keeps near the peak number of concurrent
 * streams rather than growing with traffic.
 */
export function registerBufferPoolMetrics(registry: Registry, pool: PoolFigures): void {
  new Gauge({
    name: 'entrepot_buffer_pool_free_bytes',
    help: 'Bytes of read buffers kept for reuse (at most 64 MiB; let go of when the process is idle)',
    registers: [registry],
    collect() {
      this.set(pool.kept * pool.chunkSize);
    },
  });
  new Gauge({
    name: 'entrepot_buffer_pool_allocated_bytes',
    help: 'Bytes of read buffers allocated since the process started',
    registers: [registry],
    collect() {
      this.set(pool.allocated * pool.chunkSize);
    },
  });
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): CoreMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'entrepot_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'entrepot_http_requests_total',
      help: 'HTTP requests by route template and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'entrepot_http_request_duration_seconds',
      help: 'HTTP request latency by route template (time to the end of the response)',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
      registers: [registry],
    }),
    blobBytesServed: new Counter({
      name: 'entrepot_blob_bytes_served_total',
      help: 'Blob bytes sent to clients, by source (storage, fill)',
      labelNames: ['source'],
      registers: [registry],
    }),
    pulls: new Counter({
      name: 'entrepot_cache_requests_total',
      help: 'Manifest and blob pulls by organization, kind and result (hit, miss, revalidated, stale, bypass)',
      labelNames: ['org', 'result', 'kind'],
      registers: [registry],
    }),
    digestMismatches: new Counter({
      name: 'entrepot_digest_mismatches_total',
      help: 'Content refused because it did not hash to its digest',
      labelNames: ['origin'],
      registers: [registry],
    }),
    auditFallbackWrites: new Counter({
      name: 'entrepot_audit_direct_writes_total',
      help: 'Audit entries written directly because the job queue was unreachable',
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'entrepot_job_queue_depth',
      help: 'Jobs waiting, per queue',
      labelNames: ['queue'],
      registers: [registry],
    }),
  };
}
