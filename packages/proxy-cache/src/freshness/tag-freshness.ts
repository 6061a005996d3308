import type { Clock, Db, Digest } from '@entrepot/registry-core';

export interface TagCheck {
  upstreamDigest: Digest;
  checkedAt: number;
}

/** When each cached tag was last confirmed against the upstream, and to which digest. */
export class TagFreshness {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async get(repoId: number, tag: string): Promise<TagCheck | null> {
    const row = await this.db('proxy_cache_tags').where({ repo_id: repoId, tag }).first();
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
