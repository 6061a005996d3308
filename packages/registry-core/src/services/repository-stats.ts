import type { Db } from '../db/database';
import { INDEX_MEDIA_TYPES } from '../oci/media-types';

export interface TagInfo {
  name: string;
  manifest_digest: string;
  media_type: string | null;
  is_manifest_list: boolean;
  /** Sum of the sizes of the blobs the manifest references (of every child for an index). */
  size: number;
  updated_at: number;
  last_pulled_at: number | null;
  pull_count: number;
  pinned: boolean;
}

export interface RepositorySummary {
  /** Sum of the distinct blobs the repository's manifests reference. */
  size: number;
  /** Newest tag change, epoch milliseconds, or null without tags. */
  last_modified: number | null;
  tag_count: number;
}

/** Digests per IN (...) list. */
const CHUNK = 400;

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

/** Read-only figures for the API's repository and tag listings: sizes, last change, pulls. */
export class RepositoryStats {
  constructor(private readonly db: Db) {}

  /** One page of tags (by name), with sizes. */
  async tagPage(repoId: number, options: { page: number; limit: number; specificTag?: string }): Promise<{ tags: TagInfo[]; hasAdditional: boolean }> {
    let query = this.db('tags as t')
      .leftJoin('manifests as m', (j) => j.on('m.repo_id', '=', 't.repo_id').andOn('m.digest', '=', 't.manifest_digest'))
      .where('t.repo_id', repoId)
      .select('t.name', 't.manifest_digest', 't.updated_at', 't.last_pulled_at', 't.pull_count', 't.pinned', 'm.media_type')
      .orderBy('t.name')
      .offset((options.page - 1) * options.limit)
      .limit(options.limit + 1);
    if (options.specificTag !== undefined) query = query.where('t.name', options.specificTag);
    const rows = (await query) as Array<Record<string, unknown>>;
    const page = rows.slice(0, options.limit);
    const sizes = await this.manifestSizes(repoId, page.map((r) => String(r.manifest_digest)));
    return {
      hasAdditional: rows.length > options.limit,
      tags: page.map((r) => {
        const mediaType = r.media_type === null || r.media_type === undefined ? null : String(r.media_type);
        return {
          name: String(r.name),
          manifest_digest: String(r.manifest_digest),
          media_type: mediaType,
          is_manifest_list: mediaType !== null && INDEX_MEDIA_TYPES.has(mediaType),
          size: sizes.get(String(r.manifest_digest)) ?? 0,
          updated_at: Number(r.updated_at),
          last_pulled_at: r.last_pulled_at === null || r.last_pulled_at === undefined ? null : Number(r.last_pulled_at),
          pull_count: Number(r.pull_count ?? 0),
          pinned: Boolean(r.pinned),
        };
      }),
    };
  }

  /**
   * Size of each manifest: its blobs (config and layers); for an index, the blobs of
   * every child manifest known locally (nested indexes are followed, each digest counted once).
   */
  async manifestSizes(repoId: number, digests: string[]): Promise<Map<string, number>> {
    const children = new Map<string, { blobs: Map<string, number>; manifests: string[] }>();
    let frontier = [...new Set(digests)];
    for (let depth = 0; depth < 4 && frontier.length > 0; depth++) {
      const next: string[] = [];
      for (const batch of chunks(frontier)) {
        const refs = (await this.db('manifest_refs as r')
          .leftJoin('blobs as b', 'b.digest', 'r.child_digest')
          .where('r.repo_id', repoId)
          .whereIn('r.manifest_digest', batch)
          .select('r.manifest_digest', 'r.child_digest', 'r.child_kind', 'b.size')) as Array<Record<string, unknown>>;
        for (const digest of batch) children.set(digest, { blobs: new Map(), manifests: [] });
        for (const ref of refs) {
          const entry = children.get(String(ref.manifest_digest));
          if (!entry) continue;
          if (ref.child_kind === 'manifest') {
            entry.manifests.push(String(ref.child_digest));
            if (!children.has(String(ref.child_digest))) next.push(String(ref.child_digest));
          } else {
            entry.blobs.set(String(ref.child_digest), Number(ref.size ?? 0));
          }
        }
      }
      frontier = [...new Set(next)].filter((d) => !children.has(d));
    }
    const sizes = new Map<string, number>();
    for (const digest of digests) {
      const blobs = new Map<string, number>();
      const seen = new Set<string>();
      const stack = [digest];
      while (stack.length > 0) {
        const current = stack.pop() as string;
        if (seen.has(current)) continue;
        seen.add(current);
        const entry = children.get(current);
        if (!entry) continue;
        for (const [blob, size] of entry.blobs) blobs.set(blob, size);
        stack.push(...entry.manifests);
      }
      let total = 0;
      for (const size of blobs.values()) total += size;
      sizes.set(digest, total);
    }
    return sizes;
  }

  async summaries(repoIds: number[]): Promise<Map<number, RepositorySummary>> {
    const result = new Map<number, RepositorySummary>();
    for (const id of repoIds) result.set(id, { size: 0, last_modified: null, tag_count: 0 });
    for (const batch of chunks(repoIds)) {
      const tagRows = (await this.db('tags').whereIn('repo_id', batch).groupBy('repo_id').select('repo_id').max({ last: 'updated_at' }).count({ n: '*' })) as Array<Record<string, unknown>>;
      for (const r of tagRows) {
        const summary = result.get(Number(r.repo_id));
        if (summary) {
          summary.last_modified = r.last === null || r.last === undefined ? null : Number(r.last);
          summary.tag_count = Number(r.n ?? 0);
        }
      }
      const distinctBlobs = this.db('manifest_refs').whereIn('repo_id', batch).where('child_kind', 'blob').distinct('repo_id', 'child_digest').as('d');
      const sizeRows = (await this.db
        .from(distinctBlobs)
        .join('blobs as b', 'b.digest', 'd.child_digest')
        .groupBy('d.repo_id')
        .select('d.repo_id')
        .sum({ total: 'b.size' })) as Array<Record<string, unknown>>;
      for (const r of sizeRows) {
        const summary = result.get(Number(r.repo_id));
        if (summary) summary.size = Number(r.total ?? 0);
      }
    }
    return result;
  }
}
