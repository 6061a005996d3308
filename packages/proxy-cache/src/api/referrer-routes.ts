import type { Request, Router } from 'express';
import { z } from 'zod';
import { invalidField, RegistryError, type CorePorts, type LookupContext, type OrganizationRow, oci } from '@entrepot/registry-core';
import type { CacheConfigStore } from '../config/cache-config-store';
import type { CacheSource } from '../source/cache-source';
import type { SignaturePolicy } from '../signatures/signature-policy';

export const referrersQuery = z.object({ repository: z.string().min(1).max(255), digest: z.string().min(1).max(200) });

export interface ReferrerRouteDeps {
  core: CorePorts;
  configs: CacheConfigStore;
  source: CacheSource;
  signatures: SignaturePolicy;
}

/**
 * `GET /organization/{org}/proxycache/referrers?repository=R&digest=D`: what
 * the web UI shows on a tag of a cache organization — its referrers
 * (signatures, SBOMs, attestations: cached and upstream, as `/v2/…/referrers`
 * lists them) and whether one of the organization's keys signed it.
 */
export function referrerRoutes(router: Router, deps: ReferrerRouteDeps): void {
  const { asyncHandler, requireOrgReader } = deps.core.http;

  router.get('/organization/:org/proxycache/referrers', asyncHandler(async (req, res) => {
    const org = await requireOrgReader(req);
    const config = await deps.configs.get(org.id);
    if (!config) throw new RegistryError('NOT_FOUND', `organization ${org.name} is not a proxy cache`);
    const query = referrersQuery.safeParse(req.query);
    if (!query.success) throw invalidField(String(query.error.issues[0].path[0] ?? 'query'), query.error.issues[0].message);
    oci.validateRepositoryName(query.data.repository);
    const digest = oci.parseDigest(query.data.digest);
    const ctx = await lookupContext(deps, req, org, query.data.repository);
    if (!ctx.repository) throw new RegistryError('NOT_FOUND', `repository ${query.data.repository} not found in ${org.name}`);

    const local = await deps.core.content.referrers(ctx.repository.id, digest);
    const merged = new Map<string, oci.ReferrerDescriptor>(local.map((d) => [d.digest, d]));
    for (const d of (await deps.source.listReferrers(digest, ctx)) ?? []) merged.set(d.digest, d);
    const state = config.signatureKeys.length > 0 ? await deps.signatures.state(digest, ctx, config) : null;
    res.json({
      digest,
      referrers: [...merged.values()].map((d) => ({ artifact_type: d.artifactType ?? null, media_type: d.mediaType, digest: d.digest, size: d.size, annotations: d.annotations ?? {} })),
      signature: {
        require_signature: config.requireSignature,
        verified: state ? state.verified : null,
        key_fingerprint: state?.verified ? state.keyFingerprint : null,
        via: state?.verified ? state.via : null,
      },
    });
  }));
}

async function lookupContext(deps: ReferrerRouteDeps, req: Request, org: OrganizationRow, repoName: string): Promise<LookupContext> {
  return {
    target: { org, repoName, fullName: `${org.name}/${repoName}`, route: 'explicit' },
    repository: await deps.core.repositories.find(org.id, repoName),
    principal: deps.core.http.principal(req),
    requestId: String(req.get('x-request-id') ?? ''),
    clientIp: deps.core.http.clientIp(req),
    userAgent: req.get('user-agent') ?? '',
    headOnly: false,
  };
}
