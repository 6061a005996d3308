import { yieldToRequests, type Db } from '../db/database';
import type { Logger } from '../logging/logger';
import type { Digest } from '../oci/digest';
import type { Storage } from '../storage/blob-store';
import type { BlobLocks } from './blob-locks';
import type { Clock } from './clock';

export const GC_JOB = 'storage.gc';

const BATCH = 500;

/**
 * Deletes blobs nothing references any more: no repository links them, no
 * manifest references them and no manifest is stored under their digest.
 * A blob is only collected once it has been unreferenced for the grace period,
 * so downloads already streaming it finish. The database row goes first, then
 * the object, under the digest's lock so that no push or fill commits the same
 * digest in between (a digest a writer holds is left for the next pass). An
 * interrupted run is simply run again.
 */
export class GarbageCollector {
  constructor(
    private readonly db: Db,
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly locks: BlobLocks,
    private readonly graceMs: number,
  ) {}

  /** Stamps blobs that may have just lost their last reference (eviction, flush, deletes). */
  async markReleased(digests: Iterable<string>): Promise<void> {
    const list = [...new Set(digests)];
    for (let i = 0; i < list.length; i += BATCH) {
      await this.db('blobs').whereIn('digest', list.slice(i, i + BATCH)).update({ released_at: this.clock.now() });
    }
  }

  /** Blobs rows with no reference (no table alias: the same query serves DELETE on MariaDB and SQLite). */
  private unreferenced() {
    const db = this.db;
    return db('blobs')
      .whereNotExists(db('repo_blobs').select(db.raw('1')).whereRaw('repo_blobs.digest = blobs.digest'))
      .whereNotExists(db('manifest_refs').select(db.raw('1')).whereRaw('manifest_refs.child_digest = blobs.digest'))
      .whereNotExists(db('manifests').select(db.raw('1')).whereRaw('manifests.digest = blobs.digest'));
  }

  /** One collection pass; returns what was deleted. */
  async collect(): Promise<{ blobs: number; bytes: number }> {
    const cutoff = this.clock.now() - this.graceMs;
    let blobs = 0;
    let bytes = 0;
    let after = '';
    for (;;) {
      const candidates = (await this.unreferenced()
        .where('blobs.digest', '>', after)
        .where(this.db.raw('COALESCE(blobs.released_at, blobs.created_at)'), '<=', cutoff)
        .orderBy('blobs.digest')
        .limit(BATCH)
        .select('blobs.digest', 'blobs.size')) as Array<{ digest: Digest; size: number }>;
      if (candidates.length === 0) break;
      for (const candidate of candidates) {
        after = candidate.digest;
        if (!(await this.collectOne(candidate.digest, cutoff))) continue;
        blobs++;
        bytes += Number(candidate.size);
        await yieldToRequests();
      }
    }
    if (blobs > 0) this.logger.info('garbage collection removed blobs', { blobs, bytes });
    return { blobs, bytes };
  }

  private async collectOne(digest: Digest, cutoff: number): Promise<boolean> {
    const lease = await this.locks.tryForCollection(digest);
    if (!lease) return false;
    try {
      // Re-checked inside the delete: a reference added meanwhile keeps the blob.
      const deleted = await this.unreferenced()
        .where('blobs.digest', digest)
        .where(this.db.raw('COALESCE(blobs.released_at, blobs.created_at)'), '<=', cutoff)
        .delete();
      if (deleted === 0) return false;
      await this.storage.blobs.delete(digest);
      return true;
    } finally {
      await lease.release();
    }
  }
}
