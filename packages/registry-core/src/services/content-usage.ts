import type { Db } from '../db/database';
import type { Digest } from '../oci/digest';
import type { EvictionPolicy } from './quota-service';

/** The window of `lfu` (see evictionCandidates). */
const LFU_WINDOW_MS = 7 * 24 * 3600 * 1000;

/** `bytes`: the declared size of the blob, or of the manifest and what it references: an upper bound of what removing it frees. */
export type EvictionCandidate = (
  | { kind: 'blob'; repoId: number; digest: Digest }
  | { kind: 'manifest'; repoId: number; digest: Digest }
  | { kind: 'tag'; repoId: number; tag: string; digest: Digest }
) & { bytes: number };

export interface ProtectedContent {
  repoId: number;
  tag?: string;
  digest?: string;
}

/** An idle tag or by-digest manifest of an organization (see `idleContent`). */
export interface IdleItem {
  repoId: number;
  repo: string;
  tag?: string;
  digest: Digest;
}

/**
 * Read-only questions about how content is used, for eviction and expiry:
 * what was pulled least, what nobody pulled lately, how often tags were pulled.
 */
export class ContentUsage {
  constructor(private readonly db: Db) {}

  /**
   * What eviction removes first in a cache organization: blobs linked to a
   * repository that none of its manifests references (fetched by digest only,
   * or linked by a download that ended after eviction took their manifest),
   * oldest first; then manifests nothing tags (fetched by digest only), oldest
   * first; then unpinned tags by policy —
   * `lru`: least recently pulled (or cached); `lfu`: fewest pulls, then least recently pulled.
   * `lfu` counts pulls within a window: a tag's pulls are weighted by
   * (window / (window + time since its last pull))², a quarter one window ago and
   * nearly nothing after a few, so a burst of pulls long ago does not keep an
   * image that nobody uses now.
   * Pinned tags are never candidates, nor are referrers (by `subject`, or
   * cosign's `sha256-<hex>.sig`-style tags) while their subject is cached: they
   * are removed with it.
   * `from` skips the kinds ranked before it: a pass that was offered a later
   * kind knows the earlier ones ran out (evicting a tag leaves no bare link
   * and no untagged manifest behind), so it need not search for them again.
   */
  async evictionCandidates(orgId: number, policy: EvictionPolicy, now: number, limit: number, protect?: ProtectedContent, from: EvictionCandidate['kind'] = 'blob'): Promise<EvictionCandidate[]> {
    const found: EvictionCandidate[] = [];
    if (from === 'blob') found.push(...(await this.bareLinks(orgId, now, limit)));
    if (found.length < limit && from !== 'tag') found.push(...(await this.untaggedManifests(orgId, limit - found.length, protect)));
    if (found.length < limit) found.push(...(await this.tagsByPolicy(orgId, policy, now, limit - found.length, protect)));
    return found;
  }

  /** Blobs linked to a repository of the organization that none of its manifests references, oldest link first. */
  private async bareLinks(orgId: number, now: number, limit: number): Promise<EvictionCandidate[]> {
    const db = this.db;
    const rows = (await db('repo_blobs as rb')
      .join('blobs as b', 'b.digest', 'rb.digest')
      .whereIn('rb.repo_id', db('repositories').select('id').where({ org_id: orgId }))
      .whereNotExists(db('manifest_refs as r').select(db.raw('1')).whereRaw('r.repo_id = rb.repo_id AND r.child_digest = rb.digest'))
      // Still counted by an admission storing it: removing the link would free nothing until that ends.
      .whereNotExists(
        db('quota_reserved_digests as qd')
          .join('quota_reservations as q', 'q.id', 'qd.reservation_id')
          .select(db.raw('1'))
          .whereRaw('qd.org_id = ? AND qd.digest = rb.digest AND q.expires_at > ?', [orgId, now]),
      )
      .orderBy('rb.created_at')
      .limit(limit)
      .select('rb.repo_id', 'rb.digest', 'b.size')) as Array<Record<string, unknown>>;
    return rows.map((l) => ({ kind: 'blob', repoId: Number(l.repo_id), digest: l.digest as Digest, bytes: Number(l.size) }));
  }

  /** Manifests nothing tags or lists (fetched by digest only), oldest first; a referrer only once its subject is gone. */
  private async untaggedManifests(orgId: number, limit: number, protect?: ProtectedContent): Promise<EvictionCandidate[]> {
    const db = this.db;
    let orphans = db('manifests as m')
      .whereIn('m.repo_id', db('repositories').select('id').where({ org_id: orgId }))
      .whereNotExists(db('tags as t').select(db.raw('1')).whereRaw('t.repo_id = m.repo_id AND t.manifest_digest = m.digest'))
      .whereNotExists(db('manifest_refs as r').select(db.raw('1')).whereRaw('r.repo_id = m.repo_id AND r.child_digest = m.digest'))
      // A referrer goes with its subject, never before it.
      .where((q) => q.whereNull('m.subject_digest').orWhereNotExists(db('manifests as s').select(db.raw('1')).whereRaw('s.repo_id = m.repo_id AND s.digest = m.subject_digest')));
    if (protect?.digest) orphans = orphans.whereNot((q) => q.where('m.repo_id', protect.repoId).andWhere('m.digest', protect.digest!));
    const rows = (await orphans.orderBy('m.created_at').limit(limit).select('m.repo_id', 'm.digest', 'm.size', declaredRefs(db, 'm', 'm.digest'))) as Array<Record<string, unknown>>;
    return rows.map((o) => ({ kind: 'manifest', repoId: Number(o.repo_id), digest: o.digest as Digest, bytes: Number(o.size) + Number(o.refs_size) }));
  }

