import express, { type Express, type Router } from 'express';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../logging/logger';
import type { CoreMetrics } from '../metrics/metrics';
import { errorHandler } from './error-handler';
import { requestContext } from './middleware/request-context';

export interface AppParts {
  logger: Logger;
  metrics: CoreMetrics;
  registry: Router;
  token: Router;
  api: Router;
  health: Router;
  instanceName: string;
  webUiDir?: string;
}

/** Assembles the HTTP application: context, routers, the web UI, and the one error handler. */
export function buildApp(parts: AppParts): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(requestContext(parts.logger, parts.metrics, parts.instanceName));
  app.use(parts.health);
  app.use(parts.token);
  app.use(parts.registry);
  app.use('/api/v1', parts.api);
  if (parts.webUiDir && existsSync(join(parts.webUiDir, 'index.html'))) {
    const dir = parts.webUiDir;
    // Hashed asset files may be cached for long; index.html must be revalidated so a new
    // release never points browsers at assets that no longer exist.
    app.use('/assets', express.static(join(dir, 'assets'), { maxAge: '365d', immutable: true, fallthrough: false }));
    app.use(express.static(dir, { index: 'index.html', maxAge: 0, setHeaders: (res) => res.setHeader('Cache-Control', 'no-cache') }));
    // Client-side routes of the single-page UI.
    app.get(/^\/(?!v2\/|api\/|assets\/).*/, (_req, res) => res.set('Cache-Control', 'no-cache').sendFile(join(dir, 'index.html')));
  }
  app.use((req, _res, next) => {
    const err = Object.assign(new Error(`no route for ${req.method} ${req.path.slice(0, 200)}`), { status: 404 });
    next(err);
  });
  app.use(errorHandler(parts.logger));
  return app;
}
