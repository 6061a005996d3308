import type {
  BlobHit,
  CoreServices,
  Digest,
  LookupContext,
  LookupSource,
  ManifestHit,
  NameResolver,
  Reference,
  RegistrationPoints,
  RegistryPlugin,
  RepoTarget,
  WriteGuard,
} from '@entrepot/registry-core';
import { describeProxyCacheOperations } from './api/proxycache-docs';
import { disabledProxyCacheRoutes, proxyCacheRoutes, type ProxyCacheRouteDeps } from './api/proxycache-routes';
import { createCacheMetrics } from './cache-metrics';
import { CacheConfigStore } from './config/cache-config-store';
import { applyDeclaredOrgs } from './config/declared-orgs';
import { proxyCacheSchema } from './config/migrations';
import type { ProxyCacheSettings } from './config/plugin-settings';
import { FillRegistry } from './fill/fill-registry';
import { TagFreshness } from './freshness/tag-freshness';
import { MirrorResolver } from './routing/mirror-resolver';
import { SsrfGuard } from './routing/ssrf-guard';
import { CacheSource } from './source/cache-source';
import { PushGuard } from './source/push-guard';
import { UpstreamPool } from './source/upstream-pool';
import { flushRoutes, type FlushRouteDeps } from './api/flush-routes';
import { BypassSet } from './eviction/bypass-set';
import { createEvictionMetrics } from './eviction/eviction-metrics';
import { QuotaKeeper } from './eviction/quota-keeper';

/** The parts built in `init`, once the core's services exist. */
interface Runtime {
  source: CacheSource;
  resolver: MirrorResolver;
  guard: PushGuard;
  routes: ProxyCacheRouteDeps;
  flush: FlushRouteDeps;
  quota: QuotaKeeper;
  configs: CacheConfigStore;
  core: CoreServices;
}

/** Registers the proxy cache's extension points; see docs/architecture.md for the pull path. */
export class ProxyCachePlugin implements RegistryPlugin {
  readonly id = 'proxy-cache';
  private runtime: Runtime | null = null;
  private readonly fills = new FillRegistry();
  private pool: UpstreamPool | null = null;

  constructor(
    private readonly settings: ProxyCacheSettings,
    private readonly upstreamEnabled: boolean,
  ) {}

  private get parts(): Runtime {
    if (!this.runtime) throw new Error('proxy-cache plugin used before init');
    return this.runtime;
  }

  register(points: RegistrationPoints): void {
    points.addMigrations([proxyCacheSchema]);
    const source: LookupSource = {
      id: 'proxy-cache',
      resolveManifest: (ref: Reference, ctx: LookupContext): Promise<ManifestHit | null> => this.parts.source.resolveManifest(ref, ctx),
      revalidateTag: (tag: string, local: ManifestHit, ctx: LookupContext) => this.parts.source.revalidateTag(tag, local, ctx),
      resolveBlob: (digest: Digest, ctx: LookupContext): Promise<BlobHit | null> => this.parts.source.resolveBlob(digest, ctx),
      listTags: (ctx: LookupContext) => this.parts.source.listTags(ctx),
      listReferrers: (subject: Digest, ctx: LookupContext) => this.parts.source.listReferrers(subject, ctx),
    };
    const resolver: NameResolver = { resolve: (name: string, query: { ns?: string }) => this.parts.resolver.resolve(name, query) };
    const guard: WriteGuard = { checkWrite: (target: RepoTarget, action: 'push' | 'delete') => this.parts.guard.checkWrite(target, action) };
    points.addLookupSource(source);
    points.addNameResolver(resolver);
    points.addWriteGuard(guard);
    // The core mounts API routes after init, so the runtime exists by then.
    points.addApiRoutes((router, docs) => {
      describeProxyCacheOperations(docs);
      if (!this.upstreamEnabled) disabledProxyCacheRoutes(router);
      else {
        flushRoutes(router, this.parts.flush);
        proxyCacheRoutes(router, this.parts.routes);
      }
    });
    points.onQuotaChanged(async (orgId) => {
      const { configs, core, quota } = this.parts;
      const org = await core.repositories.findOrgById(orgId);
      if (org && (await configs.get(orgId))) await quota.enforce(org);
    });
    points.onShutdown(async () => {
      await this.fills.cancelAll();
      await this.pool?.close();
    });
  }

  async init(core: CoreServices): Promise<void> {
    const configs = new CacheConfigStore(core.db, core.secrets, core.clock, core.notices);
    const metrics = createCacheMetrics(core.metrics, () => this.fills.inFlight);
    const ssrf = new SsrfGuard(this.settings.allowed_upstream_hosts);
    const pool = new UpstreamPool(core.config.instance_name, this.settings, configs, metrics, core.logger, core.clock);
    this.pool = pool;
    const freshness = new TagFreshness(core.db, core.reads, core.clock);
    const quota = new QuotaKeeper(core, freshness, createEvictionMetrics(core.metrics), core.config.flags.FEATURE_QUOTA_MANAGEMENT !== false);
    const source = new CacheSource({
      configs,
      content: core.content,
      repositories: core.repositories,
      storage: core.storage,
      fills: this.fills,
      freshness,
      metrics,
      logger: core.logger,
      clock: core.clock,
      upstreamFor: (config) => pool.clientFor(config),
      upstreamEnabled: this.upstreamEnabled,
      quota,
      bypass: new BypassSet(core.clock),
      coordinator: core.coordinator,
      revalidationDeadlineMs: this.settings.revalidation_deadline_ms,
    });
    this.runtime = {
      source,
      resolver: new MirrorResolver(configs, core.repositories, this.settings.default_mirror_org),
      guard: new PushGuard(configs),
      routes: { core, configs, settings: this.settings, ssrf, probeUpstream: (config, password) => pool.probe(config, password) },
      flush: { core, configs, freshness },
      quota,
      configs,
      core,
    };
    if (this.upstreamEnabled) await applyDeclaredOrgs(this.settings.orgs, this.settings, configs, core);
  }
}
