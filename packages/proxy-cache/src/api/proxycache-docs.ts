import { z } from 'zod';
import type { ApiDocs } from '../core-types';
import { STATS_COLUMNS, type StatsColumn } from '../config/lifecycle-migration';
import { flushQuery } from './flush-routes';
import { jobsQuery } from './jobs-routes';
import { configBody } from './proxycache-routes';
import { referrersQuery } from './referrer-routes';
import { statsQuery } from './stats-routes';

export const proxyCacheConfigSchema = z
  .object({
    upstream_registry: z.string(),
    upstream_registry_username: z.string().nullable().optional().meta({ description: 'administrators only' }),
    upstream_registry_password_set: z.boolean().optional().meta({ description: 'administrators only; the password itself is never returned' }),
    expiration_s: z.number().int(),
    insecure: z.boolean(),
    upstream_endpoint: z.string().nullable(),
    stale_if_error_s: z.number().int(),
    on_upstream_404: z.enum(['remove', 'keep']).meta({ id: 'OnUpstream404' }),
    idle_expiration_s: z.number().int().nullable().meta({ description: 'tags not pulled for this long expire (null: off)' }),
    refresh_min_pulls: z.number().int().nullable().meta({ description: 'tags pulled at least this often are refreshed ahead of expiry (null: off)' }),
    prefetch_changed_tags: z.boolean(),
    low_watermark: z.number().nullable().meta({ description: 'background eviction brings usage down to this fraction of the hard limit (null: off)' }),
    require_signature: z.boolean().meta({ description: 'pulls need a valid cosign signature by one of the keys' }),
    signature_public_keys: z.array(z.string()).meta({ description: 'PEM public keys' }),
    signature_key_fingerprints: z.array(z.string()),
    fill_on_range: z.enum(['always', 'never']).meta({ description: 'whether a ranged blob read fills the whole blob into the cache' }),
  })
  .meta({ id: 'ProxyCacheConfig' });

/** Quay's answer for an organization that is not a cache. */
export const proxyCacheNotConfiguredSchema = z
  .object({ upstream_registry: z.literal(''), expiration_s: z.literal(''), insecure: z.literal('') })
  .meta({ id: 'ProxyCacheNotConfigured' });

export const flushResultSchema = z
  .object({ removed: z.object({ tags: z.number().int(), manifests: z.number().int() }), usage_bytes: z.number().int() })
  .meta({ id: 'FlushResult' });

export const statsWindowSchema = z.enum(['24h', '7d', '30d']).meta({ id: 'StatsWindow' });

const statsRepositorySchema = z
  .object({ repository: z.string(), pulls: z.number().int(), bytes_saved: z.number().int(), cache_requests: z.number().int(), upstream_requests: z.number().int() })
  .meta({ id: 'CacheStatsRepository' });

const bucketCounts = Object.fromEntries(STATS_COLUMNS.map((c) => [c, z.number().int()])) as Record<StatsColumn, z.ZodNumber>;

export const cacheStatsSchema = z
  .object({
    organization: z.string(),
    window: statsWindowSchema,
    from: z.string(),
    to: z.string(),
    bucket_seconds: z.number().int(),
    requests: z.object({ cache: z.number().int(), upstream: z.number().int(), hit_ratio: z.number().nullable() }),
    bytes: z.object({ cache: z.number().int(), upstream: z.number().int(), saved: z.number().int(), hit_ratio: z.number().nullable() }),
    pulls: z.number().int(),
    revalidations: z.object({ unchanged: z.number().int(), changed: z.number().int() }),
    stale_serves: z.number().int(),
    evictions: z.object({ count: z.number().int(), bytes: z.number().int() }),
    expiries: z.object({ count: z.number().int(), bytes: z.number().int() }),
    upstream: z.object({
      host: z.string(),
      breaker: z.string(),
      errors: z.record(z.string(), z.number().int()),
      last_error: z.object({ kind: z.string(), at: z.string() }).nullable(),
      rate_limit: z.object({ remaining: z.number(), at: z.string(), age_s: z.number().int() }).nullable(),
    }),
    quota: z.object({ limit_bytes: z.number().int().nullable(), usage_bytes: z.number().int(), usage_ratio: z.number().nullable() }),
    top_repositories: z.object({ by_pulls: z.array(statsRepositorySchema), by_bytes_saved: z.array(statsRepositorySchema) }),
    series: z.array(z.object({ start: z.string(), ...bucketCounts }).meta({ id: 'CacheStatsBucket' })),
  })
  .meta({ id: 'CacheStats' });

