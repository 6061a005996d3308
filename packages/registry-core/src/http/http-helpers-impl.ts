import type { Request, RequestHandler } from 'express';
import type { Authorizer } from '../auth/authenticator';
import { ANONYMOUS, type Principal } from '../auth/principal';
import { RegistryError } from '../errors/registry-error';
import type { OrganizationRow, RepositoryService } from '../services/repository-service';
import { asyncHandler } from './async-handler';
import { clientIp } from '../auth/client-ip';
import { sendBody } from './send-body';
import type { HttpHelpers } from './http-helpers';

export function createHttpHelpers(authorizer: Authorizer, repositories: RepositoryService): HttpHelpers {
  const principal = (req: Request): Principal => req.entrepot.auth?.principal ?? ANONYMOUS;
  const requireAuthenticated: RequestHandler = (req, _res, next) => {
    if (principal(req).kind === 'anonymous') next(new RegistryError('UNAUTHORIZED', 'authentication required'));
    else next();
  };
  async function loadOrg(req: Request, param: string): Promise<OrganizationRow> {
    const name = req.params[param];
    const org = typeof name === 'string' ? await repositories.findOrg(name) : null;
    if (!org) throw new RegistryError('NOT_FOUND', `organization ${String(name).slice(0, 100)} not found`);
    return org;
  }
  return {
    asyncHandler,
    principal,
    requireAuthenticated,
    clientIp,
    sendBody,
    async requireOrgAdmin(req, param = 'org') {
      const who = principal(req);
      if (who.kind === 'anonymous') throw new RegistryError('UNAUTHORIZED', 'authentication required');
      const org = await loadOrg(req, param);
      if (!(await authorizer.isOrgAdmin(who, org.id))) throw new RegistryError('DENIED', `administrator rights on ${org.name} are required`);
      return org;
    },
    async requireOrgReader(req, param = 'org') {
      const who = principal(req);
      const org = await loadOrg(req, param);
      if (org.is_public || (await authorizer.isOrgMember(who, org.id))) return org;
      if (who.kind === 'anonymous') throw new RegistryError('UNAUTHORIZED', 'authentication required');
      throw new RegistryError('NOT_FOUND', `organization ${org.name} not found`);
    },
    async requireOrgMember(req, param = 'org') {
      const who = principal(req);
      if (who.kind === 'anonymous') throw new RegistryError('UNAUTHORIZED', 'authentication required');
      const org = await loadOrg(req, param);
      if (await authorizer.isOrgAdmin(who, org.id)) return { org, isAdmin: true };
      if (await authorizer.isOrgMember(who, org.id)) return { org, isAdmin: false };
      throw new RegistryError('DENIED', `membership of ${org.name} is required`);
    },
  };
}
