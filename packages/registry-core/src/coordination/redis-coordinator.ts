import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import type { Logger } from '../logging/logger';
import type { Coordinator, Lease } from './coordinator';
import { InProcessCoordinator } from './in-process-coordinator';

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
/** A Redis command that takes longer counts as Redis being unreachable. */
const COMMAND_TIMEOUT_MS = 1000;
/** How long the first lease requests wait for the first connection after start. */
const FIRST_CONNECT_WAIT_MS = 3000;

/**
 * Leases as Redis keys (SET NX PX with a random token; release and renew only
 * by the token's holder), shared by every replica using the same Redis and prefix.
 *
 * While Redis is unreachable, leases are taken in this process instead, so that
 * pulls keep working through a Redis outage: what is lost meanwhile is only the
 * exclusion across replicas (two replicas may fill the same blob, each verifying
 * and storing the same content, or admit into a quota at the same moment, which
 * the next eviction corrects). Requests never wait on a dead Redis: commands
 * fail at once while it is disconnected, and within a second otherwise.
 */
export class RedisCoordinator implements Coordinator {
  readonly kind = 'redis';
  private readonly redis: Redis;
  private readonly local = new InProcessCoordinator();
  private readonly firstConnect: Promise<void>;
  private degraded = false;

  constructor(
    redisUrl: string,
    private readonly prefix: string,
    private readonly logger?: Logger,
  ) {
    this.redis = new Redis(redisUrl, {
      connectTimeout: 3000,
      commandTimeout: COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      // A lease command cut by a disconnect must not run later, when nobody waits for it.
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times) => Math.min(times * 100, 1000),
    });
    this.redis.on('error', () => undefined);
    this.redis.on('ready', () => {
      if (!this.degraded) return;
      this.degraded = false;
      this.logger?.info('Redis reachable again: fill and quota leases are shared across replicas');
    });
    this.firstConnect = new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.redis.off('ready', done);
        this.redis.off('error', done);
        resolve();
      };
      const timer = setTimeout(done, FIRST_CONNECT_WAIT_MS);
      timer.unref();
      this.redis.once('ready', done);
      this.redis.once('error', done);
    });
  }

  private key(name: string): string {
    return `${this.prefix}:lock:${name}`;
  }

  private ready(): boolean {
    return this.redis.status === 'ready';
  }

  /** True when Redis can take commands; right after start, waits briefly for the first connection. */
  private async available(): Promise<boolean> {
    if (this.ready()) return true;
    await this.firstConnect;
    if (this.ready()) return true;
    this.fallBack(`connection ${this.redis.status}`);
    return false;
  }

  private fallBack(reason: string): void {
    if (this.degraded) return;
    this.degraded = true;
    this.logger?.warn('Redis unreachable: fill and quota leases are local to this replica until it is back', { reason });
  }

  async tryAcquire(name: string, ttlMs: number, holder = ''): Promise<Lease | null> {
    // A lease taken here during an outage keeps excluding this process's other callers.
    if (await this.local.isHeld(name)) return null;
    if (!(await this.available())) return this.local.tryAcquire(name, ttlMs, holder);
    const key = this.key(name);
    // The value is the holder's token, then its note: release and renew compare the whole value.
    const token = `${randomUUID()} ${holder}`;
    let ok: boolean;
    try {
      ok = (await this.redis.set(key, token, 'PX', ttlMs, 'NX')) === 'OK';
    } catch (err) {
      // A reply late because this process stalled is not an outage: Redis says who holds the name.
      const holderNow = this.ready() ? await this.redis.get(key).catch(() => undefined) : undefined;
      if (holderNow === undefined) {
        this.fallBack(String(err));
        return this.local.tryAcquire(name, ttlMs, holder);
      }
      ok = holderNow === token;
    }
    if (!ok) return null;
    const redis = this.redis;
    let released = false;
    return {
      async renew() {
        if (released) return false;
        return Number(await redis.eval(RENEW, 1, key, token, String(ttlMs))) === 1;
      },
      async release() {
        if (released) return;
        released = true;
        await redis.eval(RELEASE, 1, key, token).catch(() => undefined);
      },
    };
  }

  async isHeld(name: string): Promise<boolean> {
    if (await this.local.isHeld(name)) return true;
    if (!(await this.available())) return false;
    try {
      return (await this.redis.exists(this.key(name))) === 1;
    } catch (err) {
      this.fallBack(String(err));
      return false;
    }
  }

  async holderOf(name: string): Promise<string | null> {
    const local = await this.local.holderOf(name);
    if (local !== null) return local;
    if (!(await this.available())) return null;
    try {
      const value = await this.redis.get(this.key(name));
      if (value === null) return null;
      const space = value.indexOf(' ');
      return space < 0 ? '' : value.slice(space + 1);
    } catch (err) {
      this.fallBack(String(err));
      return null;
    }
  }

  async close(): Promise<void> {
    await this.local.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
