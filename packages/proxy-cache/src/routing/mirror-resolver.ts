import { RegistryError, type NameResolver, type RepoTarget } from '@entrepot/registry-core';
import { type Repositories } from '../core-types';
import type { CacheConfig, CacheConfigStore } from '../config/cache-config-store';
import { formatUpstream, isDockerHub, normalizeRegistry, type UpstreamSpec } from './upstream-ref';

const MAX_ECHO = 100;

/**
 * Mirror-style requests that name no organization (R-MIRROR):
 * - `/v2/<path>?ns=<registry>` (containerd, CRI): the cache org mirroring that
 *   registry, the most specific namespace first (`docker.io/library` before
 *   `docker.io`);
 * - `/v2/<path>` without `ns` (Docker Engine `registry-mirrors`): the configured
 *   default Docker Hub cache org.
 * An organization named by the path's first segment is matched by the core
 * before any resolver runs, so an explicit org always wins over `ns`.
 *
 * Throws NAME_UNKNOWN, to every caller (anonymous included: it says nothing
 * about any repository), when `ns` names a registry or namespace that no cache
 * org mirrors, so Entrepot is never an open proxy and mirror clients get a
 * message that says why; and when the configured default mirror org is not a
 * cache organization. Returns null (the core's own NAME_UNKNOWN / auth
 * challenge) for a path without `ns` when no default mirror org is configured.
 */
export class MirrorResolver implements NameResolver {
  constructor(
    private readonly configs: CacheConfigStore,
    private readonly repositories: Repositories,
    private readonly defaultMirrorOrg: string | undefined,
  ) {}

  async targetOf(name: string, query: { ns?: string }): Promise<RepoTarget | null> {
    if (query.ns !== undefined) return this.targetByNamespace(name, query.ns);
    if (!this.defaultMirrorOrg) return null;
    return this.targetByDefault(name, this.defaultMirrorOrg);
  }

  private async targetByDefault(name: string, orgName: string): Promise<RepoTarget> {
    const org = await this.repositories.findOrg(orgName);
    const config = org ? await this.configs.get(org.id) : null;
    if (!org || !config) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${name} is not known: the default mirror organization ${orgName} is not a cache organization`);
    }
    const repoName = repoNameFor(config.spec, name);
    if (!repoName) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${name} is not known: the default mirror organization ${org.name} mirrors only ${formatUpstream(config.spec)}`);
    }
    return { org, repoName, fullName: `${org.name}/${repoName}`, route: 'default' };
  }

  private async targetByNamespace(name: string, ns: string): Promise<RepoTarget> {
    const registry = normalizeRegistry(ns);
    const candidates = (await this.configs.listByRegistry(registry)).sort(mostSpecificFirst);
    for (const candidate of candidates) {
      const repoName = repoNameFor(candidate.spec, name);
      if (!repoName) continue;
      const org = await this.repositories.findOrgById(candidate.orgId);
      if (org) return { org, repoName, fullName: `${org.name}/${repoName}`, route: 'ns', ns };
    }
    const echo = ns === '' ? '(an empty ns)' : ns.length > MAX_ECHO ? `${ns.slice(0, MAX_ECHO)}…` : ns;
    const detail = { ns: echo, registry: registry.slice(0, MAX_ECHO) };
    if (candidates.length === 0) {
      throw new RegistryError('NAME_UNKNOWN', `no cache organization mirrors ${echo}; Entrepot only serves registries it has a cache organization for`, { detail });
    }
    const covered = candidates.map((c) => formatUpstream(c.spec)).join(', ');
    throw new RegistryError('NAME_UNKNOWN', `no cache organization mirrors ${registry}/${fullUpstreamPath(registry, name)}; cache organizations for ${registry} cover ${covered}`, { detail });
  }
}

/**
 * Longer namespace first (`docker.io/library` before `docker.io`); between orgs
 * mirroring the same namespace, the oldest, so the choice never depends on row order.
 */
function mostSpecificFirst(a: CacheConfig, b: CacheConfig): number {
  return b.spec.namespace.length - a.spec.namespace.length || a.createdAt - b.createdAt || a.orgId - b.orgId;
}

function fullUpstreamPath(registry: string, path: string): string {
  return registry === 'docker.io' && !path.includes('/') ? `library/${path}` : path;
}

/**
 * The repository inside a cache org for a mirror path, or null when the org's
 * namespace does not cover it. Docker Hub single-segment names mean `library/<name>`
 * (ctr and CRI send `/v2/<name>/...` for `docker.io/<name>`).
 */
export function repoNameFor(spec: UpstreamSpec, path: string): string | null {
  const full = isDockerHub(spec) && !path.includes('/') ? `library/${path}` : path;
  if (!spec.namespace) return full;
  if (full.startsWith(`${spec.namespace}/`)) return full.slice(spec.namespace.length + 1);
  return null;
}
