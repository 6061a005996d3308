import { randomUUID } from 'node:crypto';
import type { RepoRole } from '../auth/principal';
import { type Db, isUniqueViolation } from '../db/database';
import { RegistryError } from '../errors/registry-error';
import type { Clock } from './clock';
import type { Subject } from './permission-service';

export type TeamRole = 'member' | 'creator' | 'admin';

export interface TeamRow {
  id: number;
  orgId: number;
  name: string;
  description: string;
  role: TeamRole;
  memberCount: number;
  repoCount: number;
}

/** Rows per INSERT when granting on many repositories (stays under SQLite's bound-variable limit). */
const BATCH = 200;

/**
 * Teams of an organization, their members (users and robots) and their roles on
 * repositories. A team's repository roles are rows of `permissions` with subject
 * kind `team`; its default permission a `prototypes` row with delegate kind `team`.
 */
export class TeamService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async list(orgId: number): Promise<TeamRow[]> {
    const rows = (await this.db('teams').where({ org_id: orgId }).orderBy('id')) as Array<Record<string, unknown>>;
    const out: TeamRow[] = [];
    for (const r of rows) out.push(await this.withCounts(r));
    return out;
  }

  async find(orgId: number, name: string): Promise<TeamRow | null> {
    const row = await this.db('teams').where({ org_id: orgId, name }).first();
    return row ? this.withCounts(row) : null;
  }

  /** Creates the team or changes its role and description; `created` tells which. */
  async upsert(orgId: number, name: string, role: TeamRole, description: string | undefined): Promise<{ team: TeamRow; created: boolean }> {
    const existing = await this.find(orgId, name);
    if (existing) {
      await this.db('teams').where({ id: existing.id }).update({ role, ...(description === undefined ? {} : { description }) });
    } else {
      try {
        await this.db('teams').insert({ org_id: orgId, name, role, description: description ?? '', created_at: this.clock.now() });
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
    }
    const team = await this.find(orgId, name);
    if (!team) throw new RegistryError('NOT_FOUND', `team ${name} was deleted concurrently`);
    return { team, created: !existing };
  }

  /** Deletes the team with its members, repository roles and default permission. */
  async delete(team: TeamRow): Promise<void> {
    await this.db.transaction(async (trx) => {
      await trx('permissions').where({ subject_kind: 'team', subject_id: team.id }).delete();
      await trx('prototypes').where({ delegate_kind: 'team', delegate_id: team.id }).delete();
      await trx('team_members').where({ team_id: team.id }).delete();
      await trx('teams').where({ id: team.id }).delete();
    });
  }

  async members(team: TeamRow, orgName: string): Promise<Subject[]> {
    const users = await this.db('team_members as tm').join('users as u', 'u.id', 'tm.subject_id').where({ 'tm.team_id': team.id, 'tm.subject_kind': 'user' }).orderBy('u.username').select('u.id', 'u.username');
    const robots = await this.db('team_members as tm').join('robots as r', 'r.id', 'tm.subject_id').where({ 'tm.team_id': team.id, 'tm.subject_kind': 'robot' }).orderBy('r.short_name').select('r.id', 'r.short_name');
    return [
      ...users.map((u: Record<string, unknown>) => ({ kind: 'user' as const, id: Number(u.id), name: String(u.username) })),
      ...robots.map((r: Record<string, unknown>) => ({ kind: 'robot' as const, id: Number(r.id), name: `${orgName}+${String(r.short_name)}` })),
    ];
  }

  /** The names of the organization's teams a user or robot belongs to. */
  async teamsOf(orgId: number, subject: Subject): Promise<string[]> {
    return (await this.db('teams as t').join('team_members as tm', 'tm.team_id', 't.id').where({ 't.org_id': orgId, 'tm.subject_kind': subject.kind, 'tm.subject_id': subject.id }).orderBy('t.name').pluck('t.name')).map(String);
  }

  /** Adds a member; false when it already was one. */
  async addMember(team: TeamRow, subject: Subject): Promise<boolean> {
    try {
      await this.db('team_members').insert({ team_id: team.id, subject_kind: subject.kind, subject_id: subject.id });
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async removeMember(team: TeamRow, subject: Subject): Promise<boolean> {
    return (await this.db('team_members').where({ team_id: team.id, subject_kind: subject.kind, subject_id: subject.id }).delete()) > 0;
  }

  /** The team's repository roles, by repository name. */
  async repositoryRoles(team: TeamRow): Promise<Array<{ repo: string; visibility: string | null; role: RepoRole }>> {
    const rows = await this.db('permissions as p').join('repositories as r', 'r.id', 'p.repo_id').where({ 'p.subject_kind': 'team', 'p.subject_id': team.id }).orderBy('r.name').select('r.name', 'r.visibility', 'p.role');
    return rows.map((r: Record<string, unknown>) => ({ repo: String(r.name), visibility: r.visibility === null || r.visibility === undefined ? null : String(r.visibility), role: r.role as RepoRole }));
  }

  /**
   * One action for "all current and future repositories": `role` on every
   * repository that exists now and as the team's default permission for those
   * created later (including those a cache creates on first pull). Returns the
   * number of existing repositories.
   */
  async grantOnAllRepositories(team: TeamRow, role: RepoRole): Promise<number> {
    return this.db.transaction(async (trx) => {
      const repoIds = ((await trx('repositories').where({ org_id: team.orgId }).pluck('id')) as number[]).map(Number);
      for (let i = 0; i < repoIds.length; i += BATCH) {
        await trx('permissions')
          .insert(repoIds.slice(i, i + BATCH).map((repoId) => ({ repo_id: repoId, subject_kind: 'team', subject_id: team.id, role })))
          .onConflict(['repo_id', 'subject_kind', 'subject_id'])
          .merge(['role']);
      }
      const prototype = await trx('prototypes').where({ org_id: team.orgId, delegate_kind: 'team', delegate_id: team.id }).first('id');
      if (prototype) await trx('prototypes').where({ id: prototype.id }).update({ role });
      else await trx('prototypes').insert({ id: randomUUID(), org_id: team.orgId, delegate_kind: 'team', delegate_id: team.id, role, created_at: this.clock.now() });
      return repoIds.length;
    });
  }

  private async withCounts(row: Record<string, unknown>): Promise<TeamRow> {
    const id = Number(row.id);
    const members = await this.db('team_members').where({ team_id: id }).count({ n: '*' }).first();
    const repos = await this.db('permissions').where({ subject_kind: 'team', subject_id: id }).count({ n: '*' }).first();
    const role = row.role === 'admin' || row.role === 'creator' ? row.role : 'member';
    return { id, orgId: Number(row.org_id), name: String(row.name), description: String(row.description ?? ''), role, memberCount: Number(members?.n ?? 0), repoCount: Number(repos?.n ?? 0) };
  }
}
