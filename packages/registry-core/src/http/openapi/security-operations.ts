import { z } from 'zod';
import { SEVERITIES, type Severity } from '../../scanning/severity';
import { policyBody } from '../routes/api/security-routes';
import type { ApiDocs } from './api-docs';

export const severitySchema = z.enum(SEVERITIES).meta({ id: 'Severity' });

/** Nullable severities are written inline: the generator would put the null into the shared component. */
const severityOrNull = z.enum(SEVERITIES).nullable();

const severityCounts = z.object(Object.fromEntries(SEVERITIES.map((s) => [s, z.number().int()])) as Record<Severity, z.ZodNumber>);

export const scanStatusSchema = z.enum(['queued', 'scanned', 'failed', 'unsupported']).meta({ id: 'ScanStatus' });

/** A tag's scan status and vulnerability counts (an index sums its platforms). */
export const scanSummarySchema = z
  .object({
    status: scanStatusSchema,
    counts: severityCounts,
    highest: severityOrNull,
  })
  .meta({ id: 'ScanSummary' });

export const vulnerabilitySchema = z
  .object({
    Name: z.string(),
    NamespaceName: z.string(),
    Description: z.string(),
    Link: z.string(),
    Severity: severitySchema,
    FixedBy: z.string(),
    Metadata: z.object({ UpdatedBy: z.string(), RepoName: z.string().nullable(), RepoLink: z.string().nullable(), DistroName: z.string(), DistroVersion: z.string() }),
  })
  .meta({ id: 'Vulnerability' });

export const featureSchema = z
  .object({
    Name: z.string(),
    VersionFormat: z.string(),
    NamespaceName: z.string(),
    AddedBy: z.string(),
    Version: z.string(),
    Vulnerabilities: z.array(vulnerabilitySchema).meta({ description: 'empty unless `vulnerabilities=true`' }),
  })
  .meta({ id: 'Feature' });

/** Quay's security report of one manifest (Clair v4 results), plus why a scan failed. */
export const securityReportSchema = z
  .object({
    status: scanStatusSchema,
    data: z
      .object({
        Layer: z.object({ Name: z.string(), ParentName: z.string(), NamespaceName: z.string(), IndexedByVersion: z.number().int(), Features: z.array(featureSchema) }),
      })
      .nullable(),
    reason: z.string().optional().meta({ description: 'why the scan failed or is unsupported' }),
  })
  .meta({ id: 'SecurityReport' });

export const securityPolicySchema = z
  .object({
    block_pulls_at_severity: severityOrNull,
    block_unscanned: z.boolean(),
    allowlist: z.array(z.string()),
    scanner_enabled: z.boolean(),
  })
  .meta({ id: 'SecurityPolicy' });

const securityQuery = z.object({ vulnerabilities: z.enum(['true', 'false']).optional().meta({ description: 'include the vulnerabilities of each package' }) });

/** A manifest's scan results and each organization's pull policy. */
export function describeSecurityOperations(docs: ApiDocs): void {
  const feature = 'FEATURE_SECURITY_SCANNER';
  docs.operation({
    method: 'get',
    path: '/repository/{repository}/manifest/{digest}/security',
    operationId: 'getRepoManifestSecurity',
    summary: "A manifest's vulnerability report (Clair)",
    tag: 'security',
    access: 'callers who may pull the repository',
    params: { repository: '`org/path`; the path may contain slashes', digest: 'manifest digest' },
    query: securityQuery,
    feature,
    responses: { 200: { description: 'the report (`queued` until the scan finishes)', schema: securityReportSchema }, 520: { description: 'the scanner could not be reached' } },
  });
  const policy = { tag: 'security', params: { org: 'organization name' } };
  docs.operation({
    ...policy,
    method: 'get',
    path: '/organization/:org/securitypolicy',
    operationId: 'getOrganizationSecurityPolicy',
    summary: 'Which scan results refuse a pull',
    access: 'readers of the organization',
    responses: { 200: { description: 'the policy', schema: securityPolicySchema } },
  });
  docs.operation({
    ...policy,
    method: 'put',
    path: '/organization/:org/securitypolicy',
    operationId: 'changeOrganizationSecurityPolicy',
    summary: 'Change the pull policy',
    access: 'organization administrators and superusers',
    body: policyBody,
    responses: { 200: { description: 'the policy', schema: securityPolicySchema } },
  });
}