export const jobRunsSchema = z
  .object({
    runs: z.array(
      z
        .object({
          id: z.number().int(),
          job: z.string(),
          state: z.enum(['completed', 'failed']),
          replica: z.string(),
          started: z.string(),
          duration_ms: z.number().int(),
          summary: z.record(z.string(), z.unknown()).meta({ description: 'what the run did (`{}`: nothing to do)' }),
        })
        .meta({ id: 'JobRun' }),
    ),
  })
  .meta({ id: 'JobRuns' });

export const referrersReportSchema = z
  .object({
    digest: z.string(),
    referrers: z.array(
      z
        .object({ artifact_type: z.string().nullable(), media_type: z.string(), digest: z.string(), size: z.number().int(), annotations: z.record(z.string(), z.string()) })
        .meta({ id: 'Referrer' }),
    ),
    signature: z
      .object({ require_signature: z.boolean(), verified: z.boolean().nullable().meta({ description: 'null: the organization has no keys' }), key_fingerprint: z.string().nullable(), via: z.string().nullable() })
      .meta({ id: 'SignatureState' }),
  })
  .meta({ id: 'ReferrersReport' });

const ORG = { org: 'organization name' };
const ADMIN = 'organization administrators and superusers';
const base = { tag: 'proxy cache', params: ORG, feature: 'FEATURE_PROXY_CACHE' };

/** The cache organization operations, with the schemas that validate them. */
export function describeProxyCacheOperations(docs: ApiDocs): void {
  docs.operation({
    ...base,
    method: 'get',
    path: '/organization/:org/proxycache',
    operationId: 'getProxyCacheConfig',
    summary: 'The cache configuration (empty fields when the organization is not a cache)',
    access: 'members of the organization',
    responses: { 200: { description: 'the configuration', schema: z.union([proxyCacheConfigSchema, proxyCacheNotConfiguredSchema]) } },
  });
  docs.operation({
    ...base,
    method: 'post',
    path: '/organization/:org/proxycache',
    operationId: 'createProxyCacheConfig',
    summary: 'Make the organization a cache, or change its configuration',
    access: ADMIN,
    body: configBody,
    responses: { 201: { description: 'saved', schema: z.literal('Created') }, 409: { description: 'the organization already has repositories' } },
  });
  docs.operation({
    ...base,
    method: 'delete',
    path: '/organization/:org/proxycache',
    operationId: 'deleteProxyCacheConfig',
    summary: 'Stop being a cache (content stays)',
    access: ADMIN,
    responses: { 201: { description: 'removed (Quay answers 201)', schema: z.literal('Deleted') } },
  });
  docs.operation({
    ...base,
    method: 'post',
    path: '/organization/:org/validateproxycache',
    operationId: 'validateProxyCacheConfig',
    summary: 'Check that the upstream answers and accepts the credentials, without saving',
    access: ADMIN,
    body: configBody,
    responses: { 202: { description: '"Valid" (credentials checked) or "Anonymous" (none given)', schema: z.enum(['Valid', 'Anonymous']) } },
  });
  docs.operation({
    ...base,
    method: 'delete',
    path: '/organization/:org/proxycache/cache',
    operationId: 'flushProxyCache',
    summary: 'Remove cached content: the organization, one repository or one tag',
    access: ADMIN,
    query: flushQuery,
    responses: { 200: { description: 'what was removed', schema: flushResultSchema } },
  });
  docs.operation({
    ...base,
    method: 'get',
    path: '/organization/:org/proxycache/jobs',
    operationId: 'listProxyCacheJobRuns',
    summary: 'Recent lifecycle job runs (expire, evict, refresh), newest first',
    access: ADMIN,
    query: jobsQuery,
    responses: { 200: { description: 'the runs', schema: jobRunsSchema } },
  });
  docs.operation({
    ...base,
    method: 'get',
    path: '/organization/:org/proxycache/stats',
    operationId: 'getProxyCacheStats',
    summary: 'What the cache served and saved over a window',
    access: 'readers of the organization',
    query: statsQuery,
    responses: { 200: { description: 'the statistics', schema: cacheStatsSchema } },
  });
  docs.operation({
    ...base,
    method: 'get',
    path: '/organization/:org/proxycache/referrers',
    operationId: 'listProxyCacheReferrers',
    summary: "A manifest's referrers (cached and upstream) and its signature state under the organization's keys",
    access: 'readers of the organization',
    query: referrersQuery,
    responses: { 200: { description: 'the referrers', schema: referrersReportSchema } },
  });
}
