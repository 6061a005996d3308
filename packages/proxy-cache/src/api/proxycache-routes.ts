import type { Request, Router } from 'express';
import { z } from 'zod';
import { RegistryError, type CorePorts, type OrganizationRow } from '@entrepot/registry-core';
import type { CacheConfig, CacheConfigStore } from '../config/cache-config-store';
import { endpointOf } from '../config/cache-config-store';
import type { ProxyCacheSettings } from '../config/plugin-settings';
import { defaultEndpoint, parseUpstreamRegistry } from '../routing/upstream-ref';
import type { SsrfGuard } from '../routing/ssrf-guard';
import type { UpstreamPort } from '../source/upstream-port';
import { MAX_SIGNATURE_KEYS, parseSignatureKey, parseStoredKeys } from '../signatures/cosign-keys';

export const configBody = z
  .object({
    upstream_registry: z.string().min(1).max(512),
    upstream_registry_username: z.string().max(255).nullable().optional(),
    upstream_registry_password: z.string().max(4096).nullable().optional(),
    expiration_s: z.number().int().min(0).max(10 * 365 * 86400).optional(),
    insecure: z.boolean().optional(),
    upstream_endpoint: z.string().url().max(512).nullable().optional(),
    stale_if_error_s: z.number().int().min(0).max(10 * 365 * 86400).optional(),
    on_upstream_404: z.enum(['remove', 'keep']).optional(),
    idle_expiration_s: z.number().int().min(0).max(10 * 365 * 86400).nullable().optional(),
    refresh_min_pulls: z.number().int().min(0).max(1_000_000).nullable().optional(),
    prefetch_changed_tags: z.boolean().optional(),
    low_watermark: z.number().gt(0).max(1).nullable().optional(),
    require_signature: z.boolean().optional(),
    signature_public_keys: z.array(z.string().min(1).max(16_384)).max(MAX_SIGNATURE_KEYS).optional(),
    fill_on_range: z.enum(['always', 'never']).optional(),
    /** Quay's web UI repeats the organization's name; the path decides. */
    org_name: z.string().max(255).optional(),
  })
  .strict()
  .meta({ id: 'ProxyCacheInput' });

type ConfigBody = z.infer<typeof configBody>;

/** Quay's answer to members when the organization is not a cache: every field empty. */
const NOT_CONFIGURED = { upstream_registry: '', expiration_s: '', insecure: '' } as const;

export interface ProxyCacheRouteDeps {
  core: CorePorts;
  configs: CacheConfigStore;
  settings: ProxyCacheSettings;
  ssrf: SsrfGuard;
  /** Builds a throwaway upstream client for a configuration that is not saved yet. */
  probeUpstream(config: CacheConfig, password: string | null): UpstreamPort;
}

/**
 * Quay's shape, secrets omitted: the password is write-only, and only
 * administrators see the upstream account's name.
 */
export function presentConfig(config: CacheConfig, isAdmin = true): Record<string, unknown> {
  return {
    upstream_registry: config.upstreamRegistry,
    ...(isAdmin ? { upstream_registry_username: config.username, upstream_registry_password_set: config.hasPassword } : {}),
    expiration_s: config.expirationS,
    insecure: config.insecure,
    upstream_endpoint: endpointOf(config),
    stale_if_error_s: config.staleIfErrorS,
    on_upstream_404: config.onUpstream404,
    idle_expiration_s: config.idleExpirationS,
    refresh_min_pulls: config.refreshMinPulls,
    prefetch_changed_tags: config.prefetchChangedTags,
    low_watermark: config.lowWatermark,
    require_signature: config.requireSignature,
    signature_public_keys: config.signatureKeys,
    signature_key_fingerprints: parseStoredKeys(config.signatureKeys).map((k) => k.fingerprint),
    fill_on_range: config.fillOnRange,
  };
}

function parseBody(body: unknown): ConfigBody {
  const result = configBody.safeParse(body ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(',') : '(body)');
  throw new RegistryError('INVALID_REQUEST', `${field}: ${issue.message}`, { detail: { field } });
}

/** Turns a request body into a candidate configuration (not saved), validating the upstream. */
async function candidate(deps: ProxyCacheRouteDeps, org: OrganizationRow, body: ConfigBody, existing: CacheConfig | null): Promise<CacheConfig> {
  const spec = parseUpstreamRegistry(body.upstream_registry);
  const insecure = body.insecure ?? false;
  const endpoint = body.upstream_endpoint ?? defaultEndpoint(spec, insecure);
  await deps.ssrf.check(endpoint, body.upstream_endpoint ? 'upstream_endpoint' : 'upstream_registry');
  const now = deps.core.clock.now();
  const signatureKeys = body.signature_public_keys ?? existing?.signatureKeys ?? [];
  signatureKeys.forEach((pem, i) => parseSignatureKey(pem, `signature_public_keys.${i}`));
  const requireSignature = body.require_signature ?? existing?.requireSignature ?? false;
  if (requireSignature && signatureKeys.length === 0) {
    throw new RegistryError('INVALID_REQUEST', 'require_signature: give at least one public key in signature_public_keys', { detail: { field: 'require_signature' } });
  }
  return {
    orgId: org.id,
    spec,
    upstreamRegistry: body.upstream_registry,
    upstreamEndpoint: body.upstream_endpoint ?? null,
    username: body.upstream_registry_username ?? null,
    hasPassword: body.upstream_registry_password ? true : Boolean(existing?.hasPassword && body.upstream_registry_password === undefined),
    expirationS: body.expiration_s ?? deps.settings.default_expiration_s,
    insecure,
    staleIfErrorS: body.stale_if_error_s ?? deps.settings.default_stale_if_error_s,
    onUpstream404: body.on_upstream_404 ?? 'remove',
    idleExpirationS: body.idle_expiration_s === undefined ? (existing?.idleExpirationS ?? null) : body.idle_expiration_s || null,
    refreshMinPulls: body.refresh_min_pulls === undefined ? (existing?.refreshMinPulls ?? null) : body.refresh_min_pulls || null,
    prefetchChangedTags: body.prefetch_changed_tags ?? existing?.prefetchChangedTags ?? false,
    lowWatermark: body.low_watermark === undefined ? (existing?.lowWatermark ?? null) : body.low_watermark,
    requireSignature,
    signatureKeys,
    fillOnRange: body.fill_on_range ?? 'always',
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
  };
}

