import type { PointRead, PointReads } from '../db/point-reads';
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
  private readonly memberRole: PointRead;
  private readonly repoPermission: PointRead;
  private readonly defaultPermission: PointRead;

  constructor(reads: PointReads) {
    this.memberRole = reads.statement('SELECT role FROM org_members WHERE org_id = ? AND user_id = ? LIMIT 1');
    this.repoPermission = reads.statement('SELECT role FROM permissions WHERE repo_id = ? AND subject_kind = ? AND subject_id = ? LIMIT 1');
    this.defaultPermission = reads.statement('SELECT role FROM prototypes WHERE org_id = ? AND delegate_kind = ? AND delegate_id = ? LIMIT 1');
  }

  async canAccessRepo(principal: Principal, orgId: number, repoId: number | null, action: RepoAction, isPublic: boolean): Promise<boolean> {
    if (action === 'pull' && isPublic) return true;
    if (principal.kind === 'anonymous') return false;
    // The scanner's tokens are issued for one repository's pulls only; the grant is what bounds it.
    if (principal.kind === 'scanner') return action === 'pull';
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
    const row = await this.memberRole.first([orgId, userId]);
    return row ? (row.role as 'admin' | 'member') : null;
  }

  private async repoRole(principal: Principal & { id: number }, repoId: number): Promise<RepoRole | null> {
    const row = await this.repoPermission.first([repoId, principal.kind, principal.id]);
    return row ? (row.role as RepoRole) : null;
  }

  private async defaultRole(principal: Principal & { id: number }, orgId: number): Promise<RepoRole | null> {
    const row = await this.defaultPermission.first([orgId, principal.kind, principal.id]);
    return row ? (row.role as RepoRole) : null;
  }
}
