import { z } from 'zod';
import type { ApiDocs } from '@entrepot/registry-core';
import { flushQuery } from './flush-routes';
import { configBody } from './proxycache-routes';

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
  })
  .meta({ id: 'ProxyCacheConfig' });

/** Quay's answer for an organization that is not a cache. */
export const proxyCacheNotConfiguredSchema = z
  .object({ upstream_registry: z.literal(''), expiration_s: z.literal(''), insecure: z.literal('') })
  .meta({ id: 'ProxyCacheNotConfigured' });

export const flushResultSchema = z
  .object({ removed: z.object({ tags: z.number().int(), manifests: z.number().int() }), usage_bytes: z.number().int() })
  .meta({ id: 'FlushResult' });

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
}
