import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Express } from 'express';
import { AuditLog } from './audit/audit-log';
import { DbAuthenticator } from './auth/db-authenticator';
import { DbAuthorizer } from './auth/db-authorizer';
import { LoginThrottle } from './auth/login-throttle';
import { PasswordHasher } from './auth/passwords';
import { SecretBox } from './auth/secret-box';
import { TokenService } from './auth/token-service';
import type { Config } from './config/config';
import { createDb, ensureDatabaseExists, migrate, type Db } from './db/database';
import { createPointReads, type PointReads } from './db/point-reads';
import { coreMigrations } from './db/migrations/core-migrations';
import { buildApp } from './http/app';
import { createAppServer, type AppServer } from './http/app-server';
import { createHttpHelpers } from './http/http-helpers-impl';
import { apiRouter, type ApiSurface } from './http/routes/api/api-router';
import { healthRouter } from './http/routes/health-routes';
import { tokenRouter } from './http/routes/token-route';
import { registryRouter } from './http/routes/v2/registry-router';
import { createQueue } from './jobs/create-queue';
import type { ChangeNotices } from './coordination/change-notices';
import { withLock, type Coordinator } from './coordination/coordinator';
import { BlobLocks } from './services/blob-locks';
import { createChangeNotices, createCoordinator } from './coordination/create-coordinator';
import type { JobQueue } from './jobs/job-queue';
import { createLogger, type Logger } from './logging/logger';
import { createMetrics, registerBufferPoolMetrics, type CoreMetrics } from './metrics/metrics';
import type { PluginFactory, PullEvent } from './plugin/contract';
import type { CorePorts } from './plugin/ports';
import { ContentUsage } from './services/content-usage';
import { FillRegistry } from './arrivals/fill-registry';
import { ShortMemo } from './services/short-memo';
import { ManifestResolutions } from './services/manifest-resolutions';
import { loadPlugins } from './plugin/loader';
import { createAdminServices } from './services/admin-services';
import { bootstrapAdmin } from './services/bootstrap';
import { CatalogService } from './services/catalog-service';
import { systemClock, type Clock } from './services/clock';
import { ContentService } from './services/content-service';
import { databaseProbe } from './services/database-health';
import { NameResolution } from './services/name-resolution';
import { RegistryService } from './services/registry-service';
import { RepositoryService } from './services/repository-service';
import { UploadService } from './services/upload-service';
import { QuotaService } from './services/quota-service';
import { PullStats } from './services/pull-stats';
import { GarbageCollector, GC_JOB } from './services/garbage-collector';
import { ContentRemoval } from './services/content-removal';
import type { Storage } from './storage/blob-store';
import { createStorage } from './storage/create-storage';
import { createPooledAgent } from './storage/pooled-agent';
import { requestIntoPool } from './storage/pooled-response';
import { SecurityScanning } from './scanning/security-scanning';

export interface EntrepotOptions {
  logger?: Logger;
  clock?: Clock;
  /** Plugins given directly (tests), in addition to those named in the config. */
  pluginFactories?: PluginFactory[];
  /** Collect default process metrics (off in tests that build many instances). */
  defaultMetrics?: boolean;
}

/** The core's services, as composed here (tests reach into them; plugins get `CorePorts`). */
export interface CoreServices {
  config: Config;
  logger: Logger;
  metrics: CoreMetrics;
  db: Db;
  storage: Storage;
  queue: JobQueue;
  content: ContentService;
  repositories: RepositoryService;
  audit: AuditLog;
  quotas: QuotaService;
  coordinator: Coordinator;
  requestGc(): Promise<void>;
}

export interface Entrepot {
  config: Config;
  app: Express;
  services: CoreServices;
  /** What plugins were given. */
  ports: CorePorts;
  /** The `/api/v1` router's description (OpenAPI) and route list. */
  api: Omit<ApiSurface, 'router'>;
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /** Graceful shutdown: stop accepting, drain requests, run plugin hooks, close workers and connections. */
  close(): Promise<void>;
}

