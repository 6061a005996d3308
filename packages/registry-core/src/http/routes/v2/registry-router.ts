import { Router, type Request, type RequestHandler, type Response } from 'express';
import { RegistryError } from '../../../errors/registry-error';
import { asyncHandler } from '../../async-handler';
import { authChallenge } from '../../../auth/challenge';
import { registryPath } from '../../request-state';
import { blobHandlers } from './blob-handlers';
import type { RegistryRouteDeps } from './deps';
import { listingHandlers, nextLink, pageParams } from './listing-handlers';
import { manifestHandlers } from './manifest-handlers';
import { repositoryMiddleware } from './repository-middleware';
import { uploadHandlers } from './upload-handlers';

type Handler = (req: Request, res: Response) => Promise<void>;

/** The OCI distribution API under /v2. */
export function registryRouter(deps: RegistryRouteDeps): Router {
  const router = Router();
  const manifests = manifestHandlers(deps);
  const blobs = blobHandlers(deps);
  const uploads = uploadHandlers(deps);
  const listings = listingHandlers(deps);

  const table: Record<string, Record<string, Handler>> = {
    manifests: { GET: manifests.get, HEAD: manifests.get, PUT: manifests.put, DELETE: manifests.remove },
    blobs: { GET: blobs.get, HEAD: blobs.get, DELETE: blobs.remove },
    uploads: { POST: uploads.start, GET: uploads.status, PATCH: uploads.patch, PUT: uploads.finish, DELETE: uploads.cancel },
    tags: { GET: listings.tags },
    referrers: { GET: listings.referrers },
  };

  router.use((req, res, next) => {
    if (req.path === '/v2' || req.path.startsWith('/v2/')) res.set('Docker-Distribution-API-Version', 'registry/2.0');
    next();
  });

  router.get(['/v2', '/v2/'], asyncHandler(async (req, res) => {
    const auth = await deps.authenticator.authenticate(req);
    if (auth.principal.kind === 'anonymous') throw authChallenge(req, deps.config);
    res.json({});
  }));

  router.get('/v2/_catalog', asyncHandler(async (req, res) => {
    const auth = await deps.authenticator.authenticate(req);
    if (auth.principal.kind === 'anonymous') throw authChallenge(req, deps.config, 'registry:catalog:*');
    // The scanner's tokens name one repository; the catalog would list every one.
    if (auth.principal.kind === 'scanner') throw new RegistryError('DENIED', 'scanner tokens only pull the repository they were issued for');
    const page = pageParams(req);
    const names = await deps.catalog.list(auth.principal, page);
    const link = nextLink('/v2/_catalog', page, names);
    if (link) res.set('Link', link);
    res.json({ repositories: names });
  }));

  const dispatch: RequestHandler = asyncHandler(async (req, res) => {
    const path = registryPath(req);
    const handler = table[path.endpoint][req.method];
    if (!handler) throw new RegistryError('UNSUPPORTED', `${req.method} is not supported on ${path.endpoint}`, { status: 405 });
    if (path.endpoint === 'uploads' && req.method !== 'POST' && path.rest === '') {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'an upload id is required');
    }
    if (path.endpoint === 'uploads' && req.method === 'POST' && path.rest !== '') {
      throw new RegistryError('UNSUPPORTED', 'POST starts an upload at /blobs/uploads/', { status: 405 });
    }
    await handler(req, res);
  });

  const resolveRepository = repositoryMiddleware(deps);
  router.use((req, res, next) => {
    if (!req.path.startsWith('/v2/')) return next();
    resolveRepository(req, res, (err?: unknown) => (err ? next(err) : dispatch(req, res, next)));
  });
  return router;
}
