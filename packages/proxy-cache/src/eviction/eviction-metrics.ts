import { Counter, Gauge } from 'prom-client';
import type { CoreMetrics } from '../core-types';

export interface EvictionMetrics {
  evictions: Counter<'org' | 'policy'>;
  evictedBytes: Counter<'org' | 'policy'>;
  bypasses: Counter<'org'>;
  size: Gauge<'org'>;
  limit: Gauge<'org'>;
  quotaWarnings: Counter<'org'>;
}

export function createEvictionMetrics(core: CoreMetrics): EvictionMetrics {
  const registers = [core.registry];
  return {
    evictions: new Counter({ name: 'entrepot_cache_evictions_total', help: 'Tags and manifests evicted to stay under a quota', labelNames: ['org', 'policy'], registers }),
    evictedBytes: new Counter({ name: 'entrepot_cache_evicted_bytes_total', help: 'Quota usage freed by evictions', labelNames: ['org', 'policy'], registers }),
    bypasses: new Counter({ name: 'entrepot_cache_bypasses_total', help: 'Images served without being kept because they exceed the whole quota', labelNames: ['org'], registers }),
    size: new Gauge({ name: 'entrepot_cache_size_bytes', help: 'Bytes counted against the quota of cache organizations at the last admission or eviction (an upper bound: space freed since is measured within a minute)', labelNames: ['org'], registers }),
    limit: new Gauge({ name: 'entrepot_cache_quota_bytes', help: 'Hard limit of cache organizations: the Reject threshold of their quota, else the quota', labelNames: ['org'], registers }),
    quotaWarnings: new Counter({ name: 'entrepot_quota_warnings_total', help: 'Times usage crossed a Warning threshold of a quota', labelNames: ['org'], registers }),
  };
}
