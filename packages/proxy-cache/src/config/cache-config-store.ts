import { ShortMemo, type Clock, type Db, type SecretBox } from '@entrepot/registry-core';
import { defaultEndpoint, parseUpstreamRegistry, formatUpstream, type UpstreamSpec } from '../routing/upstream-ref';

export type On404 = 'remove' | 'keep';

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
}

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
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** How long another replica's configuration change may take to apply here. */
const CONFIG_TTL_MS = 2000;

export function endpointOf(config: CacheConfig): string {
  return config.upstreamEndpoint ?? defaultEndpoint(config.spec, config.insecure);
}

/** Cache organization configurations; upstream passwords are sealed with the core's SecretBox. */
export class CacheConfigStore {
  private readonly recent: ShortMemo<number, CacheConfig | null>;

  constructor(
    private readonly db: Db,
    private readonly secrets: SecretBox,
    private readonly clock: Clock,
  ) {
    this.recent = new ShortMemo(clock, { ttlMs: CONFIG_TTL_MS, maxEntries: 10_000 });
  }

  /**
   * Every pull asks this for its organization, so answers (including "not a
   * cache") are kept for a moment; a change made on this replica applies at once,
   * one made on another within CONFIG_TTL_MS.
   */
  async get(orgId: number): Promise<CacheConfig | null> {
    const cached = this.recent.get(orgId);
    if (cached !== undefined) return cached;
    const row = await this.db('proxy_cache_configs').where({ org_id: orgId }).first();
    const config = row ? toConfig(row) : null;
    this.recent.set(orgId, config);
    return config;
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
    this.recent.delete(orgId);
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
      updated_at: now,
    };
    if (input.password !== undefined) row.password_sealed = input.password === null ? null : this.secrets.encrypt(input.password);
    await this.db('proxy_cache_configs')
      .insert({ ...row, password_sealed: row.password_sealed ?? null, created_at: now })
      .onConflict('org_id')
      .merge(row);
    // Again after the write: a read racing with it may have cached the old row.
    this.recent.delete(orgId);
    const saved = await this.get(orgId);
    if (!saved) throw new Error('cache configuration vanished after saving');
    return saved;
  }

  async delete(orgId: number): Promise<boolean> {
    const deleted = (await this.db('proxy_cache_configs').where({ org_id: orgId }).delete()) > 0;
    this.recent.delete(orgId);
    return deleted;
  }
}
