import type { Digest } from '@entrepot/registry-core';
import type { Lease, Locks, Logger } from '../core-types';

/**
 * How long a fill lease lasts without renewal. Short, so that the death of its
 * holder hands the fill over within seconds.
 */
export const FILL_LEASE_MS = 6000;
/**
 * Renewed every second, each renewal extending the lease to a full
 * FILL_LEASE_MS: only a process that stops running for about five seconds (or
 * dies) lets it lapse. Renewals run on a timer of their own, never behind the
 * fill's byte handling.
 */
const RENEW_EVERY_MS = 1000;

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
export async function acquireFillLease(coordinator: Pick<Locks, 'tryAcquire'>, digest: Digest, holder: string, logger: Logger): Promise<HeldFillLease | null> {
  const name = fillLeaseName(digest);
  const first = await coordinator.tryAcquire(name, FILL_LEASE_MS, holder);
  if (!first) return null;
  return new RenewedLease(coordinator, name, holder, first, digest, logger);
}

class RenewedLease implements HeldFillLease {
  private readonly timer: NodeJS.Timeout;
  private renewing = false;
  private released = false;
  private lost = false;

  constructor(
    private readonly coordinator: Pick<Locks, 'tryAcquire'>,
    private readonly name: string,
    private readonly holder: string,
    private lease: Lease,
    private readonly digest: Digest,
    private readonly logger: Logger,
  ) {
    this.timer = setInterval(() => void this.renew(), RENEW_EVERY_MS);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    // One renewal at a time: after a stall, the late ones are not sent in a burst.
    if (this.renewing || this.released || this.lost) return;
    this.renewing = true;
    try {
      // A renewal that failed (Redis slow to answer a stalled process) says nothing: the next one tells.
      if (await this.lease.renew().catch(() => true)) return;
      // Lapsed while this process stalled: nobody else took it yet, so it is taken back at once.
      const again = await this.coordinator.tryAcquire(this.name, FILL_LEASE_MS, this.holder).catch(() => null);
      if (this.released) {
        void again?.release().catch(() => undefined);
        return;
      }
      if (again) {
        this.lease = again;
        this.logger.warn('fill lease lapsed while this replica stalled; taken back', { digest: this.digest });
        return;
      }
      this.lost = true;
      clearInterval(this.timer);
      // Another replica took the fill over: the upstream then sees a second download.
      this.logger.warn('fill lease lost while downloading', { digest: this.digest });
    } finally {
      this.renewing = false;
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    void this.lease.release().catch(() => undefined);
  }
}
