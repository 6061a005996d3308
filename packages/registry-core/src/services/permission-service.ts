import { randomUUID } from 'node:crypto';
import type { RepoRole } from '../auth/principal';
import { type Db, isUniqueViolation } from '../db/database';
import { invalidField, RegistryError } from '../errors/registry-error';
import type { Clock } from './clock';
import type { OrganizationRow } from './repository-service';

/** Who a permission is given to: a user, or a robot of the repository's organization. */
export interface Subject {
  kind: 'user' | 'robot';
  id: number;
  /** `username`, or `org+short` for robots. */
  name: string;
}

export interface SubjectRole {
  subject: Subject;
  role: RepoRole;
  isOrgMember: boolean;
}

/** Whom a default permission is for: a subject, or a team of the organization. */
/** Who a repository role or a default permission is given to: a user, a robot or a team. */
export type Grantee = Subject | { kind: 'team'; id: number; name: string };
export type PrototypeDelegate = Grantee;

export interface PrototypeRow {
  id: string;
  role: RepoRole;
  delegate: PrototypeDelegate;
  isOrgMember: boolean;
  created_at: number;
}

/** Rows per INSERT when granting on many repositories (stays under SQLite's bound-variable limit). */
const BATCH = 200;

/** Repository permissions and an organization's default permissions (Quay "prototypes"). */
export class PermissionService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /**
   * Resolves a user name or a robot name `org+short`. Returns null when no such
   * account exists; throws INVALID_REQUEST (naming `field`) for a robot of another organization.
   */
  async resolveSubject(org: OrganizationRow, name: string, field: string): Promise<Subject | null> {
    const plus = name.indexOf('+');
    if (plus >= 0) {
      if (name.slice(0, plus) !== org.name) throw invalidField(field, `robot ${name.slice(0, 300)} belongs to another organization; only robots of ${org.name} can be given permissions here`);
      const row = await this.db('robots').where({ org_id: org.id, short_name: name.slice(plus + 1) }).first('id');
      return row ? { kind: 'robot', id: Number(row.id), name } : null;
    }
    const row = await this.db('users').where({ username: name }).first('id');
    return row ? { kind: 'user', id: Number(row.id), name } : null;
  }

  /** Every explicit permission on a repository, users first, then robots, by name. */
  async list(org: OrganizationRow, repoId: number): Promise<SubjectRole[]> {
    const users = await this.db('permissions as p')
      .join('users as u', 'u.id', 'p.subject_id')
      .leftJoin('org_members as m', (j) => j.on('m.user_id', '=', 'u.id').andOn('m.org_id', '=', this.db.raw('?', [org.id])))
      .where({ 'p.repo_id': repoId, 'p.subject_kind': 'user' })
      .orderBy('u.username')
      .select('u.id', 'u.username', 'p.role', 'm.role as member_role');
    const robots = await this.db('permissions as p')
      .join('robots as r', 'r.id', 'p.subject_id')
      .where({ 'p.repo_id': repoId, 'p.subject_kind': 'robot' })
      .orderBy('r.short_name')
      .select('r.id', 'r.short_name', 'p.role');
    return [
      ...users.map((r: Record<string, unknown>) => ({
        subject: { kind: 'user' as const, id: Number(r.id), name: String(r.username) },
        role: r.role as RepoRole,
        isOrgMember: r.member_role !== null && r.member_role !== undefined,
      })),
      ...robots.map((r: Record<string, unknown>) => ({
        subject: { kind: 'robot' as const, id: Number(r.id), name: `${org.name}+${String(r.short_name)}` },
        role: r.role as RepoRole,
        isOrgMember: true,
      })),
    ];
  }

  /** The repositories a subject holds an explicit role on, by name, with the repository's own visibility (null: the organization's). */
  async subjectPermissions(orgId: number, subject: Subject): Promise<Array<{ repo: string; visibility: string | null; role: RepoRole }>> {
    const rows = await this.db('permissions as p')
      .join('repositories as r', 'r.id', 'p.repo_id')
      .where({ 'r.org_id': orgId, 'p.subject_kind': subject.kind, 'p.subject_id': subject.id })
      .orderBy('r.name')
      .select('r.name', 'r.visibility', 'p.role');
    return rows.map((r: Record<string, unknown>) => ({ repo: String(r.name), visibility: r.visibility === null || r.visibility === undefined ? null : String(r.visibility), role: r.role as RepoRole }));
  }

  /** The teams holding a role on a repository, by team name. */
  async teamRoles(repoId: number): Promise<Array<{ name: string; role: RepoRole }>> {
    const rows = (await this.db('permissions as p')
      .join('teams as t', 't.id', 'p.subject_id')
      .where({ 'p.repo_id': repoId, 'p.subject_kind': 'team' })
      .orderBy('t.name')
      .select('t.name', 'p.role')) as Array<{ name: string; role: RepoRole }>;
    return rows.map((r) => ({ name: String(r.name), role: r.role }));
  }

  async get(repoId: number, subject: Grantee): Promise<RepoRole | null> {
    const row = await this.db('permissions').where({ repo_id: repoId, subject_kind: subject.kind, subject_id: subject.id }).first('role');
    return row ? (row.role as RepoRole) : null;
  }

  /** Sets the subject's role on one repository; returns the previous role. */
  async set(repoId: number, subject: Grantee, role: RepoRole): Promise<RepoRole | null> {
    return this.db.transaction(async (trx) => {
      const row = await trx('permissions').where({ repo_id: repoId, subject_kind: subject.kind, subject_id: subject.id }).first('role');
      await trx('permissions')
        .insert({ repo_id: repoId, subject_kind: subject.kind, subject_id: subject.id, role })
        .onConflict(['repo_id', 'subject_kind', 'subject_id'])
        .merge(['role']);
      return row ? (row.role as RepoRole) : null;
    });
  }

  async remove(repoId: number, subject: Grantee): Promise<boolean> {
    return (await this.db('permissions').where({ repo_id: repoId, subject_kind: subject.kind, subject_id: subject.id }).delete()) > 0;
  }

  /** Sets the subject's role on every repository the organization has now, in one transaction; returns how many. */
  async setOnAll(orgId: number, subject: Subject, role: RepoRole): Promise<number> {
    return this.db.transaction(async (trx) => {
      const repoIds = (await trx('repositories').where({ org_id: orgId }).orderBy('id').pluck('id')) as number[];
      for (let i = 0; i < repoIds.length; i += BATCH) {
        const rows = repoIds.slice(i, i + BATCH).map((id) => ({ repo_id: Number(id), subject_kind: subject.kind, subject_id: subject.id, role }));
        await trx('permissions').insert(rows).onConflict(['repo_id', 'subject_kind', 'subject_id']).merge(['role']);
      }
      return repoIds.length;
    });
  }

  async listPrototypes(org: OrganizationRow): Promise<PrototypeRow[]> {
    const rows = (await this.db('prototypes').where({ org_id: org.id }).orderBy('created_at').orderBy('id')) as Array<Record<string, unknown>>;
    const userIds = rows.filter((r) => r.delegate_kind === 'user').map((r) => Number(r.delegate_id));
    const robotIds = rows.filter((r) => r.delegate_kind === 'robot').map((r) => Number(r.delegate_id));
    const users = new Map<number, string>();
    for (const u of userIds.length ? await this.db('users').whereIn('id', userIds).select('id', 'username') : []) users.set(Number(u.id), String(u.username));
    const robots = new Map<number, string>();
    for (const r of robotIds.length ? await this.db('robots').whereIn('id', robotIds).select('id', 'short_name') : []) robots.set(Number(r.id), `${org.name}+${String(r.short_name)}`);
    const teamIds = rows.filter((r) => r.delegate_kind === 'team').map((r) => Number(r.delegate_id));
    const teams = new Map<number, string>();
    for (const t of teamIds.length ? await this.db('teams').whereIn('id', teamIds).select('id', 'name') : []) teams.set(Number(t.id), String(t.name));
    const members = new Set<number>(
      userIds.length ? ((await this.db('org_members').where({ org_id: org.id }).whereIn('user_id', userIds).pluck('user_id')) as number[]).map(Number) : [],
    );
    const result: PrototypeRow[] = [];
    for (const r of rows) {
      const kind = r.delegate_kind === 'robot' ? 'robot' : r.delegate_kind === 'team' ? 'team' : 'user';
      const id = Number(r.delegate_id);
      const name = kind === 'robot' ? robots.get(id) : kind === 'team' ? teams.get(id) : users.get(id);
      if (name === undefined) continue; // delegate deleted concurrently
      result.push({
        id: String(r.id),
        role: r.role as RepoRole,
        delegate: { kind, id, name },
        isOrgMember: kind === 'robot' || members.has(id),
        created_at: Number(r.created_at),
      });
    }
    return result;
  }

  async findPrototype(org: OrganizationRow, id: string): Promise<PrototypeRow | null> {
    return (await this.listPrototypes(org)).find((p) => p.id === id) ?? null;
  }

  /** Adds a default permission. Throws CONFLICT when the delegate already has one. */
  async createPrototype(orgId: number, delegate: PrototypeDelegate, role: RepoRole): Promise<string> {
    const id = randomUUID();
    try {
      await this.db('prototypes').insert({ id, org_id: orgId, delegate_kind: delegate.kind, delegate_id: delegate.id, role, created_at: this.clock.now() });
    } catch (err) {
      if (isUniqueViolation(err)) throw new RegistryError('CONFLICT', `${delegate.name} already has a default permission in this organization; change it with PUT`);
      throw err;
    }
    return id;
  }

  async updatePrototype(orgId: number, id: string, role: RepoRole): Promise<boolean> {
    return (await this.db('prototypes').where({ org_id: orgId, id }).update({ role })) > 0;
  }

  async deletePrototype(orgId: number, id: string): Promise<boolean> {
    return (await this.db('prototypes').where({ org_id: orgId, id }).delete()) > 0;
  }
}
