/**
 * The fill lease over a real Redis, as replicas hold it: a holder whose
 * process stalls keeps it (or takes it back at once when the stall outlasted
 * it and nobody took it meanwhile); a holder that stops running loses it, and
 * another replica takes it.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Digest } from '@entrepot/registry-core';
import { createLogger } from '../../../registry-core/src/logging/logger';
import { RedisCoordinator } from '../../../registry-core/src/coordination/redis-coordinator';
import { acquireFillLease, FILL_LEASE_MS, fillLeaseName, type HeldFillLease } from '../../src/peer/fill-lease';

const REDIS_URL = process.env.ENTREPOT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger({ silent: true });

/** Blocks this process's event loop, as a replica starved of CPU is. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

describe('fill lease', () => {
  let prefix: string;
  let owner: RedisCoordinator;
  let other: RedisCoordinator;
  let held: HeldFillLease | null = null;
  let ownerClosed = false;
  const digest = `sha256:${'ab'.repeat(32)}` as Digest;

  beforeEach(async () => {
    prefix = `entrepot-test-${randomBytes(4).toString('hex')}`;
    owner = new RedisCoordinator(REDIS_URL, prefix, logger);
    ownerClosed = false;
    other = new RedisCoordinator(REDIS_URL, prefix, logger);
    // Both connected before the test starts.
    await other.isHeld('warm-up');
    await owner.isHeld('warm-up');
  });

  afterEach(async () => {
    held?.release();
    held = null;
    if (!ownerClosed) await owner.close();
    await other.close();
  });

  it('stays with a holder whose event loop stalled longer than the lease, when nobody took it meanwhile', async () => {
    held = await acquireFillLease(owner, digest, 'http://owner:1', logger);
    expect(held).not.toBeNull();
    stall(FILL_LEASE_MS + 1000);
    // The holder's renewal comes first once it runs again.
    await sleep(1500);
    expect(await other.tryAcquire(fillLeaseName(digest), FILL_LEASE_MS, 'http://other:1')).toBeNull();
    expect(await other.holderOf(fillLeaseName(digest))).toBe('http://owner:1');
  }, 30_000);

  it('stays with a holder through stalls shorter than the lease', async () => {
    held = await acquireFillLease(owner, digest, 'http://owner:1', logger);
    for (let i = 0; i < 3; i++) {
      stall(FILL_LEASE_MS - 1500);
      await sleep(100);
      expect(await other.holderOf(fillLeaseName(digest))).toBe('http://owner:1');
    }
  }, 60_000);

  it('goes to another replica once its holder stopped running', async () => {
    held = await acquireFillLease(owner, digest, 'http://owner:1', logger);
    // The holder's connection to Redis is gone, as with a killed process: nothing renews the lease.
    await owner.close();
    ownerClosed = true;
    let taken: HeldFillLease | null = null;
    for (let i = 0; i < 200 && !taken; i++) {
      taken = await acquireFillLease(other, digest, 'http://other:1', logger);
      if (!taken) await sleep(100);
    }
    expect(taken).not.toBeNull();
    expect(await other.holderOf(fillLeaseName(digest))).toBe('http://other:1');
    taken?.release();
  }, 60_000);
});
