import type { CorePorts, Memo } from '@entrepot/registry-core';
import type { Clock, Db, Secrets } from '../core-types';
import { defaultEndpoint, parseUpstreamRegistry, formatUpstream, type UpstreamSpec } from '../routing/upstream-ref';

export type On404 = 'remove' | 'keep';
/** Whether a Range request for a blob not cached yet also starts the download of the whole blob. */
export type FillOnRange = 'always' | 'never';

/** A cache organization's configuration, secrets still sealed. */
export interface CacheConfig {
  orgId: number;
  spec: UpstreamSpec;
  upstreamRegistry: string;
  /** Explicit endpoint, or null to use the registry's default. */
  upstreamEndpoint: string | null;
  username: string | null;
  hasPassword: boolean;
  expirationS: number;
  insecure: boolean;
  staleIfErrorS: number;
  onUpstream404: On404;
  /** Tags not pulled for this long expire (null: never). */
  idleExpirationS: number | null;
  /** Tags pulled at least this often in a staleness period are refreshed ahead of its end (null: never). */
  refreshMinPulls: number | null;
  /** Whether a refresh that finds a changed tag fetches its new image for the platforms pulled before. */
  prefetchChangedTags: boolean;
  /** Fraction of the quota that background eviction brings usage down to (null: the limit itself). */
  lowWatermark: number | null;
  /** Pulls need a valid cosign signature by one of `signatureKeys` (PEM public keys). */
  requireSignature: boolean;
  signatureKeys: string[];
  fillOnRange: FillOnRange;
  createdAt: number;
  updatedAt: number;
}

export interface CacheConfigInput {
  upstreamRegistry: string;
  upstreamEndpoint?: string | null;
  username?: string | null;
  /** undefined keeps the stored password; null clears it. */
  password?: string | null;
  expirationS: number;
  insecure: boolean;
  staleIfErrorS: number;
  onUpstream404: On404;
  /** Lifecycle settings: undefined keeps what is stored. */
  idleExpirationS?: number | null;
  refreshMinPulls?: number | null;
  prefetchChangedTags?: boolean;
  lowWatermark?: number | null;
  requireSignature: boolean;
  signatureKeys: string[];
  /** Default `always`. */
  fillOnRange?: FillOnRange;
}

function storedKeys(value: unknown): string[] {
  if (typeof value !== 'string' || value === '') return [];
  try {
    const list: unknown = JSON.parse(value);
    return Array.isArray(list) ? list.filter((k): k is string => typeof k === 'string') : [];
  } catch {
    return [];
  }
}

const positiveOrNull = (value: unknown): number | null => (value === null || value === undefined || Number(value) <= 0 ? null : Number(value));

