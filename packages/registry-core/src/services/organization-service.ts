import { type Db, isUniqueViolation } from '../db/database';
import type { Clock } from './clock';

/**
 * What the organization API reads and writes beyond lookup, visibility and
 * deletion (which `RepositoryService` owns, as pulls depend on them): creation
 * with its first administrator, the contact address and the counts it shows.
 */
export class OrganizationService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /** Creates the organization with `adminUserId` as its administrator; returns its id, or null when the name is taken. */
  async create(input: { name: string; email: string | null; isPublic: boolean; adminUserId: number }): Promise<number | null> {
    let orgId = 0;
    try {
      await this.db.transaction(async (trx) => {
        const [id] = await trx('organizations').insert({ name: input.name, email: input.email, is_public: input.isPublic, created_at: this.clock.now() });
        orgId = Number(id);
        await trx('org_members').insert({ org_id: orgId, user_id: input.adminUserId, role: 'admin' });
      });
    } catch (err) {
      if (isUniqueViolation(err)) return null;
      throw err;
    }
    return orgId;
  }

  async email(orgId: number): Promise<string | null> {
    const row = await this.db('organizations').where({ id: orgId }).first('email');
    return (row?.email as string | null | undefined) ?? null;
  }

  async setEmail(orgId: number, email: string | null): Promise<void> {
    await this.db('organizations').where({ id: orgId }).update({ email });
  }

  async repositoryCount(orgId: number): Promise<number> {
    return this.count('repositories', orgId);
  }

  async memberCount(orgId: number): Promise<number> {
    return this.count('org_members', orgId);
  }

  async robotCount(orgId: number): Promise<number> {
    return this.count('robots', orgId);
  }

  private async count(table: 'repositories' | 'org_members' | 'robots', orgId: number): Promise<number> {
    return Number((await this.db(table).where({ org_id: orgId }).count({ n: '*' }).first())?.n ?? 0);
  }
}
