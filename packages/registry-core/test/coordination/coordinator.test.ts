import { randomBytes } from 'node:crypto';
import { withLock, type Coordinator } from '../../src/coordination/coordinator';
import { InProcessCoordinator } from '../../src/coordination/in-process-coordinator';
import { RedisCoordinator } from '../../src/coordination/redis-coordinator';

const REDIS_URL = process.env.ENTREPOT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each([
  ['in-process', () => new InProcessCoordinator()],
  ['redis', () => new RedisCoordinator(REDIS_URL, `entrepot-test-${randomBytes(4).toString('hex')}`)],
])('%s coordinator', (_name, make: () => Coordinator) => {
  let coordinator: Coordinator;

  beforeEach(() => {
    coordinator = make();
  });
  afterEach(() => coordinator.close());

  it('gives a name to one holder at a time', async () => {
    const first = await coordinator.tryAcquire('x', 5000);
    expect(first).not.toBeNull();
    expect(await coordinator.tryAcquire('x', 5000)).toBeNull();
    expect(await coordinator.isHeld('x')).toBe(true);
    await first!.release();
    await first!.release();
    expect(await coordinator.isHeld('x')).toBe(false);
    expect(await coordinator.tryAcquire('x', 5000)).not.toBeNull();
  });

  it('lets a lease expire unless renewed, and a lost lease cannot be renewed or released by its old holder', async () => {
    // Margins of about a second either way: a loaded machine may stall this process for tens of milliseconds.
    const lease = await coordinator.tryAcquire('y', 1500);
    await sleep(400);
    expect(await lease!.renew()).toBe(true);
    await sleep(500);
    expect(await coordinator.isHeld('y')).toBe(true);
    await sleep(2000);
    expect(await coordinator.isHeld('y')).toBe(false);
    const next = await coordinator.tryAcquire('y', 5000);
    expect(next).not.toBeNull();
    expect(await lease!.renew()).toBe(false);
    await lease!.release();
    expect(await coordinator.isHeld('y')).toBe(true);
  });

  it('tells who holds a name by the note the holder left', async () => {
    expect(await coordinator.holderOf('h')).toBeNull();
    const lease = await coordinator.tryAcquire('h', 5000, 'http://10.0.0.7:9001');
    expect(await coordinator.holderOf('h')).toBe('http://10.0.0.7:9001');
    expect(await lease!.renew()).toBe(true);
    await lease!.release();
    expect(await coordinator.holderOf('h')).toBeNull();
    const anonymous = await coordinator.tryAcquire('h', 5000);
    expect(await coordinator.holderOf('h')).toBe('');
    await anonymous!.release();
  });

  it('serializes work under withLock', async () => {
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        withLock(coordinator, 'z', async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await sleep(10);
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(1);
  });
});