function toConfig(row: Record<string, unknown>): CacheConfig {
  const upstreamRegistry = String(row.upstream_registry);
  return {
    orgId: Number(row.org_id),
    spec: parseUpstreamRegistry(upstreamRegistry),
    upstreamRegistry,
    upstreamEndpoint: row.upstream_endpoint ? String(row.upstream_endpoint) : null,
    username: row.username ? String(row.username) : null,
    hasPassword: Boolean(row.password_sealed),
    expirationS: Number(row.expiration_s),
    insecure: Boolean(row.insecure),
    staleIfErrorS: Number(row.stale_if_error_s),
    onUpstream404: row.on_upstream_404 === 'keep' ? 'keep' : 'remove',
    idleExpirationS: positiveOrNull(row.idle_expiration_s),
    refreshMinPulls: positiveOrNull(row.refresh_min_pulls),
    prefetchChangedTags: Boolean(row.prefetch_changed_tags),
    lowWatermark: positiveOrNull(row.low_watermark),
    requireSignature: Boolean(row.require_signature),
    signatureKeys: storedKeys(row.signature_keys),
    fillOnRange: row.fill_on_range === 'never' ? 'never' : 'always',
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/**
 * How long a configuration read is kept. Changes reach every replica at once
 * through change notices; this bounds how long one whose notices were cut can
 * use an old configuration.
 */
const CONFIG_TTL_MS = 5000;

export function endpointOf(config: CacheConfig): string {
  return config.upstreamEndpoint ?? defaultEndpoint(config.spec, config.insecure);
}

/** Cache organization configurations; upstream passwords are sealed with the core's Secrets. */
export class CacheConfigStore {
  private readonly recent: Memo<number, CacheConfig | null>;

  constructor(
    private readonly db: Db,
    private readonly secrets: Secrets,
    private readonly clock: Clock,
    memo: CorePorts['memo'],
  ) {
    this.recent = memo({ ttlMs: CONFIG_TTL_MS, maxEntries: 10_000, sharedTopic: 'cache-configs' });
  }

  /**
   * Every pull asks this for its organization, so answers (including "not a
   * cache") are kept for a moment; a change made on any replica applies on all at once.
   */
  async get(orgId: number): Promise<CacheConfig | null> {
    return this.recent.getOrLoad(orgId, async () => {
      const row = await this.db('proxy_cache_configs').where({ org_id: orgId }).first();
      return row ? toConfig(row) : null;
    });
  }

  async listByRegistry(registry: string): Promise<CacheConfig[]> {
    const rows = await this.db('proxy_cache_configs').where('upstream_registry', registry).orWhere('upstream_registry', 'like', `${registry}/%`);
    return rows.map(toConfig).filter((c: CacheConfig) => c.spec.registry === registry);
  }

  async listAll(): Promise<CacheConfig[]> {
    return (await this.db('proxy_cache_configs')).map(toConfig);
  }

  /** The decrypted password, only for building upstream clients. */
  async password(orgId: number): Promise<string | null> {
    const row = await this.db('proxy_cache_configs').where({ org_id: orgId }).first('password_sealed');
    return row?.password_sealed ? this.secrets.decrypt(String(row.password_sealed)) : null;
  }

  async upsert(orgId: number, input: CacheConfigInput): Promise<CacheConfig> {
    const now = this.clock.now();
    const spec = parseUpstreamRegistry(input.upstreamRegistry);
    const row: Record<string, unknown> = {
      org_id: orgId,
      upstream_registry: formatUpstream(spec),
      upstream_endpoint: input.upstreamEndpoint ?? null,
      username: input.username ?? null,
      expiration_s: input.expirationS,
      insecure: input.insecure,
      stale_if_error_s: input.staleIfErrorS,
      on_upstream_404: input.onUpstream404,
      require_signature: input.requireSignature,
      signature_keys: JSON.stringify(input.signatureKeys),
      fill_on_range: input.fillOnRange ?? 'always',
      updated_at: now,
    };
    if (input.idleExpirationS !== undefined) row.idle_expiration_s = input.idleExpirationS;
    if (input.refreshMinPulls !== undefined) row.refresh_min_pulls = input.refreshMinPulls;
    if (input.prefetchChangedTags !== undefined) row.prefetch_changed_tags = input.prefetchChangedTags;
    if (input.lowWatermark !== undefined) row.low_watermark = input.lowWatermark;
    if (input.password !== undefined) row.password_sealed = input.password === null ? null : this.secrets.encrypt(input.password);
    await this.db('proxy_cache_configs')
      .insert({ ...row, password_sealed: row.password_sealed ?? null, created_at: now })
      .onConflict('org_id')
      .merge(row);
    await this.recent.forget(orgId);
    const saved = await this.get(orgId);
    if (!saved) throw new Error('cache configuration vanished after saving');
    return saved;
  }

  async delete(orgId: number): Promise<boolean> {
    const deleted = (await this.db('proxy_cache_configs').where({ org_id: orgId }).delete()) > 0;
    await this.recent.forget(orgId);
    return deleted;
  }
}
