import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '../../logging/logger';
import type { CoreMetrics } from '../../metrics/metrics';

/** A low-cardinality label for metrics: the endpoint kind, never the raw path. */
export function routeLabel(path: string): string {
  if (path === '/v2' || path === '/v2/') return 'v2_base';
  if (path.startsWith('/v2/')) {
    if (path === '/v2/auth') return 'v2_auth';
    if (path === '/v2/_catalog') return 'v2_catalog';
    const match = /\/(manifests|blobs\/uploads|blobs|tags|referrers)\//.exec(path) ?? /\/blobs\/uploads\/?$/.exec(path);
    return match ? `v2_${(match[1] ?? 'blobs/uploads').replace('/', '_')}` : 'v2_other';
  }
  if (path.startsWith('/api/v1/')) return `api_${path.split('/')[3] ?? ''}`.slice(0, 40);
  if (path.startsWith('/health')) return 'health';
  if (path === '/metrics') return 'metrics';
  return 'other';
}

/** Assigns a request id, logs one line per request and records request metrics. */
export function requestContext(logger: Logger, metrics: CoreMetrics, instanceName: string): RequestHandler {
  return (req, res, next) => {
    const requestId = (req.get('x-request-id') ?? '').slice(0, 64) || randomUUID();
    req.entrepot = { requestId };
    res.locals.requestId = requestId;
    res.set('X-Request-Id', requestId);
    // Lets another Entrepot (or this one) recognise itself as the upstream and refuse a loop.
    res.set('Via', `1.1 ${instanceName}`);
    const started = process.hrtime.bigint();
    res.on('close', () => {
      const route = routeLabel(req.path);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const status = res.writableFinished ? res.statusCode : 499;
      metrics.httpRequests.inc({ method: req.method, route, status: String(status) });
      metrics.httpDuration.observe({ method: req.method, route }, seconds);
      logger.debug('request', { requestId, method: req.method, path: req.path, status, ms: Math.round(seconds * 1000) });
    });
    next();
  };
}
