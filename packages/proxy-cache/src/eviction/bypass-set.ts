import type { Clock } from '../core-types';

const TTL_MS = 15 * 60 * 1000;

/**
 * Blobs of images served without being kept (larger than the organization's
 * whole quota): their fills stream to the client and are not linked, so
 * garbage collection removes them.
 */
export class BypassSet {
  private readonly entries = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  add(orgId: number, digests: Iterable<string>): void {
    const expires = this.clock.now() + TTL_MS;
    for (const digest of digests) this.entries.set(`${orgId}|${digest}`, expires);
    this.prune();
  }

  has(orgId: number, digest: string): boolean {
    const expires = this.entries.get(`${orgId}|${digest}`);
    return expires !== undefined && expires > this.clock.now();
  }

  private prune(): void {
    const now = this.clock.now();
    for (const [key, expires] of this.entries) if (expires <= now) this.entries.delete(key);
  }
}
