import type { PointRead, PointReads } from '../db/point-reads';
import type { Authorizer } from './authenticator';
import type { Principal, RepoAction, RepoRole } from './principal';

const ROLE_RANK: Record<RepoRole, number> = { read: 1, write: 2, admin: 3 };
const NEEDED: Record<RepoAction, number> = { pull: 1, push: 2, delete: 2, admin: 3 };
const RANK_SQL = (column: string) => `CASE ${column} WHEN 'admin' THEN 3 WHEN 'write' THEN 2 ELSE 1 END`;

/**
 * Permission rules:
 * - superusers may do anything; organization admins anything in their organization;
 * - organization members may pull every repository and create new ones by pushing;
 * - users and robots get read/write/admin per repository (explicit or via default permissions),
 *   directly or through their teams; a team's organization role makes its users
 *   members (`member`), members who may create repositories (`creator`) or administrators (`admin`);
 * - a repository that does not exist yet (first pull through a cache, first push) is
 *   judged by the organization's default permissions, which it will receive;
 * - anyone may pull from public organizations and repositories.
 */
export class DbAuthorizer implements Authorizer {
  private readonly memberRole: PointRead;
  private readonly repoPermission: PointRead;
  private readonly defaultPermission: PointRead;
  private readonly teamRepoRole: PointRead;
  private readonly teamDefaultRole: PointRead;
  private readonly teamOrgRole: PointRead;

  constructor(reads: PointReads) {
    this.memberRole = reads.statement('SELECT role FROM org_members WHERE org_id = ? AND user_id = ? LIMIT 1');
    this.repoPermission = reads.statement('SELECT role FROM permissions WHERE repo_id = ? AND subject_kind = ? AND subject_id = ? LIMIT 1');
    this.defaultPermission = reads.statement('SELECT role FROM prototypes WHERE org_id = ? AND delegate_kind = ? AND delegate_id = ? LIMIT 1');
    // The strongest role any of the subject's teams holds.
    this.teamRepoRole = reads.statement(
      `SELECT p.role FROM permissions p JOIN team_members tm ON tm.team_id = p.subject_id WHERE p.repo_id = ? AND p.subject_kind = 'team' AND tm.subject_kind = ? AND tm.subject_id = ? ORDER BY ${RANK_SQL('p.role')} DESC LIMIT 1`,
    );
    this.teamDefaultRole = reads.statement(
      `SELECT pr.role FROM prototypes pr JOIN team_members tm ON tm.team_id = pr.delegate_id WHERE pr.org_id = ? AND pr.delegate_kind = 'team' AND tm.subject_kind = ? AND tm.subject_id = ? ORDER BY ${RANK_SQL('pr.role')} DESC LIMIT 1`,
    );
    this.teamOrgRole = reads.statement(
      "SELECT t.role FROM teams t JOIN team_members tm ON tm.team_id = t.id WHERE t.org_id = ? AND tm.subject_kind = 'user' AND tm.subject_id = ? ORDER BY CASE t.role WHEN 'admin' THEN 3 WHEN 'creator' THEN 2 ELSE 1 END DESC LIMIT 1",
    );
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
      if ((membership === 'member' || membership === 'creator') && (action === 'pull' || (action === 'push' && repoId === null))) return true;
    }
    if (principal.kind === 'robot' && principal.orgId !== orgId) return false;
    const direct = repoId === null ? await this.defaultRole(principal, orgId) : await this.repoRole(principal, repoId);
    if (direct !== null && ROLE_RANK[direct] >= NEEDED[action]) return true;
    const viaTeam = await (repoId === null ? this.teamDefaultRole.first([orgId, principal.kind, principal.id]) : this.teamRepoRole.first([repoId, principal.kind, principal.id]));
    return viaTeam !== undefined && viaTeam !== null && ROLE_RANK[viaTeam.role as RepoRole] >= NEEDED[action];
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

  /** The stronger of the user's membership and the organization roles of their teams. */
  private async membership(userId: number, orgId: number): Promise<'admin' | 'creator' | 'member' | null> {
    const row = await this.memberRole.first([orgId, userId]);
    if (row?.role === 'admin') return 'admin';
    const team = await this.teamOrgRole.first([orgId, userId]);
    if (team?.role === 'admin') return 'admin';
    if (team?.role === 'creator') return 'creator';
    return row || team ? 'member' : null;
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
