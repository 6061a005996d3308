/**
 * A per-upstream circuit breaker, so that a dead upstream costs callers an
 * immediate error instead of a timeout each, and is not buried under retries.
 *
 * - closed: calls go through; `failureThreshold` consecutive outage failures
 *   (network, timeout, 5xx — see `isOutage`) within `windowMs` open it;
 * - open: calls fail at once with UNAVAILABLE `upstream <host> is unavailable
 *   (circuit open)` and a Retry-After of the remaining cooldown;
 * - half-open (after `cooldownMs`): one probe call goes through, the others
 *   still fail at once; the probe's success closes the circuit, its failure
 *   opens it for another cooldown.
 *
 * Any answer that shows the upstream is up (2xx, 3xx, 404, 401/403) counts as
 * success; 429 and caller cancellations count as neither. Transitions are
 * computed from the injected clock when the breaker is consulted: no timers.
 */
import type { Clock } from '../core-types';
import { circuitOpen, isOutage, type UpstreamFailure } from './upstream-failure';

/** Outcomes that say nothing about the upstream's health (an unclassified error is a local bug). */
const NEUTRAL: ReadonlySet<UpstreamFailure['kind']> = new Set(['ratelimit', 'cancelled', 'circuit-open', 'loop']);

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerStateChange {
  host: string;
  from: BreakerState;
  to: BreakerState;
  /** Consecutive failures counted when the circuit opened. */
  failures: number;
  /** True when another replica's breaker decided it (`follow`), not this one's calls. */
  followed?: boolean;
}

export interface CircuitBreakerOptions {
  /** host[:port] of the upstream, for messages and metrics. */
  host: string;
  clock: Clock;
  /** Consecutive failures that open the circuit (default 5). */
  failureThreshold?: number;
  /** The failures must fall within this window, measured from the first (default 60 s). */
  windowMs?: number;
  /** Time the circuit stays open before a probe is let through (default 15 s). */
  cooldownMs?: number;
  onStateChange?: (change: BreakerStateChange) => void;
  /**
   * Asked when the circuit is half-open and a call would be the probe: false
   * fails the call fast instead (another replica probes; see SharedBreakers).
   */
  mayProbe?: () => boolean;
}

/** The right to make one call; settle it exactly once (later calls are ignored). */
export interface BreakerPermit {
  /** The upstream answered (the call may still have failed in a non-outage way, e.g. 404). */
  success(): void;
  /** The call failed because of the upstream (network, timeout, 5xx). */
  failure(): void;
  /** The outcome says nothing about the upstream (429, cancelled): just give the slot back. */
  release(): void;
  /** Settles from an error thrown by the call: failure for outages; release for 429, cancellation or an unclassified error; success otherwise. */
  settle(failure: UpstreamFailure | null): void;
}

export class CircuitBreaker {
  readonly host: string;
  private readonly clock: Clock;
  private readonly threshold: number;
  private readonly windowMs: number;
  private readonly cooldownMs: number;
  private readonly onStateChange?: (change: BreakerStateChange) => void;
  private readonly mayProbe?: () => boolean;

  private current: BreakerState = 'closed';
  private failures = 0;
  private firstFailureAt = 0;
  private openedAt = 0;
  private probeStartedAt: number | null = null;

  constructor(options: CircuitBreakerOptions) {
    this.host = options.host;
    this.clock = options.clock;
    this.threshold = Math.max(1, options.failureThreshold ?? 5);
    this.windowMs = options.windowMs ?? 60_000;
    this.cooldownMs = options.cooldownMs ?? 15_000;
    this.onStateChange = options.onStateChange;
    this.mayProbe = options.mayProbe;
  }

  /** The current state (an open circuit whose cooldown has passed reports half-open). */
  state(): BreakerState {
    this.advance();
    return this.current;
  }

  /** Consecutive failures counted so far in the closed state. */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /**
   * Asks to make a call. Throws UNAVAILABLE (failure kind `circuit-open`) when
   * the circuit is open, or half-open with its probe already under way.
   */
  acquire(): BreakerPermit {
    this.advance();
    if (this.current === 'open') throw circuitOpen(this.host, this.retryAfterSeconds());
    let probe = false;
    if (this.current === 'half-open') {
      // A probe whose caller never settled it must not wedge the breaker forever.
      const now = this.clock.now();
      if (this.probeStartedAt !== null && now - this.probeStartedAt < this.cooldownMs) {
        throw circuitOpen(this.host, this.retryAfterSeconds());
      }
      if (this.mayProbe && !this.mayProbe()) throw circuitOpen(this.host, 1);
      this.probeStartedAt = now;
      probe = true;
    }
    let settled = false;
    const once = (fn: () => void) => () => {
      if (settled) return;
      settled = true;
      if (probe) this.probeStartedAt = null;
      fn();
    };
    const permit: BreakerPermit = {
      success: once(() => this.recordSuccess()),
      failure: once(() => this.recordFailure()),
      release: once(() => undefined),
      settle: (failure) => {
        if (failure !== null && isOutage(failure)) permit.failure();
        else if (failure === null || NEUTRAL.has(failure.kind)) permit.release();
        else permit.success();
      },
    };
    return permit;
  }

  /** Records that the upstream answered. Closes the circuit from any state. */
  recordSuccess(): void {
    this.failures = 0;
    if (this.current !== 'closed') this.transition('closed');
  }

  /**
   * Records an outage failure, also one seen outside a permit (e.g. a blob
   * body that broke after its headers had counted as success).
   */
  recordFailure(): void {
    this.advance();
    const now = this.clock.now();
    if (this.current === 'half-open') {
      this.open(now);
      return;
    }
    if (this.current === 'open') return;
    if (this.failures === 0 || now - this.firstFailureAt > this.windowMs) {
      this.failures = 1;
      this.firstFailureAt = now;
    } else {
      this.failures++;
    }
    if (this.failures >= this.threshold) this.open(now);
  }

  /**
   * Takes the state another replica's breaker of the same upstream reached:
   * `open` for `openForMs` already, or `closed`. Reported with `followed`.
   */
  follow(state: 'open' | 'closed', openForMs = 0): void {
    const openedAt = this.clock.now() - Math.max(0, openForMs);
    if (state === 'closed') {
      this.failures = 0;
      if (this.current !== 'closed') this.transition('closed', true);
      return;
    }
    if (this.current === 'open' && this.openedAt >= openedAt) return;
    this.openedAt = openedAt;
    this.probeStartedAt = null;
    this.transition('open', true);
    this.advance();
  }

  /** How long the circuit has been open (0 when closed). */
  openForMs(): number {
    return this.current === 'closed' ? 0 : Math.max(0, this.clock.now() - this.openedAt);
  }

  /** Seconds until the next probe may go through (0 when not open). */
  retryAfterSeconds(): number {
    if (this.current === 'closed') return 0;
    const left = this.openedAt + this.cooldownMs - this.clock.now();
    return Math.max(1, Math.ceil(left / 1000));
  }

  private open(now: number): void {
    this.openedAt = now;
    this.probeStartedAt = null;
    this.transition('open');
  }

  private advance(): void {
    if (this.current === 'open' && this.clock.now() - this.openedAt >= this.cooldownMs) {
      this.probeStartedAt = null;
      this.transition('half-open');
    }
  }

  private transition(to: BreakerState, followed = false): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    const failures = this.failures;
    if (to === 'closed') this.probeStartedAt = null;
    if (to === 'open') this.failures = 0;
    try {
      this.onStateChange?.({ host: this.host, from, to, failures, ...(followed ? { followed } : {}) });
    } catch {
      // A metrics hook must not break the calls it observes.
    }
  }
}
