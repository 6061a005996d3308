import { type Digest, type oci } from '@entrepot/registry-core';
import type { Clock, Db } from '../core-types';

/** An upstream's referrers of one subject, as last fetched. */
export interface ReferrerList {
  descriptors: oci.ReferrerDescriptor[];
  checkedAt: number;
}

/**
 * The referrer lists a cache organization fetched from its upstream, per
 * repository and subject, with when each was last confirmed: the staleness
 * period and stale-if-error window apply to them as to tags. Kept in the
 * database so that every replica answers from the same list.
 */
export class ReferrerLists {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async get(repoId: number, subject: Digest): Promise<ReferrerList | null> {
    const row = await this.db('proxy_cache_referrers').where({ repo_id: repoId, subject_digest: subject }).first('descriptors', 'checked_at');
    if (!row) return null;
    return { descriptors: parseDescriptors(String(row.descriptors)), checkedAt: Number(row.checked_at) };
  }

  async save(repoId: number, subject: Digest, descriptors: oci.ReferrerDescriptor[]): Promise<void> {
    const now = this.clock.now();
    const json = JSON.stringify(descriptors);
    await this.db('proxy_cache_referrers')
      .insert({ repo_id: repoId, subject_digest: subject, descriptors: json, checked_at: now })
      .onConflict(['repo_id', 'subject_digest'])
      .merge({ descriptors: json, checked_at: now });
  }

  /** Forgets the lists of `subjects` (their images were evicted or flushed), or of the whole repository. */
  async forget(repoId: number, subjects?: readonly string[]): Promise<void> {
    let query = this.db('proxy_cache_referrers').where({ repo_id: repoId });
    if (subjects) {
      if (subjects.length === 0) return;
      query = query.whereIn('subject_digest', [...subjects]);
    }
    await query.delete();
  }
}

/** Rows are written by `save` only; anything else in them is dropped rather than served. */
function parseDescriptors(json: string): oci.ReferrerDescriptor[] {
  try {
    const list: unknown = JSON.parse(json);
    return Array.isArray(list) ? list.filter(isDescriptor) : [];
  } catch {
    return [];
  }
}

function isDescriptor(value: unknown): value is oci.ReferrerDescriptor {
  if (typeof value !== 'object' || value === null) return false;
  const d = value as Record<string, unknown>;
  return typeof d.mediaType === 'string' && typeof d.digest === 'string' && typeof d.size === 'number';
}
