import type { Request } from 'express';
import type { Config } from '../config/config';
import { RegistryError } from '../errors/registry-error';

export function externalBaseUrl(req: Request, config: Pick<Config, 'base_url'>): string {
  if (config.base_url) return config.base_url.replace(/\/$/, '');
  return `${req.protocol}://${req.get('host') ?? 'localhost'}`;
}

/** The service name clients put in token requests: the registry's host. */
export function serviceName(req: Request, config: Pick<Config, 'base_url'>): string {
  return new URL(externalBaseUrl(req, config)).host;
}

/**
 * 401 telling Docker clients where to get a token for `scope`. With
 * `insufficientScope` (a token was presented but does not cover the request,
 * RFC 6750 §3.1) the challenge says `error="insufficient_scope"`, which
 * Docker Engine reports as "pull access denied" instead of a bare "unauthorized".
 */
export function authChallenge(req: Request, config: Pick<Config, 'base_url'>, scope?: string, message = 'authentication required', insufficientScope = false): RegistryError {
  const base = externalBaseUrl(req, config);
  let header = `Bearer realm="${base}/v2/auth",service="${serviceName(req, config)}"`;
  if (scope) header += `,scope="${scope}"`;
  if (insufficientScope) header += ',error="insufficient_scope"';
  return new RegistryError('UNAUTHORIZED', message, { headers: { 'WWW-Authenticate': header } });
}
