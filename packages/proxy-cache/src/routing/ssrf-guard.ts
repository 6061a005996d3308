import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { RegistryError } from '@entrepot/registry-core';

/** Loopback, private, link-local (cloud metadata), shared, unspecified and multicast ranges. */
function internalRanges(): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of [
    ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
    ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
  ] as const) list.addSubnet(net, prefix, 'ipv4');
  for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['::ffff:0:0', 96]] as const) {
    list.addSubnet(net, prefix, 'ipv6');
  }
  return list;
}

function patternMatches(pattern: string, value: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
  return regex.test(value);
}

/**
 * Refuses upstream endpoints that resolve to internal addresses (no open proxy
 * into the operator's network), unless the host or host:port matches one of
 * the operator's allowed patterns (PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS).
 */
export class SsrfGuard {
  private readonly blocked = internalRanges();

  constructor(private readonly allowedPatterns: readonly string[]) {}

  isAllowedHost(url: URL): boolean {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const hostPort = url.port ? `${host}:${url.port}` : host;
    return this.allowedPatterns.some((p) => patternMatches(p, hostPort) || patternMatches(p, host));
  }

  /** Throws INVALID_REQUEST naming `field` when the endpoint is not allowed. */
  async check(endpoint: string, field: string): Promise<void> {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new RegistryError('INVALID_REQUEST', `${field}: not a URL`, { detail: { field } });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new RegistryError('INVALID_REQUEST', `${field}: only http and https upstreams are supported`, { detail: { field } });
    }
    if (url.username || url.password) {
      throw new RegistryError('INVALID_REQUEST', `${field}: put credentials in upstream_registry_username/password, not in the URL`, { detail: { field } });
    }
    if (this.isAllowedHost(url)) return;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let addresses: string[];
    if (isIP(host)) addresses = [host];
    else {
      try {
        addresses = (await lookup(host, { all: true })).map((a) => a.address);
      } catch {
        throw new RegistryError('INVALID_REQUEST', `${field}: host ${host} cannot be resolved`, { detail: { field } });
      }
    }
    for (const address of addresses) {
      if (this.blocked.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4')) {
        throw new RegistryError(
          'INVALID_REQUEST',
          `${field}: ${host} resolves to an internal address (${address}); an operator can allow it with PROXY_CACHE_ALLOWED_UPSTREAM_HOSTS`,
          { detail: { field } },
        );
      }
    }
  }
}
