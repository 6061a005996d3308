import { type Digest } from '@entrepot/registry-core';
import type { Locks, Logger } from '../core-types';

/**
 * How long a fill lease lasts without renewal. Short, so that the death of its
 * holder hands the fill over within seconds; renewed every quarter of it, so a
 * replica whose event loop stalls for a few seconds still keeps it.
 */
export const FILL_LEASE_MS = 6000;
const RENEW_EVERY_MS = FILL_LEASE_MS / 4;

export function fillLeaseName(digest: Digest): string {
  return `fill:${digest}`;
}

/** A fill lease this replica holds, renewed in the background until released. */
export interface HeldFillLease {
  release(): void;
}

/**
 * Takes the fill lease of `digest` for this replica, noting `holder` (its peer
 * URL, or '' without a peer listener) so that others know where to read the
 * fill from. Null when another replica holds it.
 */
export async function acquireFillLease(coordinator: Locks, digest: Digest, holder: string, logger: Logger): Promise<HeldFillLease | null> {
  const lease = await coordinator.tryAcquire(fillLeaseName(digest), FILL_LEASE_MS, holder);
  if (!lease) return null;
  let lost = false;
  const renewal = setInterval(() => {
    void lease.renew().then(
      (kept) => {
        if (kept || lost) return;
        lost = true;
        // Another replica may take the fill over: the upstream then sees a second download.
        logger.warn('fill lease lost while downloading', { digest });
      },
      () => undefined,
    );
  }, RENEW_EVERY_MS);
  renewal.unref();
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      clearInterval(renewal);
      void lease.release().catch(() => undefined);
    },
  };
}