export function proxyCacheRoutes(router: Router, deps: ProxyCacheRouteDeps): void {
  const { asyncHandler, requireOrgAdmin, requireOrgMember, principal, clientIp } = deps.core.http;
  const audit = (req: Request, org: OrganizationRow, kind: string, metadata: Record<string, unknown>) =>
    deps.core.audit.record({ orgId: org.id, kind, performer: principal(req), ip: clientIp(req), userAgent: req.get('user-agent'), metadata });

  /** Members read the configuration (Quay); an organization that is not a cache answers with empty fields. */
  router.get('/organization/:org/proxycache', asyncHandler(async (req, res) => {
    const { org, isAdmin } = await requireOrgMember(req);
    const config = await deps.configs.get(org.id);
    res.json(config ? presentConfig(config, isAdmin) : NOT_CONFIGURED);
  }));

  router.post('/organization/:org/proxycache', asyncHandler(async (req, res) => {
    const org = await requireOrgAdmin(req);
    const body = parseBody(req.body);
    const existing = await deps.configs.get(org.id);
    if (!existing && (await deps.core.repositories.listByOrg(org.id)).length > 0) {
      throw new RegistryError('CONFLICT', `organization ${org.name} already has repositories; a proxy cache needs an empty organization`);
    }
    const config = await candidate(deps, org, body, existing);
    const saved = await deps.configs.upsert(org.id, {
      upstreamRegistry: config.upstreamRegistry,
      upstreamEndpoint: config.upstreamEndpoint,
      username: config.username,
      password: body.upstream_registry_password,
      expirationS: config.expirationS,
      insecure: config.insecure,
      staleIfErrorS: config.staleIfErrorS,
      onUpstream404: config.onUpstream404,
      idleExpirationS: config.idleExpirationS,
      refreshMinPulls: config.refreshMinPulls,
      prefetchChangedTags: config.prefetchChangedTags,
      lowWatermark: config.lowWatermark,
      requireSignature: config.requireSignature,
      signatureKeys: config.signatureKeys,
      fillOnRange: config.fillOnRange,
    });
    await audit(req, org, existing ? 'change_proxy_cache_config' : 'create_proxy_cache_config', {
      upstream_registry: saved.upstreamRegistry,
      upstream_endpoint: endpointOf(saved),
      require_signature: saved.requireSignature,
      signature_keys: saved.signatureKeys.length,
    });
    // Quay answers with the bare word; GET returns the configuration.
    res.status(201).json('Created');
  }));

  router.delete('/organization/:org/proxycache', asyncHandler(async (req, res) => {
    const org = await requireOrgAdmin(req);
    if (!(await deps.configs.delete(org.id))) throw new RegistryError('NOT_FOUND', `organization ${org.name} is not a proxy cache`);
    await audit(req, org, 'delete_proxy_cache_config', {});
    // Quay answers 201 "Deleted" (its web UI checks for 201).
    res.status(201).json('Deleted');
  }));

  /** Checks reachability and credentials with a manifest-less probe: the `/v2/` endpoint and a token if required. */
  router.post('/organization/:org/validateproxycache', asyncHandler(async (req, res) => {
    const org = await requireOrgAdmin(req);
    const body = parseBody(req.body);
    const existing = await deps.configs.get(org.id);
    const config = await candidate(deps, org, body, existing);
    const password = body.upstream_registry_password ?? (existing && body.upstream_registry_password === undefined ? await deps.configs.password(org.id) : null);
    const upstream = deps.probeUpstream(config, password);
    try {
      // A tag list of a repository that surely does not exist exercises connectivity and authentication.
      await upstream.headManifest(config.spec.namespace ? `${config.spec.namespace}/entrepot-validation` : 'library/entrepot-validation', 'latest');
      // Quay: "Valid" when credentials were checked, "Anonymous" when none were given.
      res.status(202).json(password || config.username ? 'Valid' : 'Anonymous');
    } catch (err) {
      const message = err instanceof RegistryError ? err.message : 'upstream check failed';
      throw new RegistryError('INVALID_REQUEST', `upstream check failed: ${message}`);
    }
  }));
}

/** When FEATURE_PROXY_CACHE is off every cache endpoint says so. */
export function disabledProxyCacheRoutes(router: Router): void {
  const refuse = () => {
    throw new RegistryError('FEATURE_DISABLED', 'the proxy cache feature is disabled (FEATURE_PROXY_CACHE=false)');
  };
  router.all(['/organization/:org/proxycache', '/organization/:org/proxycache/*rest', '/organization/:org/validateproxycache'], refuse);
}
