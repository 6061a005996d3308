import { Counter, Gauge, Histogram } from 'prom-client';
import type { Db } from '../db/database';
import type { CoreMetrics } from '../metrics/metrics';
import { emptyCounts, SEVERITIES, type SeverityCounts } from './severity';

export interface ScanMetrics {
  queued: Counter;
  completed: Counter;
  failed: Counter<'reason'>;
  latency: Histogram;
  pullsBlocked: Counter<'org'>;
}

/**
 * Scanning's metrics on the core registry. Vulnerabilities by severity per
 * organization are counted when scraped, over the scanned manifests each
 * organization holds (each manifest once per organization).
 */
export function createScanMetrics(metrics: CoreMetrics, db: Db, options: { countVulnerabilities: boolean }): ScanMetrics {
  const registers = [metrics.registry];
  // Counted from the database when scraped: only while scanning runs.
  if (options.countVulnerabilities) createVulnerabilityGauge(metrics, db);
  return {
    queued: new Counter({ name: 'entrepot_security_scans_queued_total', help: 'Manifests queued for scanning', registers }),
    completed: new Counter({ name: 'entrepot_security_scans_completed_total', help: 'Scans whose vulnerability report was stored', registers }),
    failed: new Counter({ name: 'entrepot_security_scans_failed_total', help: 'Scans marked failed (Clair errors after the retries) or unsupported', labelNames: ['reason'], registers }),
    latency: new Histogram({
      name: 'entrepot_security_scan_latency_seconds',
      help: 'Time from a manifest being queued to its report being stored',
      buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600],
      registers,
    }),
    pullsBlocked: new Counter({ name: 'entrepot_security_pulls_blocked_total', help: 'Manifest pulls refused by an organization security policy', labelNames: ['org'], registers }),
  };
}

function createVulnerabilityGauge(metrics: CoreMetrics, db: Db): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'entrepot_security_vulnerabilities',
    help: 'Vulnerabilities found in the scanned manifests an organization holds, by severity',
    labelNames: ['org', 'severity'],
    registers,
    async collect() {
      const rows = await db('security_scans as s')
        .join('manifests as m', 'm.digest', 's.manifest_digest')
        .join('repositories as r', 'r.id', 'm.repo_id')
        .join('organizations as o', 'o.id', 'r.org_id')
        .where('s.status', 'scanned')
        .distinct('o.name as org', 's.manifest_digest', 's.counts');
      const byOrg = new Map<string, SeverityCounts>();
      for (const row of rows as Array<{ org: string; counts: string | null }>) {
        const counts = byOrg.get(row.org) ?? emptyCounts();
        const found = row.counts ? (JSON.parse(row.counts) as Partial<SeverityCounts>) : {};
        for (const severity of SEVERITIES) counts[severity] += found[severity] ?? 0;
        byOrg.set(row.org, counts);
      }
      this.reset();
      for (const [org, counts] of byOrg) for (const severity of SEVERITIES) this.set({ org, severity }, counts[severity]);
    },
  });
}
