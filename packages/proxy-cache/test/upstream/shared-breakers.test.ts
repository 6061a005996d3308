/**
 * Two replicas' breakers of one upstream, sharing decisions through a real
 * Redis (change notices and the probe lease), as SharedBreakers wires them in
 * scale-out: one replica's failures open both; after the cooldown one probe
 * goes out, not two; its outcome reaches both.
 */
import { randomBytes } from 'node:crypto';
import { createLogger } from '../../../registry-core/src/logging/logger';
import { systemClock } from '../../../registry-core/src/services/clock';
import { RedisChangeNotices } from '../../../registry-core/src/coordination/redis-change-notices';
import { RedisCoordinator } from '../../../registry-core/src/coordination/redis-coordinator';
import { CircuitBreaker, type BreakerPermit } from '../../src/upstream/circuit-breaker';
import { SharedBreakers } from '../../src/upstream/shared-breakers';
import { upstreamFailureOf } from '../../src/upstream/upstream-failure';

const REDIS_URL = process.env.ENTREPOT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ORIGIN = 'https://registry.example';
const COOLDOWN_MS = 1500;
const logger = createLogger({ silent: true });

interface TestReplica {
  breaker: CircuitBreaker;
  notices: RedisChangeNotices;
  /** Warm-up notices heard from the other replica. */
  heard: number;
  close(): Promise<void>;
}

async function startReplica(prefix: string): Promise<TestReplica> {
  const notices = new RedisChangeNotices(REDIS_URL, prefix, logger);
  const coordinator = new RedisCoordinator(REDIS_URL, prefix, logger);
  const shared = new SharedBreakers(notices, coordinator, logger, COOLDOWN_MS);
  const breaker: CircuitBreaker = new CircuitBreaker({
    host: 'registry.example',
    clock: systemClock,
    failureThreshold: 2,
    cooldownMs: COOLDOWN_MS,
    onStateChange: (change) => shared.changed(ORIGIN, change, breaker),
    mayProbe: () => shared.mayProbe(ORIGIN),
  });
  shared.attach(ORIGIN, breaker);
  const replica: TestReplica = {
    breaker,
    notices,
    heard: 0,
    async close() {
      await notices.close();
      await coordinator.close();
    },
  };
  notices.subscribe('warm-up', (key) => {
    if (key !== prefixOf(replica)) replica.heard++;
  });
  return replica;
}

const names = new WeakMap<TestReplica, string>();
function prefixOf(replica: TestReplica): string {
  let name = names.get(replica);
  if (!name) names.set(replica, (name = randomBytes(4).toString('hex')));
  return name;
}

/** Waits until each replica hears the other's notices (both connections of both are up). */
async function connected(replicas: TestReplica[]): Promise<void> {
  while (!replicas.every((r) => r.heard > 0)) {
    for (const r of replicas) await r.notices.publish('warm-up', prefixOf(r));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

function tryAcquire(breaker: CircuitBreaker): BreakerPermit | 'refused' {
  try {
    return breaker.acquire();
  } catch (err) {
    expect(upstreamFailureOf(err)?.kind).toBe('circuit-open');
    return 'refused';
  }
}

/** Both replicas keep asking (each as its own traffic would) until one is let through; returns who was. */
async function firstProbe(replicas: TestReplica[]): Promise<{ winner: number; permit: BreakerPermit; refusedOthers: number }> {
  let refusedOthers = 0;
  for (;;) {
    for (let i = 0; i < replicas.length; i++) {
      const permit = tryAcquire(replicas[i].breaker);
      if (permit !== 'refused') {
        // The other replica, asked while this probe is out, is refused.
        for (let j = 0; j < replicas.length; j++) if (j !== i && tryAcquire(replicas[j].breaker) === 'refused') refusedOthers++;
        return { winner: i, permit, refusedOthers };
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('circuit breakers shared across replicas', () => {
  let replicas: TestReplica[];

  beforeEach(async () => {
    const prefix = `entrepot-test-breakers-${randomBytes(4).toString('hex')}`;
    replicas = [await startReplica(prefix), await startReplica(prefix)];
    await connected(replicas);
  });

  afterEach(async () => {
    for (const r of replicas) await r.close();
  });

  it("opens every replica's breaker when one replica sees the upstream fail", async () => {
    const [a, b] = replicas;
    a.breaker.recordFailure();
    expect(b.breaker.state()).toBe('closed');
    a.breaker.recordFailure();
    expect(a.breaker.state()).toBe('open');
    expect(await waitUntil(() => b.breaker.state() === 'open')).toBe(true);
    // b fails fast without calling the upstream.
    expect(tryAcquire(b.breaker)).toBe('refused');
  });

  it('lets one probe through after the cooldown, and its success closes both', async () => {
    const [a, b] = replicas;
    a.breaker.recordFailure();
    a.breaker.recordFailure();
    expect(await waitUntil(() => b.breaker.state() === 'open')).toBe(true);
    const probe = await firstProbe(replicas);
    expect(probe.refusedOthers).toBe(1);
    probe.permit.success();
    const other = replicas[1 - probe.winner].breaker;
    expect(await waitUntil(() => other.state() === 'closed')).toBe(true);
    expect(tryAcquire(other)).not.toBe('refused');
  });

  it("reopens both when the probe fails, and the next cooldown's probe may come from either replica", async () => {
    const [a, b] = replicas;
    a.breaker.recordFailure();
    a.breaker.recordFailure();
    expect(await waitUntil(() => b.breaker.state() === 'open')).toBe(true);
    const first = await firstProbe(replicas);
    first.permit.failure();
    const other = replicas[1 - first.winner].breaker;
    expect(replicas[first.winner].breaker.state()).toBe('open');
    expect(await waitUntil(() => other.state() === 'open')).toBe(true);
    const second = await firstProbe(replicas);
    expect(second.refusedOthers).toBe(1);
    second.permit.success();
    expect(await waitUntil(() => a.breaker.state() === 'closed' && b.breaker.state() === 'closed')).toBe(true);
  });
});
