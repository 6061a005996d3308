import { type CorePorts } from '@entrepot/registry-core';
import type { CacheConfigStore } from './cache-config-store';
import { parseSignatureKey } from '../signatures/cosign-keys';
import type { DeclaredCacheOrg, ProxyCacheSettings } from './plugin-settings';

/**
 * Creates or updates the cache organizations declared in the config file, so an
 * operator can start Entrepot already caching Docker Hub. The operator's file is
 * trusted: no SSRF check applies to it.
 */
export async function applyDeclaredOrgs(orgs: DeclaredCacheOrg[], settings: ProxyCacheSettings, configs: CacheConfigStore, core: CorePorts): Promise<void> {
  for (const declared of orgs) {
    const signatureKeys = declared.signature_public_keys ?? [];
    signatureKeys.forEach((pem, i) => parseSignatureKey(pem, `proxy_cache.orgs[${declared.name}].signature_public_keys.${i}`));
    if (declared.require_signature && signatureKeys.length === 0) throw new Error(`proxy_cache.orgs[${declared.name}]: require_signature needs signature_public_keys`);
    const org = await core.repositories.ensureOrg(declared.name, declared.is_public ?? false);
    await configs.upsert(org.id, {
      upstreamRegistry: declared.upstream_registry,
      upstreamEndpoint: declared.upstream_endpoint ?? null,
      username: declared.upstream_registry_username ?? null,
      password: declared.upstream_registry_password ?? null,
      expirationS: declared.expiration_s ?? settings.default_expiration_s,
      insecure: declared.insecure ?? false,
      staleIfErrorS: declared.stale_if_error_s ?? settings.default_stale_if_error_s,
      onUpstream404: declared.on_upstream_404 ?? 'remove',
      idleExpirationS: declared.idle_expiration_s === undefined ? undefined : declared.idle_expiration_s || null,
      refreshMinPulls: declared.refresh_min_pulls === undefined ? undefined : declared.refresh_min_pulls || null,
      prefetchChangedTags: declared.prefetch_changed_tags,
      lowWatermark: declared.low_watermark,
      requireSignature: declared.require_signature ?? false,
      signatureKeys,
      fillOnRange: declared.fill_on_range ?? 'always',
    });
    core.logger.info('cache organization declared in config', { org: declared.name, upstream: declared.upstream_registry });
  }
}
