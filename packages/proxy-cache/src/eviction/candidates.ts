import type { Db, Digest, EvictionPolicy } from '@entrepot/registry-core';

/** The window of `lfu` (see nextCandidate). */
const LFU_WINDOW_MS = 7 * 24 * 3600 * 1000;

/** `bytes`: the declared size of the manifest and what it references, an upper bound of what removing it frees. */
export type Candidate = ({ kind: 'manifest'; repoId: number; digest: Digest } | { kind: 'tag'; repoId: number; tag: string; digest: Digest }) & { bytes: number };

export interface Protected {
  repoId: number;
  tag?: string;
  digest?: string;
}

/**
 * What eviction removes first in a cache organization: manifests nothing tags
 * (fetched by digest only), oldest first; then unpinned tags by policy —
 * `lru`: least recently pulled (or cached); `lfu`: fewest pulls, then least recently pulled.
 * `lfu` counts pulls within a window: a tag's pulls are weighted by
 * (window / (window + time since its last pull))², a quarter one window ago and
 * nearly nothing after a few, so a burst of pulls long ago does not keep an
 * image that nobody uses now.
 * Pinned tags are never candidates, nor are referrers (by `subject`, or
 * cosign's `sha256-<hex>.sig`-style tags) while their subject is cached: they
 * are removed with it.
 */
export async function nextCandidates(db: Db, orgId: number, policy: EvictionPolicy, now: number, limit: number, protect?: Protected): Promise<Candidate[]> {
  const orgRepos = db('repositories').select('id').where({ org_id: orgId });
  const declared = (alias: string, digestColumn: string) =>
    db.raw(`(SELECT COALESCE(SUM(r2.size), 0) FROM manifest_refs r2 WHERE r2.repo_id = ${alias}.repo_id AND r2.manifest_digest = ${digestColumn}) AS refs_size`);
  let orphans = db('manifests as m')
    .whereIn('m.repo_id', orgRepos.clone())
    .whereNotExists(db('tags as t').select(db.raw('1')).whereRaw('t.repo_id = m.repo_id AND t.manifest_digest = m.digest'))
    .whereNotExists(db('manifest_refs as r').select(db.raw('1')).whereRaw('r.repo_id = m.repo_id AND r.child_digest = m.digest'))
    // A referrer goes with its subject, never before it.
    .where((q) => q.whereNull('m.subject_digest').orWhereNotExists(db('manifests as s').select(db.raw('1')).whereRaw('s.repo_id = m.repo_id AND s.digest = m.subject_digest')));
  if (protect?.digest) orphans = orphans.whereNot((q) => q.where('m.repo_id', protect.repoId).andWhere('m.digest', protect.digest!));
  const orphanRows = (await orphans.orderBy('m.created_at').limit(limit).select('m.repo_id', 'm.digest', 'm.size', declared('m', 'm.digest'))) as Array<Record<string, unknown>>;
  const found: Candidate[] = orphanRows.map((o) => ({ kind: 'manifest', repoId: Number(o.repo_id), digest: o.digest as Digest, bytes: Number(o.size) + Number(o.refs_size) }));
  if (found.length >= limit) return found;

  let tags = db('tags as t')
    .join('manifests as m', (j) => j.on('m.repo_id', 't.repo_id').andOn('m.digest', 't.manifest_digest'))
    .whereIn('t.repo_id', orgRepos.clone())
    .where('t.pinned', false)
    .whereNot((q) => q.where('t.name', 'like', 'sha256-%').whereExists(db('manifests as s').select(db.raw('1')).whereRaw(`s.repo_id = t.repo_id AND s.digest = ${subjectOfTag(db)}`)));
  if (protect?.tag) tags = tags.whereNot((q) => q.where('t.repo_id', protect.repoId).andWhere('t.name', protect.tag!));
  if (policy === 'lfu') {
    // In windows, as a float: integer arithmetic would overflow (MariaDB) or truncate (SQLite).
    const windows = '(1.0 + (? - COALESCE(t.last_pulled_at, t.updated_at)) / (? * 1.0))';
    tags = tags.orderByRaw(`t.pull_count / (${windows} * ${windows}) ASC`, [now, LFU_WINDOW_MS, now, LFU_WINDOW_MS]);
  }
  tags = tags.orderByRaw('COALESCE(t.last_pulled_at, t.updated_at) ASC');
  const tagRows = (await tags.limit(limit - found.length).select('t.repo_id', 't.name', 't.manifest_digest', 'm.size', declared('t', 't.manifest_digest'))) as Array<Record<string, unknown>>;
  for (const t of tagRows) {
    found.push({ kind: 'tag', repoId: Number(t.repo_id), tag: String(t.name), digest: t.manifest_digest as Digest, bytes: Number(t.size) + Number(t.refs_size) });
  }
  return found;
}

/**
 * The digest a tag of the referrers or cosign tag schema names
 * (`sha256-<hex>[.sig|.att|.sbom]` → `sha256:<hex>`), as SQL on `t.name`.
 */
function subjectOfTag(db: Db): string {
  return db.client.config.client === 'mysql2' ? "CONCAT('sha256:', SUBSTR(t.name, 8, 64))" : "('sha256:' || SUBSTR(t.name, 8, 64))";
}

/** The single best candidate (see nextCandidates). */
export async function nextCandidate(db: Db, orgId: number, policy: EvictionPolicy, now: number, protect?: Protected): Promise<Candidate | null> {
  return (await nextCandidates(db, orgId, policy, now, 1, protect))[0] ?? null;
}
