import type { Request, RequestHandler } from 'express';
import { grantAllows } from '../../../auth/authenticator';
import type { RepoAction } from '../../../auth/principal';
import { RegistryError } from '../../../errors/registry-error';
import { asyncHandler } from '../../async-handler';
import { authChallenge } from '../../../auth/challenge';
import { clientIp } from '../../../auth/client-ip';
import type { RegistryRouteDeps } from './deps';
import { parseRegistryPath, RegistryPath } from './registry-path';

function actionFor(req: Request, path: RegistryPath): RepoAction {
  if (req.method === 'GET' || req.method === 'HEAD') return 'pull';
  if (req.method === 'DELETE' && path.endpoint !== 'uploads') return 'delete';
  return 'push';
}

function scopeFor(name: string, action: RepoAction): string {
  return `repository:${name}:${action === 'pull' ? 'pull' : action === 'delete' ? 'delete' : 'pull,push'}`;
}

/**
 * For `/v2/<name>/...`: authenticates, maps the name to an organization and
 * repository, authorizes the action and applies plugins' write guards. Handlers
 * after it find everything in `req.entrepot.lookup`.
 */
export function repositoryMiddleware(deps: RegistryRouteDeps): RequestHandler {
  return asyncHandler(async (req, _res, next) => {
    const path = parseRegistryPath(req.path);
    if (!path) throw new RegistryError('NOT_FOUND', `no registry endpoint at ${req.path.slice(0, 200)}`);
    const action = actionFor(req, path);
    const auth = await deps.authenticator.authenticate(req);
    req.entrepot.auth = auth;
    const principal = auth.principal;
    const ns = typeof req.query.ns === 'string' ? req.query.ns : undefined;
    const resolved = await deps.names.targetOf(path.name, { ns });
    // Anonymous callers are challenged; one that already holds an (anonymous) token is told its scope is insufficient.
    const denied = (message: string): RegistryError =>
      principal.kind === 'anonymous'
        ? authChallenge(req, deps.config, scopeFor(path.name, action), 'authentication required', auth.grants !== undefined)
        : new RegistryError('DENIED', message);
    if (!resolved) {
      if (principal.kind === 'anonymous') throw denied('');
      throw new RegistryError('NAME_UNKNOWN', `repository ${path.name} is not known to this registry`);
    }
    const { target, repository } = resolved;
    const isPublic = repository?.visibility ? repository.visibility === 'public' : target.org.is_public;
    // A bearer token bounds what the client asked for; permissions are always checked live.
    const allowed =
      (!auth.grants || grantAllows(auth.grants, path.name, action, path.endpoint === 'uploads' && req.method === 'DELETE' ? ['delete'] : [])) &&
      (await deps.authorizer.canAccessRepo(principal, target.org.id, repository?.id ?? null, action, isPublic));
    if (!allowed) throw denied(`${action} access to ${path.name} is denied`);
    if (action !== 'pull') {
      for (const guard of deps.writeGuards) await guard.checkWrite(target, action === 'delete' ? 'delete' : 'push');
    }
    req.entrepot.lookup = {
      target,
      repository,
      principal,
      requestId: req.entrepot.requestId,
      clientIp: clientIp(req),
      userAgent: req.get('user-agent') ?? '',
      headOnly: req.method === 'HEAD',
      range: req.get('range'),
    };
    req.entrepot.registryPath = path;
    next();
  });
}
