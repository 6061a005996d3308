import { RegistryError } from '@entrepot/registry-core';

/** What a cache organization mirrors: a registry, optionally only one namespace of it. */
export interface UpstreamSpec {
  /** Normalized host[:port], e.g. `docker.io`, `registry.corp:5000`. */
  registry: string;
  /** Namespace prefix inside the registry, e.g. `library` or `acme/team`; '' for the whole registry. */
  namespace: string;
}

const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);
const HOST = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/;
const NAMESPACE_PART = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

export function normalizeRegistry(host: string): string {
  const lower = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? 'docker.io' : lower;
}

export function isDockerHub(spec: UpstreamSpec): boolean {
  return spec.registry === 'docker.io';
}

/**
 * Parses `upstream_registry` such as `docker.io`, `docker.io/library` or
 * `registry.corp:5000/team`. Throws INVALID_REQUEST naming the field.
 */
export function parseUpstreamRegistry(value: string): UpstreamSpec {
  const field = 'upstream_registry';
  if (/^[a-z]+:\/\//i.test(value)) {
    throw new RegistryError('INVALID_REQUEST', `${field}: give a registry host and optional namespace without a scheme (use upstream_endpoint for a URL)`, { detail: { field } });
  }
  const [host, ...path] = value.trim().replace(/\/+$/, '').split('/');
  if (!host || !HOST.test(host.toLowerCase())) {
    throw new RegistryError('INVALID_REQUEST', `${field}: "${value.slice(0, 100)}" is not a registry host`, { detail: { field } });
  }
  for (const part of path) {
    if (!NAMESPACE_PART.test(part)) throw new RegistryError('INVALID_REQUEST', `${field}: invalid namespace "${path.join('/').slice(0, 100)}"`, { detail: { field } });
  }
  return { registry: normalizeRegistry(host), namespace: path.join('/') };
}

export function formatUpstream(spec: UpstreamSpec): string {
  return spec.namespace ? `${spec.registry}/${spec.namespace}` : spec.registry;
}

/** Where to reach the registry when no `upstream_endpoint` is configured. */
export function defaultEndpoint(spec: UpstreamSpec, insecure: boolean): string {
  if (isDockerHub(spec)) return 'https://registry-1.docker.io';
  return `${insecure ? 'http' : 'https'}://${spec.registry}`;
}

/**
 * The upstream repository for a repository of the cache org (R-MAP):
 * namespace prefix + path, and Docker Hub's `library/` for single-segment names.
 */
export function upstreamRepository(spec: UpstreamSpec, repoName: string): string {
  const full = spec.namespace ? `${spec.namespace}/${repoName}` : repoName;
  return isDockerHub(spec) && !full.includes('/') ? `library/${full}` : full;
}
