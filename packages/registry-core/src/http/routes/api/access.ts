import type { Request } from 'express';
import type { Principal, RepoAction } from '../../../auth/principal';
import { RegistryError } from '../../../errors/registry-error';
import type { OrganizationRow, RepositoryRow } from '../../../services/repository-service';
import type { ApiDeps } from './api-deps';

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;

export interface RepoAccess {
  org: OrganizationRow;
  repo: RepositoryRow;
  isPublic: boolean;
}

export function isRepoPublic(org: OrganizationRow, repo: RepositoryRow): boolean {
  return repo.visibility ? repo.visibility === 'public' : org.is_public;
}

/** Access checks shared by the API route groups. Each throws UNAUTHORIZED, DENIED or NOT_FOUND. */
export function apiAccess(deps: ApiDeps) {
  const principal = (req: Request): Principal => deps.http.principal(req);

  /** A signed-in user (robots use the registry, not account endpoints). */
  function requireUser(req: Request): UserPrincipal {
    const who = principal(req);
    if (who.kind === 'anonymous') throw new RegistryError('UNAUTHORIZED', 'authentication required');
    if (who.kind !== 'user') throw new RegistryError('DENIED', 'robot accounts cannot use this endpoint');
    return who;
  }

  function requireSuperuser(req: Request): UserPrincipal {
    const who = requireUser(req);
    if (!who.isSuperuser) throw new RegistryError('DENIED', 'superuser rights are required');
    return who;
  }

  async function requireOrg(name: string): Promise<OrganizationRow> {
    const org = await deps.repositories.findOrg(name);
    if (!org) throw new RegistryError('NOT_FOUND', `organization ${name.slice(0, 100)} not found`);
    return org;
  }

  /**
   * Loads `org/repo` and requires `action` on it. An anonymous caller gets 401 before
   * learning whether a repository of a private organization exists.
   */
  async function requireRepo(req: Request, orgName: string, repoName: string, action: RepoAction): Promise<RepoAccess> {
    const who = principal(req);
    const org = await deps.repositories.findOrg(orgName);
    if (!org) throw new RegistryError('NOT_FOUND', `repository ${orgName.slice(0, 100)}/${repoName.slice(0, 200)} not found`);
    const repo = await deps.repositories.find(org.id, repoName);
    if (!repo) {
      if (who.kind === 'anonymous' && !org.is_public) throw new RegistryError('UNAUTHORIZED', 'authentication required');
      throw new RegistryError('NOT_FOUND', `repository ${org.name}/${repoName.slice(0, 200)} not found`);
    }
    const isPublic = isRepoPublic(org, repo);
    if (!(await deps.authorizer.canAccessRepo(who, org.id, repo.id, action, isPublic))) {
      if (who.kind === 'anonymous') throw new RegistryError('UNAUTHORIZED', 'authentication required');
      throw new RegistryError('DENIED', `${action} access to ${org.name}/${repo.name} is denied`);
    }
    return { org, repo, isPublic };
  }

  return { principal, requireUser, requireSuperuser, requireOrg, requireRepo };
}

export type ApiAccess = ReturnType<typeof apiAccess>;
