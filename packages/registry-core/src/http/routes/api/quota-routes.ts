import type { Request, Router } from 'express';
import { z } from 'zod';
import { RegistryError } from '../../../errors/registry-error';
import type { OrgQuota } from '../../../services/quota-service';
import type { ApiContext } from './api-context';
import { parseBody } from './validation';

const MAX_LIMIT = 2 ** 53 - 1;
const policy = z.enum(['lru', 'lfu']);
export const createQuotaBody = z.strictObject({ limit_bytes: z.number().int().positive().max(MAX_LIMIT), eviction_policy: policy.optional() });
export const changeQuotaBody = z.strictObject({ limit_bytes: z.number().int().positive().max(MAX_LIMIT).optional(), eviction_policy: policy.optional() });

/** Quay's quota shape, plus Entrepot's eviction policy. */
function present(quota: OrgQuota): Record<string, unknown> {
  return { id: quota.id, limit_bytes: quota.limitBytes, eviction_policy: quota.evictionPolicy, default_config: false, default_config_exists: false, limits: [] };
}

/**
 * `/organization/{org}/quota` (FEATURE_QUOTA_MANAGEMENT): one quota per
 * organization; members read it, administrators change it. A change is handed
 * to `onQuotaChanged` so caches can evict down to a lowered limit at once.
 */
export function quotaRoutes(router: Router, ctx: ApiContext, onQuotaChanged: (orgId: number) => Promise<void>): void {
  const { deps } = ctx;
  const { asyncHandler } = deps.http;
  const enabled = deps.config.flags.FEATURE_QUOTA_MANAGEMENT !== false;
  const requireEnabled = () => {
    if (!enabled) throw new RegistryError('FEATURE_DISABLED', 'quota management is disabled (FEATURE_QUOTA_MANAGEMENT=false)');
  };
  const changed = async (req: Request, orgId: number, kind: string, quota: Record<string, unknown>) => {
    await ctx.audit(req, { orgId, kind, metadata: quota });
    await onQuotaChanged(orgId);
  };

  router.get('/organization/:org/quota', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgReader(req);
    const quota = await deps.quotas.get(org.id);
    res.json(quota ? [present(quota)] : []);
  }));

  router.get('/organization/:org/quota/:id', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgReader(req);
    const quota = await deps.quotas.get(org.id);
    if (!quota || quota.id !== req.params.id) throw new RegistryError('NOT_FOUND', 'quota not found');
    res.json(present(quota));
  }));

  router.post('/organization/:org/quota', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgAdmin(req);
    const body = parseBody(createQuotaBody, req.body);
    const quota = await deps.quotas.create(org.id, body.limit_bytes, body.eviction_policy ?? 'lru');
    await changed(req, org.id, 'org_create_quota', present(quota));
    res.status(201).json(present(quota));
  }));

  router.put('/organization/:org/quota/:id', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgAdmin(req);
    const body = parseBody(changeQuotaBody, req.body);
    const quota = await deps.quotas.update(org.id, String(req.params.id), { limitBytes: body.limit_bytes, evictionPolicy: body.eviction_policy });
    await changed(req, org.id, 'org_change_quota', present(quota));
    res.json(present(quota));
  }));

  router.delete('/organization/:org/quota/:id', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgAdmin(req);
    if (!(await deps.quotas.delete(org.id, String(req.params.id)))) throw new RegistryError('NOT_FOUND', 'quota not found');
    await ctx.audit(req, { orgId: org.id, kind: 'org_delete_quota', metadata: { id: req.params.id } });
    res.status(204).end();
  }));
}

/** Quay's `quota_report` in the organization's description. */
export async function quotaReport(ctx: ApiContext, orgId: number): Promise<{ quota_bytes: number; configured_quota: number | null }> {
  const quota = await ctx.deps.quotas.get(orgId);
  return { quota_bytes: await ctx.deps.quotas.usage(orgId), configured_quota: quota?.limitBytes ?? null };
}

/** Quay's `quotas` in the organization's description. */
export async function quotaList(ctx: ApiContext, orgId: number): Promise<Array<Record<string, unknown>>> {
  const quota = await ctx.deps.quotas.get(orgId);
  return quota ? [present(quota)] : [];
}
