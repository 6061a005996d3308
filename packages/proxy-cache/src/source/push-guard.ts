import { RegistryError, type RepoTarget, type WriteGuard } from '@entrepot/registry-core';
import type { CacheConfigStore } from '../config/cache-config-store';

/** R-PUSHDENY: cache organizations hold upstream content only. */
export class PushGuard implements WriteGuard {
  constructor(private readonly configs: CacheConfigStore) {}

  async checkWrite(target: RepoTarget, action: 'push' | 'delete'): Promise<void> {
    const config = await this.configs.get(target.org.id);
    if (!config) return;
    const verb = action === 'push' ? 'pushes are' : 'deletes through the registry API are';
    throw new RegistryError('DENIED', `organization ${target.org.name} is a pull-through cache of ${config.upstreamRegistry}; ${verb} not allowed (use the cache flush API to remove content)`);
  }
}
