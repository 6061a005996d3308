import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { invalidField, RegistryError } from '../../../errors/registry-error';
import { tryParseDigest } from '../../../oci/digest';
import { SEVERITIES } from '../../../scanning/severity';
import type { ApiContext } from './api-context';
import type { ApiRepoPath } from './repo-path';
import { parseBody } from './validation';

const VULNERABILITY_NAME = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$/;

export const policyBody = z.strictObject({
  /** The lowest severity that refuses a pull; null or "off" turns the policy off. */
  block_pulls_at_severity: z.union([z.enum(SEVERITIES), z.literal('off'), z.null()]).optional(),
  block_unscanned: z.boolean().optional(),
  allowlist: z.array(z.string().regex(VULNERABILITY_NAME, 'not a vulnerability name (e.g. CVE-2024-1234)')).max(1000).optional(),
});

/**
 * Security scanning in the API: a manifest's scan results in Quay's shape
 * (`GET /repository/{org}/{repo}/manifest/{digest}/security`) and each
 * organization's pull policy (`GET|PUT /organization/{org}/securitypolicy`).
 */
export function securityRoutes(ctx: ApiContext) {
  const { deps, access } = ctx;

  /** Throws NOT_FOUND for a digest the repository does not hold. */
  async function manifestSecurity(req: Request, res: Response, path: ApiRepoPath, rawDigest: string): Promise<void> {
    const digest = tryParseDigest(rawDigest);
    if (!digest) throw invalidField('digest', 'not a valid digest');
    const { org, repo } = await access.requireRepo(req, path.org, path.repo, 'pull');
    const manifest = await deps.content.getManifest(repo.id, { kind: 'digest', digest });
    if (!manifest) throw new RegistryError('NOT_FOUND', `manifest ${digest} not found in ${org.name}/${repo.name}`);
    const vulnerabilities = String(req.query.vulnerabilities ?? '').toLowerCase() === 'true';
    res.json(await deps.scanning.answer(digest, vulnerabilities));
  }

  function register(router: Router): void {
    const { asyncHandler } = deps.http;
    const present = async (orgId: number) => {
      const p = await deps.scanning.policy.get(orgId);
      return { block_pulls_at_severity: p.blockPullsAtSeverity, block_unscanned: p.blockUnscanned, allowlist: p.allowlist, scanner_enabled: deps.scanning.enabled };
    };
    router.get('/organization/:org/securitypolicy', asyncHandler(async (req, res) => {
      const org = await deps.http.requireOrgReader(req);
      res.json(await present(org.id));
    }));
    router.put('/organization/:org/securitypolicy', asyncHandler(async (req, res) => {
      const org = await deps.http.requireOrgAdmin(req);
      const body = parseBody(policyBody, req.body);
      const current = await deps.scanning.policy.get(org.id);
      const severity = body.block_pulls_at_severity === undefined ? current.blockPullsAtSeverity : body.block_pulls_at_severity === 'off' ? null : body.block_pulls_at_severity;
      const next = {
        blockPullsAtSeverity: severity,
        blockUnscanned: body.block_unscanned ?? current.blockUnscanned,
        allowlist: body.allowlist ? [...new Set(body.allowlist)].sort() : current.allowlist,
      };
      await deps.scanning.policy.set(org.id, next);
      await ctx.audit(req, {
        orgId: org.id,
        kind: 'change_security_policy',
        metadata: { namespace: org.name, block_pulls_at_severity: next.blockPullsAtSeverity, block_unscanned: next.blockUnscanned, allowlist: next.allowlist },
      });
      res.json(await present(org.id));
    }));
  }

  return { manifestSecurity, register };
}
