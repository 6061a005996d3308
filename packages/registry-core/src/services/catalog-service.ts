import type { Authorizer } from '../auth/authenticator';
import type { Principal } from '../auth/principal';
import type { Db } from '../db/database';

/** `/v2/_catalog`: repositories the principal may pull, in name order. */
export class CatalogService {
  constructor(
    private readonly db: Db,
    private readonly authorizer: Authorizer,
  ) {}

  async list(principal: Principal, page: { n?: number; last?: string }): Promise<string[]> {
    const limit = page.n ?? 1000;
    const names: string[] = [];
    let after = page.last ?? '';
    // Scan in batches so permission checks never load the whole table at once.
    while (names.length < limit) {
      const batch = await this.db('repositories as r')
        .join('organizations as o', 'o.id', 'r.org_id')
        .select('r.id', 'r.org_id', 'r.visibility', 'o.is_public', this.db.raw(`${this.concat()} as full_name`))
        .whereRaw(`${this.concat()} > ?`, [after])
        .orderByRaw(this.concat())
        .limit(500);
      if (batch.length === 0) break;
      for (const row of batch as Array<Record<string, unknown>>) {
        after = String(row.full_name);
        const isPublic = row.visibility ? row.visibility === 'public' : Boolean(row.is_public);
        if (await this.authorizer.canAccessRepo(principal, Number(row.org_id), Number(row.id), 'pull', isPublic)) {
          names.push(after);
          if (names.length >= limit) break;
        }
      }
    }
    return names;
  }

  private concat(): string {
    return this.db.client.config.client === 'mysql2' ? "CONCAT(o.name, '/', r.name)" : "(o.name || '/' || r.name)";
  }
}
