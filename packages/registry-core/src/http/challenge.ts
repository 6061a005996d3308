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

/** 401 telling Docker clients where to get a token for `scope`. */
export function authChallenge(req: Request, config: Pick<Config, 'base_url'>, scope?: string, message = 'authentication required'): RegistryError {
  const base = externalBaseUrl(req, config);
  let header = `Bearer realm="${base}/v2/auth",service="${serviceName(req, config)}"`;
  if (scope) header += `,scope="${scope}"`;
  return new RegistryError('UNAUTHORIZED', message, { headers: { 'WWW-Authenticate': header } });
}
