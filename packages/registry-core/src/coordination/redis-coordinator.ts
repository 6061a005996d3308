import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import type { Coordinator, Lease } from './coordinator';

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/**
 * Leases as Redis keys (SET NX PX with a random token; release and renew only
 * by the token's holder), shared by every replica using the same Redis and prefix.
 */
export class RedisCoordinator implements Coordinator {
  readonly kind = 'redis';
  private readonly redis: Redis;

  constructor(redisUrl: string, private readonly prefix: string) {
    this.redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 3000, enableOfflineQueue: true });
    this.redis.on('error', () => undefined);
  }

  private key(name: string): string {
    return `${this.prefix}:lock:${name}`;
  }

  async tryAcquire(name: string, ttlMs: number): Promise<Lease | null> {
    const key = this.key(name);
    const token = randomUUID();
    const ok = await this.redis.set(key, token, 'PX', ttlMs, 'NX');
    if (ok !== 'OK') return null;
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
    return (await this.redis.exists(this.key(name))) === 1;
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
