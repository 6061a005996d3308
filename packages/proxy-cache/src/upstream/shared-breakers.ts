import { randomUUID } from 'node:crypto';
import type { ChangeNotices, Locks, Lease, Logger } from '../core-types';
import type { BreakerStateChange, CircuitBreaker } from './circuit-breaker';

/** Change-notice topic of breaker decisions. */
const TOPIC = 'proxy-cache:breaker';

/**
 * Makes the circuit breakers of one upstream act as one across replicas:
 * - a breaker that opens (its replica saw the failures) opens the others, which
 *   then fail fast without contacting the upstream;
 * - when the cooldown has passed, one replica probes: the right to probe is a
 *   lease (`breaker-probe:<origin>`), so N replicas make one probe, not N;
 * - the probe's outcome reaches every replica: success closes all breakers,
 *   failure opens them for another cooldown.
 * Decisions travel as change notices (best effort: a replica that missed one
 * decides from its own calls, as it would alone).
 */
export class SharedBreakers {
  private readonly replica = randomUUID();
  private readonly breakers = new Map<string, CircuitBreaker>();
  /** Per origin: the probe lease this replica holds (until its expiry), or the request for it under way. */
  private readonly probes = new Map<string, { lease: Lease; until: number } | 'asking'>();

  constructor(
    private readonly notices: ChangeNotices,
    private readonly coordinator: Pick<Locks, 'tryAcquire'>,
    private readonly logger: Logger,
    private readonly cooldownMs: number,
  ) {
    notices.subscribe(TOPIC, (key) => {
      if (key !== null) this.heard(key);
    });
  }

  /** Shares `breaker`, the breaker of `origin` on this replica. */
  attach(origin: string, breaker: CircuitBreaker): void {
    this.breakers.set(origin, breaker);
  }

  /** For the breaker's `mayProbe`: true when this replica holds the probe lease; else asks for it and fails this call fast. */
  mayProbe(origin: string): boolean {
    const held = this.probes.get(origin);
    if (held && held !== 'asking') {
      // The lease lapses in Redis after one cooldown: past that, another replica may hold it.
      if (Date.now() < held.until) return true;
      this.probes.delete(origin);
    } else if (held === 'asking') return false;
    this.probes.set(origin, 'asking');
    const asked = Date.now();
    this.coordinator.tryAcquire(`breaker-probe:${origin}`, this.cooldownMs).then(
      (lease) => {
        if (lease) this.probes.set(origin, { lease, until: asked + this.cooldownMs });
        else this.probes.delete(origin);
      },
      () => this.probes.delete(origin),
    );
    return false;
  }

  /** For the breaker's `onStateChange`: tells the other replicas what this one decided. */
  changed(origin: string, change: BreakerStateChange, breaker: CircuitBreaker): void {
    if (change.to === 'half-open') return;
    this.releaseProbe(origin);
    if (change.followed) return;
    const key = change.to === 'open' ? `open ${this.replica} ${origin} ${breaker.openForMs()}` : `closed ${this.replica} ${origin}`;
    void this.notices.publish(TOPIC, key);
  }

  private heard(key: string): void {
    const [state, replica, origin, openFor] = key.split(' ');
    if (replica === this.replica) return;
    const breaker = this.breakers.get(origin ?? '');
    if (!breaker || (state !== 'open' && state !== 'closed')) return;
    if (state === 'closed') breaker.follow('closed');
    else breaker.follow('open', Number(openFor) || 0);
    this.logger.info('upstream circuit breaker follows another replica', { upstream: breaker.host, state });
  }

  private releaseProbe(origin: string): void {
    const held = this.probes.get(origin);
    if (!held || held === 'asking') return;
    this.probes.delete(origin);
    void held.lease.release().catch(() => undefined);
  }
}
