import { setTimeout as sleep } from 'node:timers/promises';
import type { Locks } from '../core-types';

/** Longer than a revalidation takes (a HEAD, at most a manifest GET, each bounded by the upstream timeouts). */
const LEASE_MS = 15_000;
/** How often a replica waiting for another's revalidation looks whether it ended. */
const LOOK_AGAIN_MS = 20;

/**
 * Single flight of one tag's revalidation across replicas (the Coalescer does
 * it within one): the replica that takes the lease `revalidate:<key>` asks the
 * upstream; the others wait until it lets the lease go and read its outcome
 * from the database (the tag check and the manifest it stored). When that
 * outcome does not answer them (the revalidation failed, or its holder died
 * and the lease lapsed), they revalidate themselves.
 */
export class SharedRevalidation {
  constructor(private readonly coordinator: Pick<Locks, 'tryAcquire' | 'isHeld'>) {}

  /**
   * `work` under the lease of `key`, unless `doneElsewhere()` (read once the
   * lease is had, or once another replica let it go) answers instead: a
   * replica may finish a revalidation between this one's look at the tag
   * and its taking the lease.
   */
  async run<T>(key: string, work: () => Promise<T>, doneElsewhere: () => Promise<T | null>): Promise<T> {
    const name = `revalidate:${key}`;
    const lease = await this.coordinator.tryAcquire(name, LEASE_MS).catch(() => null);
    if (lease) {
      try {
        return (await doneElsewhere()) ?? (await work());
      } finally {
        void lease.release().catch(() => undefined);
      }
    }
    const deadline = Date.now() + LEASE_MS;
    while (Date.now() < deadline && (await this.coordinator.isHeld(name).catch(() => false))) await sleep(LOOK_AGAIN_MS);
    return (await doneElsewhere()) ?? work();
  }
}
