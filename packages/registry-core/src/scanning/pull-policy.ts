import type { ChangeNotices } from '../coordination/change-notices';
import type { Db } from '../db/database';
import { RegistryError } from '../errors/registry-error';
import { INDEX_MEDIA_TYPES } from '../oci/media-types';
import type { Digest } from '../oci/digest';
import type { Clock } from '../services/clock';
import { ShortMemo } from '../services/short-memo';
import type { Finding } from './quay-report';
import type { ScanStore } from './scan-store';
import { isSeverity, severityRank, type Severity } from './severity';

/** An organization's pull policy. Off by default: nothing is refused. */
export interface OrgSecurityPolicy {
  blockPullsAtSeverity: Severity | null;
  blockUnscanned: boolean;
  /** Vulnerability names that never refuse a pull. */
  allowlist: string[];
}

export const POLICY_OFF: OrgSecurityPolicy = { blockPullsAtSeverity: null, blockUnscanned: false, allowlist: [] };

const POLICY_TTL_MS = 5_000;

/** Why a pull was refused: the error for the client and what the audit entry records. */
export interface PullRefusal {
  error: RegistryError;
  vulnerability: string | null;
  severity: Severity | null;
}

function isActive(policy: OrgSecurityPolicy): boolean {
  return policy.blockPullsAtSeverity !== null || policy.blockUnscanned;
}

/**
 * Per-organization pull policy (`org_security_policies`) and its check on the
 * pull path. An organization without a policy costs one memoized lookup; with
 * one, one read of the manifest's stored findings. Clair is never asked.
 */
export class PullPolicy {
  private readonly memo: ShortMemo<number, OrgSecurityPolicy>;

  constructor(
    private readonly db: Db,
    private readonly store: ScanStore,
    private readonly clock: Clock,
    notices: ChangeNotices,
  ) {
    this.memo = new ShortMemo(clock, { ttlMs: POLICY_TTL_MS, maxEntries: 10_000, shared: { notices, topic: 'security-policy' } });
  }

  async get(orgId: number): Promise<OrgSecurityPolicy> {
    return this.memo.getOrLoad(orgId, async () => {
      const row = await this.db('org_security_policies').where({ org_id: orgId }).first();
      if (!row) return POLICY_OFF;
      const severity = row.block_pulls_at_severity;
      return {
        blockPullsAtSeverity: isSeverity(severity) ? severity : null,
        blockUnscanned: Boolean(row.block_unscanned),
        allowlist: JSON.parse(String(row.allowlist)) as string[],
      };
    });
  }

  async set(orgId: number, policy: OrgSecurityPolicy): Promise<void> {
    const values = {
      block_pulls_at_severity: policy.blockPullsAtSeverity,
      block_unscanned: policy.blockUnscanned,
      allowlist: JSON.stringify(policy.allowlist),
      updated_at: this.clock.now(),
    };
    await this.db('org_security_policies').insert({ org_id: orgId, ...values }).onConflict('org_id').merge(values);
    await this.memo.forget(orgId);
  }

  /** Null when the pull may go ahead; otherwise why not (the caller audits and throws `error`). */
  async check(org: { id: number; name: string }, repository: string, manifest: { digest: Digest; mediaType: string }): Promise<PullRefusal | null> {
    const policy = await this.get(org.id);
    if (!isActive(policy)) return null;
    // An index holds no packages; each platform's manifest is checked when it is pulled.
    if (INDEX_MEDIA_TYPES.has(manifest.mediaType)) return null;
    const how = `To pull it anyway, an administrator of ${org.name} adds the vulnerability to the allow-list or turns the policy off (PUT /api/v1/organization/${org.name}/securitypolicy).`;
    const report = await this.store.getFindings(manifest.digest);
    if (!report || report.status !== 'scanned') {
      if (!policy.blockUnscanned) return null;
      const status = report?.status ?? 'queued';
      return {
        error: new RegistryError('DENIED', `${org.name}/${repository}@${manifest.digest} has no vulnerability report yet (scan ${status}) and ${org.name} refuses unscanned images. Try again once it is scanned, or an administrator of ${org.name} turns block_unscanned off.`),
        vulnerability: null,
        severity: null,
      };
    }
    if (policy.blockPullsAtSeverity === null) return null;
    const threshold = severityRank(policy.blockPullsAtSeverity);
    const allowed = new Set(policy.allowlist);
    const worst: Finding | undefined = report.findings.find((f) => severityRank(f.severity) >= threshold && !allowed.has(f.name));
    if (!worst) return null;
    const fixed = worst.fixedBy ? `, fixed in ${worst.fixedBy}` : ', no fix yet';
    return {
      error: new RegistryError(
        'DENIED',
        `pull of ${org.name}/${repository}@${manifest.digest} refused by the security policy of ${org.name} (block at ${policy.blockPullsAtSeverity} and above): ${worst.name} (${worst.severity}) in ${worst.package} ${worst.version}${fixed}. ${how}`,
        { detail: { vulnerability: worst.name, severity: worst.severity, package: worst.package, version: worst.version, fixed_by: worst.fixedBy || null } },
      ),
      vulnerability: worst.name,
      severity: worst.severity,
    };
  }
}
