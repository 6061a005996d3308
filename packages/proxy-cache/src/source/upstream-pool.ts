import type { Clock, Logger, PooledReads } from '../core-types';
import type { CacheMetrics } from '../cache-metrics';
import { endpointOf, type CacheConfig, type CacheConfigStore } from '../config/cache-config-store';
import type { ProxyCacheSettings } from '../config/plugin-settings';
import { CircuitBreaker } from '../upstream/circuit-breaker';
import type { UpstreamResponseInfo } from '../upstream/http-transport';
import { UpstreamClient } from '../upstream/upstream-client';
import type { SharedBreakers } from '../upstream/shared-breakers';

/** Shares the RateLimit-Remaining values this replica sees (see SharedRateLimits). */
export interface RateLimitSharing {
  observed(host: string, remaining: number, at: number): void;
}

const BREAKER_LEVEL = { closed: 0, 'half-open': 1, open: 2 } as const;

/**
 * One upstream client per cache organization, rebuilt when its configuration
 * changes, and one circuit breaker per upstream endpoint shared by every
 * organization that uses it, so a dead upstream is noticed once.
 */
export class UpstreamPool {
  private readonly clients = new Map<number, { updatedAt: number; client: UpstreamClient }>();
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(
    /** Our instance name: sent in `Via`, and a response carrying it means we are our own upstream. */
    private readonly via: string,
    private readonly settings: ProxyCacheSettings,
    private readonly configs: CacheConfigStore,
    private readonly metrics: CacheMetrics,
    private readonly logger: Logger,
    private readonly clock: Clock,
    /** Told every upstream response and failure (statistics). */
    private readonly observe: (info: UpstreamResponseInfo) => void = () => undefined,
    /** Breakers shared with the other replicas (scale-out). */
    private readonly shared?: SharedBreakers,
    private readonly rateLimits?: RateLimitSharing,
    /** Blob bodies arrive in the core's reusable read buffers (without it, in undici's). */
    private readonly pooledReads?: PooledReads,
  ) {}

  /** This process's circuit breaker state for an endpoint ('closed' before any request). */
  breakerState(endpoint: string): string {
    return this.breakers.get(new URL(endpoint).origin)?.state() ?? 'closed';
  }

  async clientFor(config: CacheConfig): Promise<UpstreamClient> {
    const cached = this.clients.get(config.orgId);
    if (cached && cached.updatedAt === config.updatedAt) return cached.client;
    const password = config.hasPassword ? await this.configs.password(config.orgId) : null;
    const client = this.build(config, password, this.breakerFor(endpointOf(config)));
    this.clients.set(config.orgId, { updatedAt: config.updatedAt, client });
    if (cached) void cached.client.close().catch(() => undefined);
    return client;
  }

  /** A client for a configuration that is not saved yet (validation); the caller drops it. */
  probe(config: CacheConfig, password: string | null): UpstreamClient {
    return this.build(config, password, undefined);
  }

  private build(config: CacheConfig, password: string | null, breaker: CircuitBreaker | undefined): UpstreamClient {
    return new UpstreamClient({
      endpoint: new URL(endpointOf(config)),
      insecure: config.insecure,
      credentials: config.username && password ? { username: config.username, password } : undefined,
      timeouts: { connectMs: this.settings.connect_timeout_ms, headersMs: this.settings.headers_timeout_ms, idleMs: this.settings.idle_timeout_ms },
      userAgent: 'entrepot-proxy-cache',
      via: this.via,
      clock: this.clock,
      logger: this.logger,
      onResponse: (info) => this.record(info),
      pooledReads: this.pooledReads,
      breaker,
      breakerOptions: { failureThreshold: this.settings.breaker_failures, cooldownMs: this.settings.breaker_cooldown_ms },
    });
  }

  private breakerFor(endpoint: string): CircuitBreaker {
    const url = new URL(endpoint);
    let breaker = this.breakers.get(url.origin);
    if (!breaker) {
      const host = url.host;
      const origin = url.origin;
      const shared = this.shared;
      const created: CircuitBreaker = new CircuitBreaker({
        host,
        clock: this.clock,
        failureThreshold: this.settings.breaker_failures,
        cooldownMs: this.settings.breaker_cooldown_ms,
        onStateChange: (change) => {
          this.metrics.breakerState.set({ upstream: host }, BREAKER_LEVEL[change.to]);
          this.logger.warn('upstream circuit breaker changed state', { upstream: host, from: change.from, to: change.to, ...(change.followed ? { followed: true } : {}) });
          shared?.changed(origin, change, created);
        },
        mayProbe: shared ? () => shared.mayProbe(origin) : undefined,
      });
      shared?.attach(origin, created);
      breaker = created;
      this.breakers.set(origin, breaker);
    }
    return breaker;
  }

  private record(info: UpstreamResponseInfo): void {
    this.metrics.upstreamRequests.inc({ upstream: info.host, method: info.method, status: info.status ? String(info.status) : (info.failure ?? 'error') });
    if (info.rateLimitRemaining !== undefined) {
      this.metrics.rateLimitRemaining.set({ upstream: info.host }, info.rateLimitRemaining);
      this.rateLimits?.observed(info.host, info.rateLimitRemaining, this.clock.now());
    }
    this.observe(info);
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()].map((c) => c.client);
    this.clients.clear();
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}
