import express, { Router } from 'express';
import { RegistryError } from '../../../errors/registry-error';
import { ApiDocsRegistry, type ApiDocs, type HttpMethod } from '../../openapi/api-docs';
import { describeOrganizationOperations } from '../../openapi/organization-operations';
import { describeRepositoryOperations } from '../../openapi/repository-operations';
import { describeSecurityOperations } from '../../openapi/security-operations';
import { servedRoutes, type ServedRoute } from '../../openapi/route-list';
import { createApiContext } from './api-context';
import type { ApiDeps } from './api-deps';
import { organizationRoutes } from './organization-routes';
import { prototypeRoutes } from './prototype-routes';
import { quotaRoutes } from './quota-routes';
import { repositoryPathGuard, repositoryRoutes } from './repository-routes';
import { robotRoutes } from './robot-routes';
import { securityRoutes } from './security-routes';
import { teamRoutes } from './team-routes';
import { userRoutes } from './user-routes';

/** The `/api/v1` router and its description. */
export interface ApiSurface {
  router: Router;
  /** The OpenAPI 3.1 document (also served at `/api/v1/openapi.json` and `/api/v1/discovery`). */
  document(): Record<string, unknown>;
  /** What the router serves, for comparing with what the document describes. */
  servedRoutes(): ServedRoute[];
  describedOperations(): Array<{ method: HttpMethod; path: string }>;
}

/**
 * `/api/v1`: JSON bodies, credentials on every request (Basic or a bearer token),
 * then the core's route groups, then plugin routes, then the repository
 * dispatcher (after plugins, so that their `/repository/...` endpoints are not
 * mistaken for repository names with slashes).
 */
export function apiRouter(deps: ApiDeps, pluginRoutes: Array<(router: Router, docs: ApiDocs) => void>, onQuotaChanged: (orgId: number) => Promise<void>): ApiSurface {
  const router = Router();
  const ctx = createApiContext(deps);
  const docs = new ApiDocsRegistry('v1');
  let document: Record<string, unknown> | null = null;
  const documentOnce = () => (document ??= docs.document());
  describeOrganizationOperations(docs);
  describeRepositoryOperations(docs);
  describeSecurityOperations(docs);
  docs.operation({ method: 'get', path: '/openapi.json', operationId: 'getOpenApiDocument', summary: 'This document', tag: 'discovery', access: 'anyone', responses: { 200: { description: 'OpenAPI 3.1' } } });
  docs.operation({ method: 'get', path: '/discovery', operationId: 'discovery', summary: "This document at Quay's discovery path", tag: 'discovery', access: 'anyone', responses: { 200: { description: 'OpenAPI 3.1' } } });
  // The description is public, like Quay's discovery; it is built once, on first request.
  router.get(['/openapi.json', '/discovery'], (_req, res) => {
    res.json(documentOnce());
  });
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
  teamRoutes(router, ctx);
  const repositories = repositoryRoutes(ctx);
  const registered = repositories.register(router);
  for (const register of pluginRoutes) register(router, docs);
  router.use('/repository', repositories.dispatcher(registered));
  router.use((req, _res, next) => next(new RegistryError('NOT_FOUND', `no API endpoint ${req.method} /api/v1${req.path.slice(0, 200)}`)));
  return { router, document: documentOnce, servedRoutes: () => servedRoutes(router), describedOperations: () => docs.operations() };
}
