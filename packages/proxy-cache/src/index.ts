import { type PluginFactory, type RegistryPlugin } from '@entrepot/registry-core';
import type { Config } from './core-types';
import { ProxyCachePlugin } from './plugin';
import { loadSettings } from './config/plugin-settings';

/**
 * The proxy-cache plugin factory named in the core's `plugins` config. With
 * FEATURE_PROXY_CACHE off it still loads in a read-only mode: cached content is
 * served, cache endpoints say the feature is disabled, and no upstream is ever
 * contacted.
 */
export const createPlugin: PluginFactory = (config: Config): RegistryPlugin => {
  const enabled = config.flags.FEATURE_PROXY_CACHE !== false;
  return new ProxyCachePlugin(loadSettings(config), enabled);
};

export { ProxyCachePlugin };
export { cliExtension } from './cli/cache-commands';
