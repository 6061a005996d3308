import type { Request, Router } from 'express';
import { z } from 'zod';
import { RegistryError } from '../../../errors/registry-error';
import type { QuotaLimit } from '../../../services/quota-limit-service';
import type { OrgQuota } from '../../../services/quota-service';
import type { ApiContext } from './api-context';
import { parseBody } from './validation';

const MAX_LIMIT = 2 ** 53 - 1;
const policy = z.enum(['lru', 'lfu']);
export const createQuotaBody = z.strictObject({ limit_bytes: z.number().int().positive().max(MAX_LIMIT), eviction_policy: policy.optional() });
export const changeQuotaBody = z.strictObject({ limit_bytes: z.number().int().positive().max(MAX_LIMIT).optional(), eviction_policy: policy.optional() });

export const quotaLimitBody = z.strictObject({ type: z.enum(['Warning', 'Reject']), threshold_percent: z.number().int().min(1).max(100) });
export const changeQuotaLimitBody = z.strictObject({ type: z.enum(['Warning', 'Reject']).optional(), threshold_percent: z.number().int().min(1).max(100) });

function presentLimit(limit: QuotaLimit): Record<string, unknown> {
  return { id: limit.id, type: limit.type, limit_percent: limit.percent };
}

/**
 * Quay's quota shape, plus Entrepot's eviction policy. An organization has at
 * most one quota, so its integer id (Quay's ids are integers) is the organization's.
 */
function present(quota: OrgQuota, limits: QuotaLimit[]): Record<string, unknown> {
  return { id: quota.orgId, limit_bytes: quota.limitBytes, eviction_policy: quota.evictionPolicy, default_config: false, default_config_exists: false, limits: limits.map(presentLimit) };
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
  const view = async (quota: OrgQuota) => present(quota, await deps.quotas.limits.list(quota.orgId));
  /** The organization's quota named by `:id`: its integer id, or the identifier earlier versions returned. Throws NOT_FOUND. */
  const requireQuota = async (orgId: number, id: unknown): Promise<OrgQuota> => {
    const quota = await deps.quotas.get(orgId);
    if (!quota || (String(id) !== String(quota.orgId) && String(id) !== quota.id)) throw new RegistryError('NOT_FOUND', 'quota not found');
    return quota;
  };
  const limitId = (value: unknown): number => {
    const id = Number(value);
    if (!/^\d{1,9}$/.test(String(value)) || id < 1) throw new RegistryError('NOT_FOUND', 'quota limit not found');
    return id;
  };

  router.get('/organization/:org/quota', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgReader(req);
    const quota = await deps.quotas.get(org.id);
    res.json(quota ? [await view(quota)] : []);
  }));

  router.get('/organization/:org/quota/:id', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgReader(req);
    res.json(await view(await requireQuota(org.id, req.params.id)));
  }));

  router.post('/organization/:org/quota', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgAdmin(req);
    const body = parseBody(createQuotaBody, req.body);
    const quota = await deps.quotas.create(org.id, body.limit_bytes, body.eviction_policy ?? 'lru');
    await changed(req, org.id, 'org_create_quota', await view(quota));
    res.status(201).json(await view(quota));
  }));

  router.put('/organization/:org/quota/:id', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgAdmin(req);
    const body = parseBody(changeQuotaBody, req.body);
    const existing = await requireQuota(org.id, req.params.id);
    const quota = await deps.quotas.update(org.id, existing.id, { limitBytes: body.limit_bytes, evictionPolicy: body.eviction_policy });
    await changed(req, org.id, 'org_change_quota', await view(quota));
    res.json(await view(quota));
  }));

  router.delete('/organization/:org/quota/:id', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgAdmin(req);
    const quota = await requireQuota(org.id, req.params.id);
    if (!(await deps.quotas.delete(org.id, quota.id))) throw new RegistryError('NOT_FOUND', 'quota not found');
    await ctx.audit(req, { orgId: org.id, kind: 'org_delete_quota', metadata: { id: quota.orgId } });
    res.status(204).end();
  }));

  router.get('/organization/:org/quota/:id/limit', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgReader(req);
    await requireQuota(org.id, req.params.id);
    res.json((await deps.quotas.limits.list(org.id)).map(presentLimit));
  }));

  router.get('/organization/:org/quota/:id/limit/:limit', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgReader(req);
    await requireQuota(org.id, req.params.id);
    res.json(presentLimit(await deps.quotas.limits.get(org.id, limitId(req.params.limit))));
  }));

  router.post('/organization/:org/quota/:id/limit', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgAdmin(req);
    const body = parseBody(quotaLimitBody, req.body);
    await requireQuota(org.id, req.params.id);
    const limit = await deps.quotas.limits.add(org.id, body.type, body.threshold_percent);
    await changed(req, org.id, 'org_create_quota_limit', presentLimit(limit));
    res.status(201).json('Created');
  }));

  router.put('/organization/:org/quota/:id/limit/:limit', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgAdmin(req);
    const body = parseBody(changeQuotaLimitBody, req.body);
    const quota = await requireQuota(org.id, req.params.id);
    const limit = await deps.quotas.limits.update(org.id, limitId(req.params.limit), { type: body.type, percent: body.threshold_percent });
    await changed(req, org.id, 'org_change_quota_limit', presentLimit(limit));
    res.json(await view(quota));
  }));

  router.delete('/organization/:org/quota/:id/limit/:limit', asyncHandler(async (req, res) => {
    requireEnabled();
    const org = await deps.http.requireOrgAdmin(req);
    await requireQuota(org.id, req.params.id);
    const id = limitId(req.params.limit);
    if (!(await deps.quotas.limits.delete(org.id, id))) throw new RegistryError('NOT_FOUND', 'quota limit not found');
    await changed(req, org.id, 'org_delete_quota_limit', { id });
    res.status(204).end();
  }));

  /** Users have no namespaces of their own here, so no quotas (Quay's user quota endpoints answer accordingly). */
  router.get('/user/quota', asyncHandler(async (req, res) => {
    requireEnabled();
    ctx.access.requireUser(req);
    res.json([]);
  }));

  router.get(['/user/quota/:id', '/user/quota/:id/limit', '/user/quota/:id/limit/:limit'], asyncHandler(async (req) => {
    requireEnabled();
    ctx.access.requireUser(req);
    throw new RegistryError('NOT_FOUND', 'quota not found: users have no namespaces of their own');
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
  return quota ? [present(quota, await ctx.deps.quotas.limits.list(orgId))] : [];
}
