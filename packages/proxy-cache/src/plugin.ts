import { type BlobHit, type BlobStat, type CorePorts, type Digest, type LookupContext, type LookupSource, type ManifestHit, type NameResolver, type PullGuard, type RegistrationPoints, type RegistryPlugin, type RepoTarget, type WriteGuard, type oci } from '@entrepot/registry-core';
import { describeProxyCacheOperations } from './api/proxycache-docs';
import { disabledProxyCacheRoutes, proxyCacheRoutes, type ProxyCacheRouteDeps } from './api/proxycache-routes';
import { createCacheMetrics } from './cache-metrics';
import { CacheConfigStore } from './config/cache-config-store';
import { applyDeclaredOrgs } from './config/declared-orgs';
import { fillOnRangeColumn, proxyCacheSchema, referrersAndSignatures } from './config/migrations';
import type { ProxyCacheSettings } from './config/plugin-settings';
import { TagFreshness } from './freshness/tag-freshness';
import { ReferrerLists } from './freshness/referrer-lists';
import { MirrorResolver } from './routing/mirror-resolver';
import { SsrfGuard } from './routing/ssrf-guard';
import { CacheSource } from './source/cache-source';
import { PushGuard } from './source/push-guard';
import { UpstreamPool } from './source/upstream-pool';
import { flushRoutes, type FlushRouteDeps } from './api/flush-routes';
import { referrerRoutes } from './api/referrer-routes';
import { BypassSet } from './eviction/bypass-set';
import { createEvictionMetrics } from './eviction/eviction-metrics';
import { QuotaKeeper } from './eviction/quota-keeper';
import { lifecycleSchema } from './config/lifecycle-migration';
import { jobsRoutes, type JobsRouteDeps } from './api/jobs-routes';
import { IdleExpiry } from './lifecycle/expire-job';
import { JobRuns } from './lifecycle/job-runs';
import { EVICT_JOB, EXPIRE_JOB, LifecycleJobs, LifecycleScheduler, REFRESH_JOB, type CacheJobData, type CacheJobName, type CacheJobWork } from './lifecycle/lifecycle-jobs';
import { createLifecycleMetrics } from './lifecycle/lifecycle-metrics';
import { RefreshAhead } from './lifecycle/refresh-job';
import { statsRoutes, type StatsRouteDeps } from './api/stats-routes';
import { StatsRecorder } from './stats/stats-recorder';
import { createSignatureMetrics, SignaturePolicy } from './signatures/signature-policy';
import { PeerClient } from './peer/peer-client';
import { PeerServer } from './peer/peer-server';
import { SharedBreakers } from './upstream/shared-breakers';
import { PieceBudget } from './fill/piece-budget';
import { SharedRateLimits } from './upstream/shared-rate-limits';

/** The parts built in `init`, once the core's services exist. */
interface Runtime {
  source: CacheSource;
  resolver: MirrorResolver;
  guard: PushGuard;
  routes: ProxyCacheRouteDeps;
  flush: FlushRouteDeps;
  quota: QuotaKeeper;
  configs: CacheConfigStore;
  core: CorePorts;
  jobs: LifecycleJobs;
  jobWork: Record<CacheJobName, CacheJobWork>;
  jobRoutes: JobsRouteDeps;
  scheduler: LifecycleScheduler;
  stats: StatsRecorder;
  statsRoutes: StatsRouteDeps;
  signatures: SignaturePolicy;
}

/** Registers the proxy cache's extension points; see docs/architecture.md for the pull path. */
export class ProxyCachePlugin implements RegistryPlugin {
  readonly id = 'proxy-cache';
  private runtime: Runtime | null = null;
  private pool: UpstreamPool | null = null;
  private peerServer: PeerServer | null = null;
  private peerClient: PeerClient | null = null;

  constructor(
    private readonly settings: ProxyCacheSettings,
    private readonly upstreamEnabled: boolean,
  ) {}

  private get parts(): Runtime {
    if (!this.runtime) throw new Error('proxy-cache plugin used before init');
    return this.runtime;
  }

