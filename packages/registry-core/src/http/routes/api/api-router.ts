import express, { Router } from 'express';
import { RegistryError } from '../../../errors/registry-error';
import { createApiContext } from './api-context';
import type { ApiDeps } from './api-deps';
import { organizationRoutes } from './organization-routes';
import { prototypeRoutes } from './prototype-routes';
import { quotaRoutes } from './quota-routes';
import { repositoryPathGuard, repositoryRoutes } from './repository-routes';
import { robotRoutes } from './robot-routes';
import { securityRoutes } from './security-routes';
import { userRoutes } from './user-routes';

/**
 * `/api/v1`: JSON bodies, credentials on every request (Basic or a bearer token),
 * then the core's route groups, then plugin routes, then the repository
 * dispatcher (after plugins, so that their `/repository/...` endpoints are not
 * mistaken for repository names with slashes).
 */
export function apiRouter(deps: ApiDeps, pluginRoutes: Array<(router: Router) => void>, onQuotaChanged: (orgId: number) => Promise<void>): Router {
  const router = Router();
  const ctx = createApiContext(deps);
  router.use(express.json({ limit: '1mb' }));
  router.use(deps.http.asyncHandler(async (req, _res, next) => {
    const auth = await deps.authenticator.authenticate(req);
    // The scanner's tokens pull layers of one repository over /v2 and nothing else.
    if (auth.principal.kind === 'scanner') throw new RegistryError('DENIED', 'scanner tokens cannot use the API');
    req.entrepot.auth = auth;
    next();
  }));
  router.use('/repository', repositoryPathGuard());
  userRoutes(router, ctx);
  organizationRoutes(router, ctx);
  robotRoutes(router, ctx);
  prototypeRoutes(router, ctx);
  quotaRoutes(router, ctx, onQuotaChanged);
  securityRoutes(ctx).register(router);
  const repositories = repositoryRoutes(ctx);
  const registered = repositories.register(router);
  for (const register of pluginRoutes) register(router);
  router.use('/repository', repositories.dispatcher(registered));
  router.use((req, _res, next) => next(new RegistryError('NOT_FOUND', `no API endpoint ${req.method} /api/v1${req.path.slice(0, 200)}`)));
  return router;
}
