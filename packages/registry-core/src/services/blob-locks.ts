import { withLock, type Coordinator, type Lease } from '../coordination/coordinator';
import { RegistryError } from '../errors/registry-error';
import type { Digest } from '../oci/digest';

/** A writer waits this long for another writer of the same digest (a large layer pushed twice at once). */
const WRITER_WAIT_MS = 60 * 60_000;
/** Collecting one blob is a row delete and an object delete. */
const COLLECTOR_TTL_MS = 60_000;

/**
 * Keeps garbage collection and blob commits apart, per digest and across
 * replicas. Placing a blob and recording its first reference happen under the
 * digest's lock, and so does collecting it. A collector that finds the lock
 * held skips the digest. Without it, a push of content that was just released
 * could land between the collector's row delete and its object delete, and the
 * repository would reference a blob that is gone.
 */
export class BlobLocks {
  constructor(private readonly coordinator: Coordinator) {}

  /**
   * Runs `work` while no collector can take `digest`. When the lock cannot be
   * had (another writer held it too long, or the coordinator is down) the
   * client is told to retry rather than shown an internal error.
   */
  async whileCommitting<T>(digest: Digest, work: () => Promise<T>, waitMs = WRITER_WAIT_MS): Promise<T> {
    let locked = false;
    try {
      return await withLock(this.coordinator, lockName(digest), () => ((locked = true), work()), { waitMs });
    } catch (err) {
      if (locked) throw err;
      throw new RegistryError('UNAVAILABLE', `${digest} is being stored by another request; retry shortly`, { headers: { 'Retry-After': '10' }, cause: err });
    }
  }

  /** The digest's lock for a collector, or null when a writer holds it. */
  tryForCollection(digest: Digest): Promise<Lease | null> {
    return this.coordinator.tryAcquire(lockName(digest), COLLECTOR_TTL_MS);
  }
}

function lockName(digest: Digest): string {
  return `blob:${digest}`;
}
