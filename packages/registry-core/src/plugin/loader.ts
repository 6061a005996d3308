import type { Router } from 'express';
import type { ApiDocs } from '../http/openapi/api-docs';
import type { Config } from '../config/config';
import type { Migration } from '../db/database';
import type { JobHandler } from '../jobs/job-queue';
import type { Logger } from '../logging/logger';
import type { LookupSource, NameResolver, PluginFactory, PullEvent, PullGuard, RegistrationPoints, RegistryPlugin, WriteGuard } from './contract';

/** What plugins registered, collected before the core starts. */
export interface PluginRegistrations {
  plugins: RegistryPlugin[];
  lookupSources: LookupSource[];
  nameResolvers: NameResolver[];
  writeGuards: WriteGuard[];
  pullGuards: PullGuard[];
  apiRoutes: Array<(router: Router, docs: ApiDocs) => void>;
  jobHandlers: Array<{ name: string; handler: JobHandler<never>; options?: { concurrency?: number } }>;
  migrations: Migration[];
  shutdownHooks: Array<() => Promise<void>>;
  quotaHooks: Array<(orgId: number) => Promise<void>>;
  pullObservers: Array<(event: PullEvent) => void>;
}

export function emptyRegistrations(): PluginRegistrations {
  return { plugins: [], lookupSources: [], nameResolvers: [], writeGuards: [], pullGuards: [], apiRoutes: [], jobHandlers: [], migrations: [], shutdownHooks: [], quotaHooks: [], pullObservers: [] };
}

function isFactory(value: unknown): value is PluginFactory {
  return typeof value === 'function';
}

/**
 * Loads plugins named in the config (module names resolved by Node) and lets each
 * register its extension points. A factory returning null declines to load (for
 * example when its feature flag is off). The core never imports a plugin itself.
 */
export function loadPlugins(config: Config, logger: Logger, factories: PluginFactory[] = []): PluginRegistrations {
  const reg = emptyRegistrations();
  const all = [...factories];
  for (const moduleName of config.plugins) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(moduleName) as { createPlugin?: unknown };
    if (!isFactory(mod.createPlugin)) throw new Error(`plugin module ${moduleName} does not export createPlugin(config)`);
    all.push(mod.createPlugin);
  }
  for (const factory of all) {
    const plugin = factory(config);
    if (!plugin) continue;
    const points: RegistrationPoints = {
      addLookupSource: (source) => reg.lookupSources.push(source),
      addNameResolver: (resolver) => reg.nameResolvers.push(resolver),
      addWriteGuard: (guard) => reg.writeGuards.push(guard),
      addPullGuard: (guard) => reg.pullGuards.push(guard),
      addApiRoutes: (register) => reg.apiRoutes.push(register),
      addJobHandler: (name, handler, options) => reg.jobHandlers.push({ name, handler: handler as JobHandler<never>, options }),
      addMigrations: (migrations) => reg.migrations.push(...migrations),
      onShutdown: (hook) => reg.shutdownHooks.push(hook),
      onQuotaChanged: (hook) => reg.quotaHooks.push(hook),
      onPull: (observer) => reg.pullObservers.push(observer),
    };
    plugin.register(points);
    reg.plugins.push(plugin);
    logger.info('plugin loaded', { plugin: plugin.id });
  }
  return reg;
}