  /** Unpinned tags, not of a referrer whose subject is cached, in the policy's order. */
  private async tagsByPolicy(orgId: number, policy: EvictionPolicy, now: number, limit: number, protect?: ProtectedContent): Promise<EvictionCandidate[]> {
    const db = this.db;
    let tags = db('tags as t')
      .join('manifests as m', (j) => j.on('m.repo_id', 't.repo_id').andOn('m.digest', 't.manifest_digest'))
      .whereIn('t.repo_id', db('repositories').select('id').where({ org_id: orgId }))
      .where('t.pinned', false)
      .whereNot((q) => q.where('t.name', 'like', 'sha256-%').whereExists(db('manifests as s').select(db.raw('1')).whereRaw(`s.repo_id = t.repo_id AND s.digest = ${subjectOfTag(db)}`)));
    if (protect?.tag) tags = tags.whereNot((q) => q.where('t.repo_id', protect.repoId).andWhere('t.name', protect.tag!));
    if (policy === 'lfu') {
      // In windows, as a float: integer arithmetic would overflow (MariaDB) or truncate (SQLite).
      const windows = '(1.0 + (? - COALESCE(t.last_pulled_at, t.updated_at)) / (? * 1.0))';
      tags = tags.orderByRaw(`t.pull_count / (${windows} * ${windows}) ASC`, [now, LFU_WINDOW_MS, now, LFU_WINDOW_MS]);
    }
    tags = tags.orderByRaw('COALESCE(t.last_pulled_at, t.updated_at) ASC');
    const rows = (await tags.limit(limit).select('t.repo_id', 't.name', 't.manifest_digest', 'm.size', declaredRefs(db, 't', 't.manifest_digest'))) as Array<Record<string, unknown>>;
    return rows.map((t) => ({ kind: 'tag', repoId: Number(t.repo_id), tag: String(t.name), digest: t.manifest_digest as Digest, bytes: Number(t.size) + Number(t.refs_size) }));
  }

  /** Idle tags (unpinned, not pulled since `cutoff`) and idle by-digest manifests (cached before `cutoff`, nothing tags or lists them) of the organization. */
  async idleContent(orgId: number, cutoff: number): Promise<IdleItem[]> {
    const db = this.db;
    const tagRows = (await db('tags as t')
      .join('repositories as r', 'r.id', 't.repo_id')
      .where('r.org_id', orgId)
      .where('t.pinned', false)
      .whereRaw('COALESCE(t.last_pulled_at, t.updated_at) < ?', [cutoff])
      .select('t.repo_id', 'r.name as repo', 't.name as tag', 't.manifest_digest')) as Array<Record<string, unknown>>;
    const orphanRows = (await db('manifests as m')
      .join('repositories as r', 'r.id', 'm.repo_id')
      .where('r.org_id', orgId)
      .where('m.created_at', '<', cutoff)
      .whereNotExists(db('tags as t').select(db.raw('1')).whereRaw('t.repo_id = m.repo_id AND t.manifest_digest = m.digest'))
      .whereNotExists(db('manifest_refs as x').select(db.raw('1')).whereRaw('x.repo_id = m.repo_id AND x.child_digest = m.digest'))
      .select('m.repo_id', 'r.name as repo', 'm.digest')) as Array<Record<string, unknown>>;
    return [
      ...tagRows.map((t) => ({ repoId: Number(t.repo_id), repo: String(t.repo), tag: String(t.tag), digest: t.manifest_digest as Digest })),
      ...orphanRows.map((m) => ({ repoId: Number(m.repo_id), repo: String(m.repo), digest: m.digest as Digest })),
    ];
  }

  /** How often each of the repository's `tags` was pulled (tags that do not exist are left out). */
  async tagPullCounts(repoId: number, tags: string[]): Promise<Map<string, number>> {
    if (tags.length === 0) return new Map();
    const rows = (await this.db('tags').where('repo_id', repoId).whereIn('name', tags).select('name', 'pull_count')) as Array<{ name: string; pull_count: number }>;
    return new Map(rows.map((r) => [r.name, Number(r.pull_count)]));
  }

  /** Cached indexes of the repository that list `digest` as a child manifest. */
  async parentIndexes(repoId: number, digest: Digest): Promise<Digest[]> {
    return (await this.db('manifest_refs').where({ repo_id: repoId, child_digest: digest, child_kind: 'manifest' }).pluck('manifest_digest')) as Digest[];
  }

  /** Repository names by id (ids that do not exist are left out). */
  async repositoryNames(repoIds: number[]): Promise<Map<number, string>> {
    if (repoIds.length === 0) return new Map();
    const rows = (await this.db('repositories').whereIn('id', repoIds).select('id', 'name')) as Array<{ id: number; name: string }>;
    return new Map(rows.map((r) => [Number(r.id), r.name]));
  }
}

/**
 * The digest a tag of the referrers or cosign tag schema names
 * (`sha256-<hex>[.sig|.att|.sbom]` → `sha256:<hex>`), as SQL on `t.name`.
 */
function subjectOfTag(db: Db): string {
  return db.client.config.client === 'mysql2' ? "CONCAT('sha256:', SUBSTR(t.name, 8, 64))" : "('sha256:' || SUBSTR(t.name, 8, 64))";
}

/** The declared sizes of what a manifest references, summed, as the column `refs_size`. */
function declaredRefs(db: Db, alias: string, digestColumn: string) {
  return db.raw(`(SELECT COALESCE(SUM(r2.size), 0) FROM manifest_refs r2 WHERE r2.repo_id = ${alias}.repo_id AND r2.manifest_digest = ${digestColumn}) AS refs_size`);
}
