import type { Request } from 'express';
import type { Principal, RepoAction } from './principal';

/** A repository scope granted inside a bearer token (Docker token `access` claim). */
export interface TokenGrant {
  type: string;
  name: string;
  actions: string[];
}

export interface AuthResult {
  principal: Principal;
  /** Present for bearer tokens: what the token was issued for. Absent for Basic credentials. */
  grants?: TokenGrant[];
}

/**
 * Turns request credentials into a principal. No credentials → anonymous.
 * Throws UNAUTHORIZED for wrong or expired credentials, TOOMANYREQUESTS when throttled.
 */
export interface Authenticator {
  authenticate(req: Request): Promise<AuthResult>;
}

/** Decides whether a principal may act on a repository of an organization. */
export interface Authorizer {
  /** `repo` null means the repository does not exist yet (push creates it). */
  canAccessRepo(principal: Principal, orgId: number, repoId: number | null, action: RepoAction, isPublic: boolean): Promise<boolean>;
  isOrgAdmin(principal: Principal, orgId: number): Promise<boolean>;
  isOrgMember(principal: Principal, orgId: number): Promise<boolean>;
}

/**
 * Whether a token's grants cover `action` on the repository. Cancelling an
 * upload is part of pushing, but clients may ask for it with a `delete` scope,
 * so `alsoAccept` widens what a grant may say.
 */
export function grantAllows(grants: TokenGrant[], repositoryName: string, action: RepoAction, alsoAccept: string[] = []): boolean {
  const needed = [action === 'pull' ? 'pull' : action === 'push' ? 'push' : action === 'delete' ? 'delete' : '*', '*', ...alsoAccept];
  return grants.some((g) => g.type === 'repository' && g.name === repositoryName && g.actions.some((a) => needed.includes(a)));
}
