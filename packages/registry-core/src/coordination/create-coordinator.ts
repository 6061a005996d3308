import type { Config } from '../config/config';
import type { Logger } from '../logging/logger';
import { InProcessChangeNotices, type ChangeNotices } from './change-notices';
import type { Coordinator } from './coordinator';
import { InProcessCoordinator } from './in-process-coordinator';

/** Leases and locks shared through Redis when the queue is BullMQ (replicas), else within this process. */
export async function createCoordinator(config: Pick<Config, 'queue'>, logger: Logger): Promise<Coordinator> {
  if (config.queue.driver !== 'bullmq') return new InProcessCoordinator();
  const { RedisCoordinator } = await import('./redis-coordinator');
  return new RedisCoordinator(config.queue.redis_url, config.queue.prefix, logger);
}

/** Change notices through Redis when the queue is BullMQ (replicas), else within this process. */
export async function createChangeNotices(config: Pick<Config, 'queue'>, logger: Logger): Promise<ChangeNotices> {
  if (config.queue.driver !== 'bullmq') return new InProcessChangeNotices();
  const { RedisChangeNotices } = await import('./redis-change-notices');
  return new RedisChangeNotices(config.queue.redis_url, config.queue.prefix, logger);
}
