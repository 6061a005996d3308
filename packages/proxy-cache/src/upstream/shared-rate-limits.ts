import { randomUUID } from 'node:crypto';
import type { ChangeNotices } from '../core-types';

/** Change-notice topic of RateLimit-Remaining values. */
const TOPIC = 'proxy-cache:ratelimit';

/** What a replica does with a RateLimit-Remaining value (its own or another replica's). */
export type RateLimitListener = (host: string, remaining: number, at: number) => void;

/**
 * Makes the RateLimit-Remaining an upstream reported to one replica known to
 * every replica (gauge, statistics), since the upstream counts the pulls of
 * all replicas together: each value seen is published as a change notice.
 * Values only change when the upstream answers, so a notice is sent only when
 * the value differs from the last one shared.
 */
export class SharedRateLimits {
  private readonly replica = randomUUID();
  private readonly last = new Map<string, number>();

  constructor(
    private readonly notices: ChangeNotices,
    private readonly heard: RateLimitListener,
  ) {
    notices.subscribe(TOPIC, (key) => {
      if (key !== null) this.hear(key);
    });
  }

  /** A value this replica's upstream response carried. */
  observed(host: string, remaining: number, at: number): void {
    if (this.last.get(host) === remaining) return;
    this.last.set(host, remaining);
    void this.notices.publish(TOPIC, `${this.replica} ${at} ${remaining} ${host}`);
  }

  private hear(key: string): void {
    const [replica, at, remaining, host] = key.split(' ');
    if (replica === this.replica || !host) return;
    const value = Number(remaining);
    const when = Number(at);
    if (!Number.isFinite(value) || !Number.isFinite(when)) return;
    this.last.set(host, value);
    this.heard(host, value, when);
  }
}
