import type { Clock, Db, Digest, PointRead, PointReads } from '@entrepot/registry-core';

export interface TagCheck {
  upstreamDigest: Digest;
  checkedAt: number;
}

/** When each cached tag was last confirmed against the upstream, and to which digest. */
export class TagFreshness {
  private readonly checkOf: PointRead;

  constructor(
    private readonly db: Db,
    reads: PointReads,
    private readonly clock: Clock,
  ) {
    this.checkOf = reads.statement('SELECT upstream_digest, checked_at FROM proxy_cache_tags WHERE repo_id = ? AND tag = ? LIMIT 1');
  }

  async get(repoId: number, tag: string): Promise<TagCheck | null> {
    const row = await this.checkOf.first([repoId, tag]);
    return row ? { upstreamDigest: row.upstream_digest as Digest, checkedAt: Number(row.checked_at) } : null;
  }

  async mark(repoId: number, tag: string, digest: Digest): Promise<void> {
    const now = this.clock.now();
    await this.db('proxy_cache_tags')
      .insert({ repo_id: repoId, tag, upstream_digest: digest, checked_at: now })
      .onConflict(['repo_id', 'tag'])
      .merge({ upstream_digest: digest, checked_at: now });
  }

  async forget(repoId: number, tag: string): Promise<void> {
    await this.db('proxy_cache_tags').where({ repo_id: repoId, tag }).delete();
  }
}
