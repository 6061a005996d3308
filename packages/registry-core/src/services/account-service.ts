import type { PasswordHasher } from '../auth/passwords';
import { type Db, isUniqueViolation } from '../db/database';
import { RegistryError } from '../errors/registry-error';
import type { Clock } from './clock';

export type MemberRole = 'admin' | 'member';

export interface UserRow {
  id: number;
  username: string;
  email: string | null;
  is_superuser: boolean;
  created_at: number;
}

export interface MembershipRow {
  org: string;
  role: MemberRole;
  is_public: boolean;
}

export interface MemberRow {
  username: string;
  role: MemberRole;
}

function toUser(row: Record<string, unknown>): UserRow {
  return {
    id: Number(row.id),
    username: String(row.username),
    email: row.email === null || row.email === undefined ? null : String(row.email),
    is_superuser: Boolean(row.is_superuser),
    created_at: Number(row.created_at),
  };
}

/** Users and organization membership. Users and organizations share one namespace. */
export class AccountService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly passwords: PasswordHasher,
  ) {}

  async findUser(username: string): Promise<UserRow | null> {
    const row = await this.db('users').where({ username }).first();
    return row ? toUser(row) : null;
  }

  async listUsers(): Promise<UserRow[]> {
    return (await this.db('users').orderBy('username')).map(toUser);
  }

  /** Throws CONFLICT when the name is taken by a user or an organization. */
  async createUser(input: { username: string; password: string; email?: string; superuser?: boolean }): Promise<UserRow> {
    if (await this.db('organizations').where({ name: input.username }).first('id')) {
      throw new RegistryError('CONFLICT', `name ${input.username} is taken by an organization`);
    }
    const passwordHash = await this.passwords.hash(input.password);
    try {
      await this.db('users').insert({
        username: input.username,
        password_hash: passwordHash,
        email: input.email ?? null,
        is_superuser: input.superuser ?? false,
        created_at: this.clock.now(),
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new RegistryError('CONFLICT', `user ${input.username} already exists`);
      throw err;
    }
    const user = await this.findUser(input.username);
    if (!user) throw new Error(`user ${input.username} vanished after creation`);
    return user;
  }

  /**
   * Deletes a user with their memberships, repository permissions and default
   * permissions. Throws CONFLICT when they are the last administrator of an organization.
   */
  async deleteUser(user: UserRow): Promise<void> {
    await this.db.transaction(async (trx) => {
      const adminOf = await trx('org_members').where({ user_id: user.id, role: 'admin' }).pluck('org_id');
      for (const orgId of adminOf as number[]) {
        const others = await trx('org_members').where({ org_id: orgId, role: 'admin' }).whereNot({ user_id: user.id }).count({ n: '*' }).first();
        if (Number(others?.n ?? 0) === 0) {
          const org = await trx('organizations').where({ id: orgId }).first('name');
          throw new RegistryError('CONFLICT', `${user.username} is the last administrator of organization ${String(org?.name)}`);
        }
      }
      await trx('permissions').where({ subject_kind: 'user', subject_id: user.id }).delete();
      await trx('prototypes').where({ delegate_kind: 'user', delegate_id: user.id }).delete();
      await trx('team_members').where({ subject_kind: 'user', subject_id: user.id }).delete();
      await trx('org_members').where({ user_id: user.id }).delete();
      await trx('users').where({ id: user.id }).delete();
    });
  }

  async membershipsOf(userId: number): Promise<MembershipRow[]> {
    const rows = await this.db('org_members as m')
      .join('organizations as o', 'o.id', 'm.org_id')
      .where('m.user_id', userId)
      .orderBy('o.name')
      .select('o.name', 'o.is_public', 'm.role');
    return rows.map((r: Record<string, unknown>) => ({ org: String(r.name), role: r.role as MemberRole, is_public: Boolean(r.is_public) }));
  }

  async listMembers(orgId: number): Promise<MemberRow[]> {
    const rows = await this.db('org_members as m').join('users as u', 'u.id', 'm.user_id').where('m.org_id', orgId).orderBy('u.username').select('u.username', 'm.role');
    return rows.map((r: Record<string, unknown>) => ({ username: String(r.username), role: r.role as MemberRole }));
  }

  async memberRole(orgId: number, userId: number): Promise<MemberRole | null> {
    const row = await this.db('org_members').where({ org_id: orgId, user_id: userId }).first('role');
    return row ? (row.role as MemberRole) : null;
  }

  /**
   * Adds a member or changes their role; returns the previous role (null when new).
   * Throws CONFLICT when this would leave the organization without an administrator.
   */
  async setMember(orgId: number, userId: number, role: MemberRole): Promise<MemberRole | null> {
    return this.db.transaction(async (trx) => {
      const row = await trx('org_members').where({ org_id: orgId, user_id: userId }).first('role');
      const previous = row ? (row.role as MemberRole) : null;
      if (previous === 'admin' && role !== 'admin') await this.requireAnotherAdmin(trx, orgId, userId);
      if (previous === null) await trx('org_members').insert({ org_id: orgId, user_id: userId, role });
      else if (previous !== role) await trx('org_members').where({ org_id: orgId, user_id: userId }).update({ role });
      return previous;
    });
  }

  /** Removes a member; returns their role, or null when they were not a member. Throws CONFLICT for the last administrator. */
  async removeMember(orgId: number, userId: number): Promise<MemberRole | null> {
    return this.db.transaction(async (trx) => {
      const row = await trx('org_members').where({ org_id: orgId, user_id: userId }).first('role');
      if (!row) return null;
      if (row.role === 'admin') await this.requireAnotherAdmin(trx, orgId, userId);
      await trx('org_members').where({ org_id: orgId, user_id: userId }).delete();
      return row.role as MemberRole;
    });
  }

  private async requireAnotherAdmin(trx: Db, orgId: number, userId: number): Promise<void> {
    const others = await trx('org_members').where({ org_id: orgId, role: 'admin' }).whereNot({ user_id: userId }).count({ n: '*' }).first();
    if (Number(others?.n ?? 0) === 0) throw new RegistryError('CONFLICT', 'an organization must keep at least one administrator');
  }
}
