import type { Db } from '../db/database';
import type { Authorizer } from './authenticator';
import type { Principal, RepoAction, RepoRole } from './principal';

const ROLE_RANK: Record<RepoRole, number> = { read: 1, write: 2, admin: 3 };
const NEEDED: Record<RepoAction, number> = { pull: 1, push: 2, delete: 2, admin: 3 };

/**
 * Permission rules:
 * - superusers may do anything; organization admins anything in their organization;
 * - organization members may pull every repository and create new ones by pushing;
 * - users and robots get read/write/admin per repository (explicit or via default permissions);
 * - a repository that does not exist yet (first pull through a cache, first push) is
 *   judged by the organization's default permissions, which it will receive;
 * - anyone may pull from public organizations and repositories.
 */
export class DbAuthorizer implements Authorizer {
  constructor(private readonly db: Db) {}

  async canAccessRepo(principal: Principal, orgId: number, repoId: number | null, action: RepoAction, isPublic: boolean): Promise<boolean> {
    if (action === 'pull' && isPublic) return true;
    if (principal.kind === 'anonymous') return false;
    if (principal.kind === 'user') {
      if (principal.isSuperuser) return true;
      const membership = await this.membership(principal.id, orgId);
      if (membership === 'admin') return true;
      if (membership === 'member' && (action === 'pull' || (action === 'push' && repoId === null))) return true;
    }
    if (principal.kind === 'robot' && principal.orgId !== orgId) return false;
    const role = repoId === null ? await this.defaultRole(principal, orgId) : await this.repoRole(principal, repoId);
    return role !== null && ROLE_RANK[role] >= NEEDED[action];
  }

  async isOrgAdmin(principal: Principal, orgId: number): Promise<boolean> {
    if (principal.kind !== 'user') return false;
    return principal.isSuperuser || (await this.membership(principal.id, orgId)) === 'admin';
  }

  async isOrgMember(principal: Principal, orgId: number): Promise<boolean> {
    if (principal.kind === 'robot') return principal.orgId === orgId;
    if (principal.kind !== 'user') return false;
    return principal.isSuperuser || (await this.membership(principal.id, orgId)) !== null;
  }

  private async membership(userId: number, orgId: number): Promise<'admin' | 'member' | null> {
    const row = await this.db('org_members').where({ org_id: orgId, user_id: userId }).first('role');
    return row ? (row.role as 'admin' | 'member') : null;
  }

  private async repoRole(principal: Principal & { id: number }, repoId: number): Promise<RepoRole | null> {
    const row = await this.db('permissions').where({ repo_id: repoId, subject_kind: principal.kind, subject_id: principal.id }).first('role');
    return row ? (row.role as RepoRole) : null;
  }

  private async defaultRole(principal: Principal & { id: number }, orgId: number): Promise<RepoRole | null> {
    const row = await this.db('prototypes').where({ org_id: orgId, delegate_kind: principal.kind, delegate_id: principal.id }).first('role');
    return row ? (row.role as RepoRole) : null;
  }
}
