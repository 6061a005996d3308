import { z } from 'zod';
import type { Config } from '../core-types';

const declaredOrg = z.object({
  name: z.string(),
  upstream_registry: z.string(),
  upstream_endpoint: z.string().url().optional(),
  upstream_registry_username: z.string().optional(),
  upstream_registry_password: z.string().optional(),
  expiration_s: z.number().int().min(0).optional(),
  insecure: z.boolean().optional(),
  stale_if_error_s: z.number().int().min(0).optional(),
  on_upstream_404: z.enum(['remove', 'keep']).optional(),
  idle_expiration_s: z.number().int().min(0).nullable().optional(),
  refresh_min_pulls: z.number().int().min(0).nullable().optional(),
  prefetch_changed_tags: z.boolean().optional(),
  low_watermark: z.number().gt(0).max(1).nullable().optional(),
  require_signature: z.boolean().optional(),
  /** PEM public keys (ECDSA P-256 or Ed25519) whose cosign signatures the policy accepts. */
  signature_public_keys: z.array(z.string()).optional(),
  is_public: z.boolean().optional(),
  fill_on_range: z.enum(['always', 'never']).optional(),
});

/**
 * The internal listener replicas read each other's fills from. Never part of
 * the public API: its own port, reachable only by peers presenting `secret`.
 */
const peerSettings = z.object({
  /** Interface to listen on: the replicas' private network, never the load balancer's. */
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535),
  /** How other replicas reach this one (default http://host:port). */
  advertise_url: z.string().url().optional(),
  /** Shared by every replica; at least 32 characters. */
  secret: z.string().min(32),
});

const settingsSchema = z.object({
  /** host[:port] patterns (`*` wildcards) that may resolve to loopback/private addresses. */
  allowed_upstream_hosts: z.array(z.string()).default([]),
  /** Organization that serves Docker Engine `registry-mirrors` requests (no `ns`, no org in the path). */
  default_mirror_org: z.string().optional(),
  connect_timeout_ms: z.number().int().positive().default(3000),
  headers_timeout_ms: z.number().int().positive().default(5000),
  /** A cached tag whose revalidation takes longer is served stale (within its stale-if-error window). */
  revalidation_deadline_ms: z.number().int().positive().default(2500),
  idle_timeout_ms: z.number().int().positive().default(30_000),
  breaker_failures: z.number().int().positive().default(5),
  breaker_cooldown_ms: z.number().int().positive().default(15_000),
  default_expiration_s: z.number().int().min(0).default(86400),
  default_stale_if_error_s: z.number().int().min(0).default(7 * 86400),
  /** How often the lifecycle jobs (idle expiry, refresh ahead, watermark eviction) are queued per cache organization. */
  lifecycle_interval_s: z.number().int().positive().default(60),
  /** How often each replica adds the statistics it counted to the database. */
  stats_flush_ms: z.number().int().min(100).default(10_000),
  /** Blobs larger than this are filled as pieces over several connections when the upstream honours Range. */
  fill_parallel_threshold_bytes: z.number().int().positive().default(64 * 1024 * 1024),
  fill_piece_bytes: z.number().int().min(64 * 1024).max(256 * 1024 * 1024).default(8 * 1024 * 1024),
  /** Connections one parallel fill uses at once; 1 turns parallel fills off. */
  fill_connections: z.number().int().min(1).max(16).default(4),
  /**
   * A parallel fill opens more connections only when its own GET delivers less
   * than this over its first 2 MiB while the event loop has time to spare: a
   * fast upstream (LAN, loopback) or a saturated process keeps one connection,
   * which costs less CPU and memory; a capped one (a CDN) gets the pieces.
   */
  fill_parallel_below_bytes_per_second: z.number().int().positive().default(64 * 1000 * 1000),
  /**
   * `when-slow` decides per fill as above; `always` fills every blob above the
   * threshold in pieces without measuring first, for upstreams known to cap
   * each connection, where the measurement only delays the pieces.
   */
  fill_parallel: z.enum(['when-slow', 'always']).default('when-slow'),
  /**
   * What all parallel fills together may hold in pieces ahead of their
   * readers (each alone holds at most twice `fill_connections` pieces): many
   * concurrent cold pulls from a capped upstream share it, and a fill past it
   * goes on one piece at a time.
   */
  fill_pieces_max_bytes: z.number().int().min(0).default(256 * 1024 * 1024),
  /** Followers stream fills from their owner through this listener; without it they wait for the stored blob. */
  peer: peerSettings.optional(),
  /** Cache organizations to create or update at start. */
  orgs: z.array(declaredOrg).default([]),
});

export type ProxyCacheSettings = z.infer<typeof settingsSchema>;
export type PeerSettings = z.infer<typeof peerSettings>;
export type DeclaredCacheOrg = z.infer<typeof declaredOrg>;

/** Reads the `proxy_cache` section of the config file plus its environment overrides. */
export function loadSettings(config: Config): ProxyCacheSettings {
  const section = (config.raw.proxy_cache ?? {}) as Record<string, unknown>;
  const env = config.env;
  const merged: Record<string, unknown> = { ...section };
  if (env.PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS !== undefined) {
    merged.allowed_upstream_hosts = env.PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS.split(',').map((s) => s.trim()).filter(Boolean);
  }
  if (env.PROXY_CACHE_DEFAULT_ORG) merged.default_mirror_org = env.PROXY_CACHE_DEFAULT_ORG;
  const peer = { ...((section.peer ?? {}) as Record<string, unknown>) };
  if (env.PROXY_CACHE_PEER_HOST) peer.host = env.PROXY_CACHE_PEER_HOST;
  if (env.PROXY_CACHE_PEER_PORT) peer.port = Number(env.PROXY_CACHE_PEER_PORT);
  if (env.PROXY_CACHE_PEER_URL) peer.advertise_url = env.PROXY_CACHE_PEER_URL;
  if (env.PROXY_CACHE_PEER_SECRET) peer.secret = env.PROXY_CACHE_PEER_SECRET;
  if (Object.keys(peer).length > 0) merged.peer = peer;
  const result = settingsSchema.safeParse(merged);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `  proxy_cache.${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`invalid proxy_cache configuration:\n${issues}`);
  }
  return result.data;
}
