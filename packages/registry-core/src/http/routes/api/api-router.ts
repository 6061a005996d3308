import express, { Router } from 'express';
import { RegistryError } from '../../../errors/registry-error';
import type { ApiDeps } from './api-deps';
import { organizationRoutes } from './organization-routes';

/**
 * `/api/v1`: JSON bodies, credentials on every request (Basic or a bearer token),
 * then the core's route groups, then plugin routes.
 */
export function apiRouter(deps: ApiDeps, pluginRoutes: Array<(router: Router) => void>): Router {
  const router = Router();
  router.use(express.json({ limit: '1mb' }));
  router.use(deps.http.asyncHandler(async (req, _res, next) => {
    req.entrepot.auth = await deps.authenticator.authenticate(req);
    next();
  }));
  organizationRoutes(router, deps);
  for (const register of pluginRoutes) register(router);
  router.use((req, _res, next) => next(new RegistryError('NOT_FOUND', `no API endpoint ${req.method} /api/v1${req.path.slice(0, 200)}`)));
  return router;
}