  register(points: RegistrationPoints): void {
    points.addMigrations([proxyCacheSchema, lifecycleSchema, referrersAndSignatures, fillOnRangeColumn]);
    // Registered before init (the core starts the queue after it); the work exists by the time a job runs.
    for (const job of [EXPIRE_JOB, EVICT_JOB, REFRESH_JOB] as const) {
      points.addJobHandler<CacheJobData>(job, (data) => this.parts.jobs.handler(job, this.parts.jobWork[job])(data), { concurrency: 2 });
    }
    const source: LookupSource = {
      id: 'proxy-cache',
      findManifest: (ref: oci.Reference, ctx: LookupContext): Promise<ManifestHit | null> => this.parts.source.manifests.find(ref, ctx),
      revalidateTag: (tag: string, local: ManifestHit, ctx: LookupContext) => this.parts.source.manifests.revalidate(tag, local, ctx),
      findBlob: (digest: Digest, ctx: LookupContext, stored: BlobStat | null): Promise<BlobHit | null> => this.parts.source.blobs.find(digest, ctx, stored),
      listTags: (ctx: LookupContext) => this.parts.source.listTags(ctx),
      listReferrers: (subject: Digest, ctx: LookupContext): Promise<oci.ReferrerDescriptor[] | null> => this.parts.source.listReferrers(subject, ctx),
    };
    const resolver: NameResolver = { targetOf: (name: string, query: { ns?: string }) => this.parts.resolver.targetOf(name, query) };
    const guard: WriteGuard = { checkWrite: (target: RepoTarget, action: 'push' | 'delete') => this.parts.guard.checkWrite(target, action) };
    const signatures: PullGuard = { checkPull: (ref: oci.Reference, hit: ManifestHit, ctx: LookupContext) => this.parts.signatures.checkPull(ref, hit, ctx) };
    points.addLookupSource(source);
    points.addNameResolver(resolver);
    points.addWriteGuard(guard);
    points.addPullGuard(signatures);
    // The core mounts API routes after init, so the runtime exists by then.
    points.addApiRoutes((router, docs) => {
      describeProxyCacheOperations(docs);
      if (!this.upstreamEnabled) disabledProxyCacheRoutes(router);
      else {
        flushRoutes(router, this.parts.flush);
        referrerRoutes(router, { core: this.parts.core, configs: this.parts.configs, source: this.parts.source, signatures: this.parts.signatures });
        proxyCacheRoutes(router, this.parts.routes);
        jobsRoutes(router, this.parts.jobRoutes);
        statsRoutes(router, this.parts.statsRoutes);
      }
    });
    // A lowered quota is enforced by a job, so the request returns at once; admissions keep the limit meanwhile.
    points.onQuotaChanged(async (orgId) => {
      const { configs, core, quota, jobs } = this.parts;
      if (!(await configs.get(orgId))) return;
      try {
        await jobs.enqueue(EVICT_JOB, orgId);
      } catch (err) {
        core.logger.warn('eviction job not queued; evicting now', { orgId, error: String(err) });
        const org = await core.repositories.findOrgById(orgId);
        if (org) await quota.enforce(org);
      }
    });
    points.onPull((event) => {
      const runtime = this.runtime;
      if (!runtime) return;
      runtime.configs.get(event.target.org.id).then(
        (config) => {
          if (config) runtime.stats.pull(event.target.org.id, event);
        },
        (err: unknown) => runtime.core.logger.warn('pull not counted in cache statistics', { error: String(err) }),
      );
    });
    points.onShutdown(async () => {
      // The core has cancelled running fills by now: followers reading them through the peer listener take them over.
      this.runtime?.scheduler.stop();
      await this.runtime?.stats.stop();
      await this.peerServer?.close();
      await this.peerClient?.close();
      await this.pool?.close();
    });
  }