/** Builds a whole Entrepot instance from a validated config. */
export async function createEntrepot(config: Config, options: EntrepotOptions = {}): Promise<Entrepot> {
  const logger = options.logger ?? createLogger({ level: config.log_level });
  const clock = options.clock ?? systemClock;
  const metrics: CoreMetrics = createMetrics({ defaultMetrics: options.defaultMetrics });
  const plugins = loadPlugins(config, logger, options.pluginFactories);

  await ensureDatabaseExists(config);
  const db: Db = createDb(config);
  await migrate(db, [...coreMigrations, ...plugins.migrations]);
  const reads: PointReads = createPointReads(db);
  const storage: Storage = await createStorage(config);
  registerBufferPoolMetrics(metrics.registry, storage.buffers);
  const queue: JobQueue = await createQueue(config, logger);
  const coordinator: Coordinator = await createCoordinator(config, logger);
  const notices: ChangeNotices = await createChangeNotices(config, logger);
  const secrets = SecretBox.load(config.secret_key, config.data_dir);

  const repositories = new RepositoryService(db, reads, clock, notices);
  const blobLocks = new BlobLocks(coordinator);
  const resolutions = new ManifestResolutions(clock, notices);
  const content = new ContentService(db, reads, storage, clock, blobLocks, resolutions);
  const uploads = new UploadService(db, storage, content, clock);
  const audit = new AuditLog(db, queue, logger, metrics, clock);
  audit.registerJobs();
  const passwords = new PasswordHasher(config.auth.password_hash_memory_kib);
  const tokens = new TokenService(db, clock, config.auth.token_ttl_seconds);
  await tokens.init();
  const throttle = new LoginThrottle(db, clock, config.auth.max_failed_logins, config.auth.lockout_seconds);
  const authenticator = new DbAuthenticator(db, config, passwords, tokens, throttle);
  const authorizer = new DbAuthorizer(reads);
  const http = createHttpHelpers(authorizer, repositories);

  const quotas = new QuotaService(db, clock, logger);
  const pullStats = new PullStats(db, clock, logger, config.pull_stats_flush_ms);
  const gc = new GarbageCollector(db, storage, clock, logger, blobLocks, config.gc.grace_seconds * 1000);
  queue.register(GC_JOB, async () => {
    await gc.collect();
  }, { concurrency: 1 });
  const requestGc = () => queue.enqueue(GC_JOB, {}, { jobId: GC_JOB }).catch((err: unknown) => logger.warn('garbage collection not queued', { error: String(err) }));
  const gcTimer = setInterval(() => void requestGc(), config.gc.interval_seconds * 1000);
  gcTimer.unref();

  let boundPort: number | null = null;
  const scanning = new SecurityScanning({ config, db, queue, content, storage, tokens, clock, logger, metrics, notices, listenPort: () => boundPort });

  const removal = new ContentRemoval(db, gc, resolutions);
  const fills = new FillRegistry({ blobs: storage.blobs, scratchDir: storage.scratchDir, buffers: storage.buffers, logger, link: (repoId, digest) => content.linkStoredBlob(repoId, digest) });
  const services: CoreServices = { config, logger, metrics, db, storage, queue, content, repositories, audit, quotas, coordinator, requestGc };
  const ports: CorePorts = {
    config,
    logger,
    metrics,
    clock,
    db,
    reads,
    storage: { blobs: storage.blobs },
    pooledReads: {
      agent: (options) => createPooledAgent(storage.buffers, options),
      request: (dispatcher, options, signal) => requestIntoPool(dispatcher, options, storage.buffers, signal),
    },
    fills,
    queue,
    content,
    repositories,
    usage: new ContentUsage(db),
    quotas,
    removal,
    audit,
    secrets,
    http,
    pullStats,
    requestGc,
    coordinator: {
      kind: coordinator.kind,
      tryAcquire: (name, ttlMs, holder) => coordinator.tryAcquire(name, ttlMs, holder),
      isHeld: (name) => coordinator.isHeld(name),
      holderOf: (name) => coordinator.holderOf(name),
      withLock: (name, work, options) => withLock(coordinator, name, work, options),
    },
    notices,
    memo: ({ sharedTopic, ...options }) => new ShortMemo(clock, { ...options, shared: sharedTopic ? { notices, topic: sharedTopic } : undefined }),
  };
  for (const job of plugins.jobHandlers) queue.register(job.name, job.handler, job.options);
  for (const plugin of plugins.plugins) await plugin.init(ports);
  await queue.start();
  pullStats.start();
  if (config.bootstrap_admin) await bootstrapAdmin(db, passwords, clock, config.bootstrap_admin, logger);

  const registry = new RegistryService(content, storage, plugins.lookupSources, plugins.pullGuards);
  const names = new NameResolution(repositories, plugins.nameResolvers);
  const catalog = new CatalogService(db, authorizer);
  const observePull = (event: PullEvent): void => {
    for (const observe of plugins.pullObservers) {
      try {
        observe(event);
      } catch (err) {
        logger.warn('pull observer failed', { error: String(err) });
      }
    }
  };
  let draining = false;
  const admin = createAdminServices(db, clock, passwords, secrets);
  const api = apiRouter({ config, logger, clock, storage, authenticator, authorizer, repositories, admin, content, audit, http, quotas, requestGc, scanning }, plugins.apiRoutes, async (orgId) => {
    for (const hook of plugins.quotaHooks) await hook(orgId);
  });
  const app = buildApp({
    logger,
    metrics,
    registry: registryRouter({ config, logger, metrics, authenticator, authorizer, names, repositories, content, registry, uploads, writeGuards: plugins.writeGuards, audit, catalog, pullStats, pullPolicy: scanning, observePull }),
    token: tokenRouter({ config, authenticator, tokens, authorizer }),
    api: api.router,
    health: healthRouter({ databaseReachable: databaseProbe(db), storage, metrics, isDraining: () => draining, advisory: [{ name: 'security_scanner', check: () => scanning.health() }] }),
    instanceName: config.instance_name,
    webUiDir: config.web_ui_dir ?? resolve(__dirname, '../../web-ui/dist'),
  });

  let server: AppServer | null = null;
  return {
    config,
    app,
    services,
    ports,
    api: { document: api.document, servedRoutes: api.servedRoutes, describedOperations: api.describedOperations },
    listen() {
      server = createAppServer(app, config.tls ? { cert: readFileSync(config.tls.cert_file), key: readFileSync(config.tls.key_file) } : undefined);
      // Large layers on slow links must not be cut by a whole-request timeout.
      const listening = server.server;
      listening.requestTimeout = 0;
      listening.headersTimeout = 60_000;
      listening.keepAliveTimeout = 65_000;
      return new Promise((resolveListen, reject) => {
        listening.once('error', reject);
        listening.listen(config.port, config.host, () => {
          boundPort = (listening.address() as AddressInfo).port;
          // Checks Clair in the background: an unreachable scanner is reported, never fatal.
          void scanning.start().catch((err: unknown) => logger.error('security scanning did not start', { error: String(err) }));
          resolveListen(boundPort);
        });
      });
    },
    async close() {
      draining = true;
      if (server) await server.drain(config.shutdown_drain_seconds * 1000);
      clearInterval(gcTimer);
      quotas.stopRenewing();
      await pullStats.stop();
      await scanning.close();
      // Fills stop first: their sources belong to plugins, which close them in their hooks.
      await fills.cancelAll();
      for (const hook of plugins.shutdownHooks) await hook().catch((err: unknown) => logger.error('shutdown hook failed', { error: String(err) }));
      await audit.flush();
      await queue.close();
      await coordinator.close();
      await notices.close();
      reads.close();
      await db.destroy();
    },
  };
}
