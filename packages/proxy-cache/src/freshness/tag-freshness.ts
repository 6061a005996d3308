import type { CorePorts, Digest, Memo } from '@entrepot/registry-core';
import type { Clock, Db, PointRead, PointReads } from '../core-types';

export interface TagCheck {
  upstreamDigest: Digest;
  checkedAt: number;
}

/**
 * How long a check stays in memory. Checks only move forward in time, so a kept
 * one is at worst older than the truth: it is trusted while it says the tag is
 * fresh and read again once it says otherwise (another replica may have
 * confirmed the tag since), which costs no extra revalidation. A tag removed
 * elsewhere is already gone from the tag lookup that comes first.
 */
const CHECK_TTL_MS = 5 * 60_000;

/** When each cached tag was last confirmed against the upstream, and to which digest. */
export class TagFreshness {
  private readonly checkOf: PointRead;
  /** Every pull by tag asks this, so checks are kept in memory (bounded). */
  private readonly recent: Memo<string, TagCheck | null>;

  constructor(
    private readonly db: Db,
    reads: PointReads,
    private readonly clock: Clock,
    memo: CorePorts['memo'],
    private readonly usage: Pick<CorePorts['usage'], 'tagPullCounts'>,
  ) {
    this.checkOf = reads.statement('SELECT upstream_digest, checked_at FROM proxy_cache_tags WHERE repo_id = ? AND tag = ? LIMIT 1');
    this.recent = memo({ ttlMs: CHECK_TTL_MS, maxEntries: 50_000 });
  }

  /**
   * The last check of `tag`, from memory while it is younger than `freshForMs`;
   * an older one, or none, is read from the database.
   */
  async lastCheck(repoId: number, tag: string, freshForMs: number): Promise<TagCheck | null> {
    const fresh = (check: TagCheck | null) => check !== null && this.clock.now() - check.checkedAt < freshForMs;
    return this.recent.getOrLoad(
      keyOf(repoId, tag),
      async () => {
        const row = await this.checkOf.first([repoId, tag]);
        return row ? { upstreamDigest: row.upstream_digest as Digest, checkedAt: Number(row.checked_at) } : null;
      },
      { reuse: fresh },
    );
  }

  async mark(repoId: number, tag: string, digest: Digest): Promise<void> {
    const now = this.clock.now();
    // The pull count at the check: pulls since then tell a hot tag (see the refresh job).
    const pulls = (await this.usage.tagPullCounts(repoId, [tag])).get(tag) ?? 0;
    await this.db('proxy_cache_tags')
      .insert({ repo_id: repoId, tag, upstream_digest: digest, checked_at: now, pulls_at_check: pulls })
      .onConflict(['repo_id', 'tag'])
      .merge({ upstream_digest: digest, checked_at: now, pulls_at_check: pulls });
    this.recent.set(keyOf(repoId, tag), { upstreamDigest: digest, checkedAt: now });
  }

  async forget(repoId: number, tag: string): Promise<void> {
    await this.forgetAll([{ repoId, tag }]);
  }

  /** Forgets the checks of several tags with one statement (an eviction batch). */
  async forgetAll(tags: Array<{ repoId: number; tag: string }>): Promise<void> {
    if (tags.length === 0) return;
    await this.db('proxy_cache_tags')
      .where((q) => {
        for (const { repoId, tag } of tags) q.orWhere({ repo_id: repoId, tag });
      })
      .delete();
    for (const { repoId, tag } of tags) this.recent.delete(keyOf(repoId, tag));
  }
}

function keyOf(repoId: number, tag: string): string {
  return `${repoId}/${tag}`;
}
