import type { ChangeNotices } from '../coordination/change-notices';
import { Db, isUniqueViolation, inTransaction } from '../db/database';
import type { PointRead, PointReads } from '../db/point-reads';
import { Clock } from './clock';
import { ShortMemo } from './short-memo';

export interface OrganizationRow {
  id: number;
  name: string;
  is_public: boolean;
  created_at: number;
}

export interface RepositoryRow {
  id: number;
  org_id: number;
  name: string;
  visibility: 'public' | 'private' | null;
  created_at: number;
}

function toOrg(row: Record<string, unknown>): OrganizationRow {
  return { id: Number(row.id), name: String(row.name), is_public: Boolean(row.is_public), created_at: Number(row.created_at) };
}

function toRepo(row: Record<string, unknown>): RepositoryRow {
  return {
    id: Number(row.id),
    org_id: Number(row.org_id),
    name: String(row.name),
    visibility: (row.visibility as RepositoryRow['visibility']) ?? null,
    created_at: Number(row.created_at),
  };
}

export interface OrgWithRepository {
  org: OrganizationRow;
  repository: RepositoryRow | null;
}

/**
 * How long a replica keeps an organization and repository it read for a pull.
 * Changes reach every replica at once through change notices; this bounds how
 * long one whose notices were cut can act on an old visibility.
 */
const ORG_ROWS_TTL_MS = 5000;

/** The memo key, also what a change notice carries: names are unambiguous joined by '/' (an org name has none). */
function memoKey(orgName: string, repoName: string): string {
  return `${orgName}/${repoName}`;
}

/**
 * Organizations and repositories: lookup, creation with default permissions
 * applied, and the changes pulls depend on (visibility, deletion), which go
 * through here so that every replica forgets what it kept of them.
 */
export class RepositoryService {
  private readonly orgByName: PointRead;
  private readonly repoByName: PointRead;
  private readonly orgWithRepo: PointRead;
  /** What every pull asks first, by `org/repo`; only pairs that exist are kept. */
  private readonly recent: ShortMemo<string, OrgWithRepository | null>;

  constructor(
    private readonly db: Db,
    reads: PointReads,
    private readonly clock: Clock,
    notices: ChangeNotices,
  ) {
    this.recent = new ShortMemo(clock, { ttlMs: ORG_ROWS_TTL_MS, maxEntries: 20_000, shared: { notices, topic: 'org-rows' } });
    this.orgByName = reads.statement('SELECT id, name, is_public, created_at FROM organizations WHERE name = ? LIMIT 1');
    this.repoByName = reads.statement('SELECT id, org_id, name, visibility, created_at FROM repositories WHERE org_id = ? AND name = ? LIMIT 1');
    this.orgWithRepo = reads.statement(
      'SELECT o.id, o.name, o.is_public, o.created_at, r.id AS repo_id, r.name AS repo_name, r.visibility AS repo_visibility, r.created_at AS repo_created_at' +
        ' FROM organizations o LEFT JOIN repositories r ON r.org_id = o.id AND r.name = ? WHERE o.name = ? LIMIT 1',
    );
  }

  async findOrg(name: string): Promise<OrganizationRow | null> {
    const row = await this.orgByName.first([name]);
    return row ? toOrg(row) : null;
  }

  /**
   * An organization and, when it exists, its repository `repoName`: what every
   * pull asks first, kept for a moment once both exist (a repository not there
   * yet is asked again, so that one created elsewhere is found at once).
   */
  async findOrgWithRepository(orgName: string, repoName: string): Promise<OrgWithRepository | null> {
    return this.recent.getOrLoad(memoKey(orgName, repoName), () => this.readOrgWithRepository(orgName, repoName), { keep: (found) => found?.repository != null });
  }

  private async readOrgWithRepository(orgName: string, repoName: string): Promise<OrgWithRepository | null> {
    const row = await this.orgWithRepo.first([repoName, orgName]);
    if (!row) return null;
    const org = toOrg(row);
    const repository =
      row.repo_id === null || row.repo_id === undefined
        ? null
        : toRepo({ id: row.repo_id, org_id: org.id, name: row.repo_name, visibility: row.repo_visibility, created_at: row.repo_created_at });
    return { org, repository };
  }

