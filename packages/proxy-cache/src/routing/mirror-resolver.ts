import type { NameResolver, RepoTarget, RepositoryService } from '@entrepot/registry-core';
import type { CacheConfigStore } from '../config/cache-config-store';
import { isDockerHub, normalizeRegistry, type UpstreamSpec } from './upstream-ref';

/**
 * Mirror-style requests that name no organization (R-MIRROR):
 * - `/v2/<path>?ns=<registry>` (containerd, CRI): the cache org mirroring that
 *   registry, the most specific namespace first;
 * - `/v2/<path>` without `ns` (Docker Engine `registry-mirrors`): the configured
 *   default Docker Hub cache org.
 * A registry no cache org mirrors resolves to nothing, so Entrepot never proxies it.
 */
export class MirrorResolver implements NameResolver {
  constructor(
    private readonly configs: CacheConfigStore,
    private readonly repositories: RepositoryService,
    private readonly defaultMirrorOrg: string | undefined,
  ) {}

  async resolve(name: string, query: { ns?: string }): Promise<RepoTarget | null> {
    if (query.ns !== undefined) return this.resolveByNamespace(name, query.ns);
    if (!this.defaultMirrorOrg) return null;
    const org = await this.repositories.findOrg(this.defaultMirrorOrg);
    const config = org ? await this.configs.get(org.id) : null;
    if (!org || !config) return null;
    const repoName = repoNameFor(config.spec, name);
    return repoName ? { org, repoName, fullName: `${org.name}/${repoName}`, route: 'default' } : null;
  }

  private async resolveByNamespace(name: string, ns: string): Promise<RepoTarget | null> {
    const registry = normalizeRegistry(ns);
    const candidates = (await this.configs.listByRegistry(registry)).sort((a, b) => b.spec.namespace.length - a.spec.namespace.length);
    for (const candidate of candidates) {
      const repoName = repoNameFor(candidate.spec, name);
      if (!repoName) continue;
      const org = await this.repositories.findOrgById(candidate.orgId);
      if (org) return { org, repoName, fullName: `${org.name}/${repoName}`, route: 'ns', ns };
    }
    return null;
  }
}

/**
 * The repository inside a cache org for a mirror path, or null when the org's
 * namespace does not cover it. Docker Hub single-segment names mean `library/<name>`.
 */
export function repoNameFor(spec: UpstreamSpec, path: string): string | null {
  const full = isDockerHub(spec) && !path.includes('/') ? `library/${path}` : path;
  if (!spec.namespace) return full;
  if (full.startsWith(`${spec.namespace}/`)) return full.slice(spec.namespace.length + 1);
  return null;
}
