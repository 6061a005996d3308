import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import type { Logger } from '../logging/logger';
import { LocalListeners, type ChangeListener, type ChangeNotices } from './change-notices';

/** A publish that takes longer is given up: other replicas catch up when their copies expire. */
const PUBLISH_TIMEOUT_MS = 1000;

interface Notice {
  /** The replica that published it (which has already heard it). */
  from: string;
  topic: string;
  key: string | null;
}

function parseNotice(message: string): Notice | null {
  try {
    const value: unknown = JSON.parse(message);
    if (typeof value !== 'object' || value === null) return null;
    const { from, topic, key } = value as Record<string, unknown>;
    if (typeof from !== 'string' || typeof topic !== 'string' || (key !== null && typeof key !== 'string')) return null;
    return { from, topic, key };
  } catch {
    return null;
  }
}

/** Quits politely when connected; otherwise drops the connection (a queued QUIT would wait for Redis). */
async function endConnection(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') return redis.disconnect();
  await redis.quit().catch(() => redis.disconnect());
}

/**
 * Change notices over one Redis pub/sub channel per key prefix, shared by every
 * replica using the same Redis and prefix. A subscription needs a connection of
 * its own, so this holds two. After its subscription was cut (Redis restarted,
 * the network dropped), this replica cannot know what it missed: on
 * resubscribing it tells its listeners to forget everything.
 */
export class RedisChangeNotices implements ChangeNotices {
  private readonly self = randomUUID();
  private readonly channel: string;
  private readonly listeners = new LocalListeners();
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private subscribedBefore = false;

  constructor(
    redisUrl: string,
    prefix: string,
    private readonly logger?: Logger,
  ) {
    this.channel = `${prefix}:changes`;
    this.publisher = new Redis(redisUrl, {
      connectionName: `${prefix}:notices-publish`,
      connectTimeout: 3000,
      commandTimeout: PUBLISH_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: (times) => Math.min(times * 100, 1000),
    });
    this.publisher.on('error', () => undefined);
    this.subscriber = new Redis(redisUrl, {
      connectionName: `${prefix}:notices-subscribe`,
      connectTimeout: 3000,
      // Subscribed on every connection below, including a first one that comes late;
      // nothing is queued while disconnected.
      autoResubscribe: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(times * 100, 1000),
    });
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('message', (_channel: string, message: string) => this.hear(message));
    this.subscriber.on('ready', () => void this.listen());
  }

  /** Subscribes on a new connection; after a cut, whatever was published in between is lost. */
  private async listen(): Promise<void> {
    try {
      await this.subscriber.subscribe(this.channel);
    } catch (err) {
      this.logger?.warn('change notices: subscription failed; rows kept in memory expire on their own', { error: String(err) });
      return;
    }
    if (this.subscribedBefore) {
      this.logger?.info('change notices: subscribed again; rows kept in memory are read afresh');
      this.listeners.deliverToAll();
    }
    this.subscribedBefore = true;
  }

  private hear(message: string): void {
    const notice = parseNotice(message);
    if (!notice || notice.from === this.self) return;
    this.listeners.deliver(notice.topic, notice.key);
  }

  async publish(topic: string, key: string | null): Promise<void> {
    this.listeners.deliver(topic, key);
    const notice: Notice = { from: this.self, topic, key };
    try {
      await this.publisher.publish(this.channel, JSON.stringify(notice));
    } catch (err) {
      this.logger?.warn('change notice not published: other replicas see the change when their copies expire', { topic, error: String(err) });
    }
  }

  subscribe(topic: string, listener: ChangeListener): void {
    this.listeners.add(topic, listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await Promise.all([endConnection(this.publisher), endConnection(this.subscriber)]);
  }
}
