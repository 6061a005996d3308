import type { ClairVulnerabilityReport } from './clair-client';
import { emptyCounts, normalizeSeverity, severityRank, type Severity, type SeverityCounts } from './severity';

/** Quay's security API shape (`.../manifest/{digest}/security`). */
export interface QuayVulnerability {
  Name: string;
  NamespaceName: string;
  Description: string;
  Link: string;
  Severity: Severity;
  FixedBy: string;
  Metadata: { UpdatedBy: string; RepoName: string | null; RepoLink: string | null; DistroName: string; DistroVersion: string };
}

export interface QuayFeature {
  Name: string;
  VersionFormat: string;
  NamespaceName: string;
  AddedBy: string;
  Version: string;
  Vulnerabilities: QuayVulnerability[];
}

export interface QuayLayer {
  Name: string;
  ParentName: string;
  NamespaceName: string;
  IndexedByVersion: number;
  Features: QuayFeature[];
}

/** One vulnerability of one package, what the pull policy and summaries need. */
export interface Finding {
  name: string;
  severity: Severity;
  package: string;
  version: string;
  fixedBy: string;
}

export interface ConvertedReport {
  layer: QuayLayer;
  counts: SeverityCounts;
  /** Highest severity first. */
  findings: Finding[];
}

const INDEXED_BY_VERSION = 4;

/**
 * Clair's vulnerability report as Quay presents it: one feature per package
 * found, with the layer that added it and its vulnerabilities; counts by
 * severity count each (vulnerability, package) pair once.
 */
export function convertReport(manifestDigest: string, report: ClairVulnerabilityReport): ConvertedReport {
  const packages = report.packages ?? {};
  const distributions = report.distributions ?? {};
  const environments = report.environments ?? {};
  const vulnerabilities = report.vulnerabilities ?? {};
  const byPackage = report.package_vulnerabilities ?? {};
  const counts = emptyCounts();
  const findings: Finding[] = [];
  const features: QuayFeature[] = [];
  for (const [id, pkg] of Object.entries(packages)) {
    const env = environments[id]?.[0];
    const dist = env?.distribution_id ? distributions[env.distribution_id] : undefined;
    const namespace = dist ? `${dist.did}:${dist.version_id || dist.version}` : '';
    const vulns: QuayVulnerability[] = [];
    const seen = new Set<string>();
    for (const vulnId of byPackage[id] ?? []) {
      const v = vulnerabilities[vulnId];
      if (!v || seen.has(v.name)) continue;
      seen.add(v.name);
      const severity = normalizeSeverity(v.normalized_severity);
      vulns.push({
        Name: v.name,
        NamespaceName: v.distribution ? `${v.distribution.did}:${v.distribution.version_id || v.distribution.version}` : namespace,
        Description: v.description ?? '',
        Link: v.links ?? '',
        Severity: severity,
        FixedBy: v.fixed_in_version ?? '',
        Metadata: {
          UpdatedBy: v.updater ?? '',
          RepoName: v.repository?.name ?? null,
          RepoLink: v.repository?.uri ?? null,
          DistroName: v.distribution?.name ?? dist?.name ?? '',
          DistroVersion: v.distribution?.version ?? dist?.version ?? '',
        },
      });
      counts[severity] += 1;
      findings.push({ name: v.name, severity, package: pkg.name, version: pkg.version, fixedBy: v.fixed_in_version ?? '' });
    }
    vulns.sort((a, b) => severityRank(b.Severity) - severityRank(a.Severity) || a.Name.localeCompare(b.Name));
    features.push({ Name: pkg.name, VersionFormat: pkg.kind ?? '', NamespaceName: namespace, AddedBy: env?.introduced_in ?? '', Version: pkg.version, Vulnerabilities: vulns });
  }
  features.sort((a, b) => a.Name.localeCompare(b.Name) || a.Version.localeCompare(b.Version));
  findings.sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || a.name.localeCompare(b.name));
  return {
    layer: { Name: manifestDigest, ParentName: '', NamespaceName: '', IndexedByVersion: INDEXED_BY_VERSION, Features: features },
    counts,
    findings,
  };
}

/** The same layer without vulnerability lists (Quay's answer without `?vulnerabilities=true`). */
export function withoutVulnerabilities(layer: QuayLayer): QuayLayer {
  return { ...layer, Features: layer.Features.map((f) => ({ ...f, Vulnerabilities: [] })) };
}
