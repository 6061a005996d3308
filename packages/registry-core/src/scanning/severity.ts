/** Clair's normalized severities (and Quay's names for them), lowest first. */
export const SEVERITIES = ['Unknown', 'Negligible', 'Low', 'Medium', 'High', 'Critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function isSeverity(value: unknown): value is Severity {
  return typeof value === 'string' && (SEVERITIES as readonly string[]).includes(value);
}

/** Clair's `normalized_severity`, or Unknown for anything it does not name. */
export function normalizeSeverity(value: unknown): Severity {
  return isSeverity(value) ? value : 'Unknown';
}

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/** Vulnerability counts of one manifest, by severity. */
export type SeverityCounts = Record<Severity, number>;

export function emptyCounts(): SeverityCounts {
  return { Unknown: 0, Negligible: 0, Low: 0, Medium: 0, High: 0, Critical: 0 };
}