  async init(core: CorePorts): Promise<void> {
    const configs = new CacheConfigStore(core.db, core.secrets, core.clock, core.memo);
    const pieceBudget = new PieceBudget(this.settings.fill_pieces_max_bytes);
    const metrics = createCacheMetrics(core.metrics, () => core.fills.inFlight, () => pieceBudget.taken);
    const ssrf = new SsrfGuard(this.settings.allowed_upstream_hosts);
    // Across replicas (Redis coordination), one replica's failures open every replica's breaker and one probes.
    const shared = core.coordinator.kind === 'redis' ? new SharedBreakers(core.notices, core.coordinator, core.logger, this.settings.breaker_cooldown_ms) : undefined;
    const stats = new StatsRecorder(core.db, core.clock, core.logger, this.settings.stats_flush_ms);
    // The upstream counts every replica's requests together: the RateLimit-Remaining one replica sees is every replica's.
    const rateLimits =
      core.coordinator.kind === 'redis'
        ? new SharedRateLimits(core.notices, (host, remaining, at) => {
            metrics.rateLimitRemaining.set({ upstream: host }, remaining);
            stats.rateLimit(host, remaining, at);
          })
        : undefined;
    const pool = new UpstreamPool(core.config.instance_name, this.settings, configs, metrics, core.logger, core.clock, (info) => stats.upstreamResponse(info), shared, rateLimits, core.pooledReads);
    this.pool = pool;
    const freshness = new TagFreshness(core.db, core.reads, core.clock, core.memo, core.usage);
    const referrerLists = new ReferrerLists(core.db, core.clock);
    const lifecycleMetrics = createLifecycleMetrics(core.metrics);
    const runs = new JobRuns(core.db, core.clock, core.config.instance_name);
    const jobs = new LifecycleJobs({ core, configs, runs, metrics: lifecycleMetrics });
    const quota = new QuotaKeeper(core, freshness, createEvictionMetrics(core.metrics), core.config.flags.FEATURE_QUOTA_MANAGEMENT !== false, {
      afterAdmission: (org, counted, limit) => {
        // Above the watermark, evict in the background so that later admissions rarely have to.
        void configs.get(org.id).then(
          (config) => {
            if (config?.lowWatermark && counted > limit * config.lowWatermark) jobs.request(EVICT_JOB, org.id);
          },
          (err: unknown) => core.logger.warn('eviction watermark not checked', { error: String(err) }),
        );
      },
      evicted: (org, count, bytes) => stats.eviction(org.id, count, bytes),
    });
    const peers = await this.startPeers(core);
    const source = new CacheSource({
      configs,
      content: core.content,
      repositories: core.repositories,
      storage: core.storage,
      fills: core.fills,
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
      stats,
      parallelFill: {
        thresholdBytes: this.settings.fill_parallel_threshold_bytes,
        pieceBytes: this.settings.fill_piece_bytes,
        connections: this.settings.fill_connections,
        belowBytesPerSecond: this.settings.fill_parallel_below_bytes_per_second,
        always: this.settings.fill_parallel === 'always',
        budget: pieceBudget,
      },
      peers,
    }, referrerLists);
    const intervalMs = this.settings.lifecycle_interval_s * 1000;
    const expiry = new IdleExpiry(core, freshness, lifecycleMetrics, stats);
    // Two intervals ahead, so that a run lands inside the window; at most half the staleness period.
    const refresh = new RefreshAhead(core, source, lifecycleMetrics, (config) => Math.min(2 * intervalMs, (config.expirationS * 1000) / 2));
    const jobWork: Record<CacheJobName, CacheJobWork> = {
      [EXPIRE_JOB]: (org, config) => expiry.run(org, config),
      [REFRESH_JOB]: (org, config) => refresh.run(org, config),
      [EVICT_JOB]: async (org, config) => {
        const result = await quota.enforce(org, config.lowWatermark ?? 1);
        return result && { usage_before: result.before, usage_after: result.after, target_bytes: result.target, freed_bytes: Math.max(0, result.before - result.after) };
      },
    };
    const scheduler = new LifecycleScheduler({ core, configs, runs, metrics: lifecycleMetrics }, jobs, intervalMs);
    this.runtime = {
      source,
      resolver: new MirrorResolver(configs, core.repositories, this.settings.default_mirror_org),
      guard: new PushGuard(configs),
      routes: { core, configs, settings: this.settings, ssrf, probeUpstream: (config, password) => pool.probe(config, password) },
      flush: { core, configs, freshness, referrerLists },
      quota,
      configs,
      core,
      jobs,
      jobWork,
      jobRoutes: { core, configs, runs },
      scheduler,
      stats,
      statsRoutes: { core, configs, recorder: stats, breakerState: (endpoint) => pool.breakerState(endpoint) },
      signatures: new SignaturePolicy(configs, source, core.repositories, core.usage, createSignatureMetrics(core.metrics)),
    };
    stats.start();
    if (this.upstreamEnabled) {
      await applyDeclaredOrgs(this.settings.orgs, this.settings, configs, core);
      scheduler.start();
    }
  }

  /** The peer listener and client, when configured: followers stream fills from their owners. */
  private async startPeers(core: CorePorts): Promise<{ client: PeerClient; selfUrl: string } | undefined> {
    const settings = this.settings.peer;
    if (!settings || !this.upstreamEnabled) return undefined;
    this.peerServer = new PeerServer(settings, core.fills, core.http.sendBody, core.logger);
    const selfUrl = await this.peerServer.listen();
    this.peerClient = new PeerClient(settings.secret);
    core.logger.info('peer listener for fills started', { url: selfUrl });
    return { client: this.peerClient, selfUrl };
  }
}