  async setOrgVisibility(org: OrganizationRow, isPublic: boolean): Promise<void> {
    await this.db('organizations').where({ id: org.id }).update({ is_public: isPublic });
    await this.recent.forgetAll();
  }

  /** Deletes the organization; its repositories and everything in them go with it (foreign keys). */
  async deleteOrg(org: OrganizationRow): Promise<void> {
    await this.db('organizations').where({ id: org.id }).delete();
    await this.recent.forgetAll();
  }

  async setVisibility(org: OrganizationRow, repo: RepositoryRow, visibility: RepositoryRow['visibility']): Promise<void> {
    await this.db('repositories').where({ id: repo.id }).update({ visibility });
    await this.recent.forget(memoKey(org.name, repo.name));
  }

  async findOrgById(id: number): Promise<OrganizationRow | null> {
    const row = await this.db('organizations').where({ id }).first();
    return row ? toOrg(row) : null;
  }

  /** Returns the organization, creating it (without members) if needed: for orgs declared in the config. */
  async ensureOrg(name: string, isPublic: boolean): Promise<OrganizationRow> {
    const existing = await this.findOrg(name);
    if (existing) return existing;
    try {
      await this.db('organizations').insert({ name, is_public: isPublic, created_at: this.clock.now() });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
    }
    const created = await this.findOrg(name);
    if (!created) throw new Error(`organization ${name} vanished after creation`);
    return created;
  }

  async find(orgId: number, name: string): Promise<RepositoryRow | null> {
    const row = await this.repoByName.first([orgId, name]);
    return row ? toRepo(row) : null;
  }

  async listByOrg(orgId: number): Promise<RepositoryRow[]> {
    return (await this.db('repositories').where({ org_id: orgId }).orderBy('name')).map(toRepo);
  }

  /** Up to `limit` repositories of the organization whose names sort after `after`, by name. */
  async listAfter(orgId: number, after: string, limit: number): Promise<RepositoryRow[]> {
    return (await this.db('repositories').where({ org_id: orgId }).where('name', '>', after).orderBy('name').limit(limit)).map(toRepo);
  }

  /** Whether any repository of the organization is public by its own setting. */
  async hasPublicRepository(orgId: number): Promise<boolean> {
    return Boolean(await this.db('repositories').where({ org_id: orgId, visibility: 'public' }).first('id'));
  }

  async description(repoId: number): Promise<string> {
    const row = await this.db('repositories').where({ id: repoId }).first('description');
    return (row?.description as string | null | undefined) ?? '';
  }

  /** Descriptions by repository id ('' for none). */
  async descriptions(repoIds: number[]): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    if (repoIds.length === 0) return out;
    for (const r of await this.db('repositories').whereIn('id', repoIds).select('id', 'description')) out.set(Number(r.id), String(r.description ?? ''));
    return out;
  }

  async setDescription(repoId: number, description: string): Promise<void> {
    await this.db('repositories').where({ id: repoId }).update({ description });
  }

  /**
   * Returns the repository, creating it if needed. A new repository receives the
   * organization's default permissions (prototypes) in the same transaction.
   */
  async ensure(orgId: number, name: string): Promise<RepositoryRow> {
    const existing = await this.find(orgId, name);
    if (existing) return existing;
    try {
      await inTransaction(this.db, async (trx) => {
        const [id] = await trx('repositories').insert({ org_id: orgId, name, visibility: null, created_at: this.clock.now() });
        const repoId = Number(id);
        const prototypes = await trx('prototypes').where({ org_id: orgId });
        if (prototypes.length > 0) {
          await trx('permissions').insert(
            prototypes.map((p: Record<string, unknown>) => ({ repo_id: repoId, subject_kind: p.delegate_kind, subject_id: p.delegate_id, role: p.role })),
          );
        }
      });
    } catch (err) {
      // Another request created it first; use that one.
      if (!isUniqueViolation(err)) throw err;
    }
    const created = await this.find(orgId, name);
    if (!created) throw new Error(`repository ${name} vanished after creation`);
    return created;
  }

  async delete(org: OrganizationRow, repo: RepositoryRow): Promise<void> {
    await this.db('repositories').where({ id: repo.id }).delete();
    await this.recent.forget(memoKey(org.name, repo.name));
  }
}
