import type { Config } from '../config/config';
import type { Logger } from '../logging/logger';
import { InProcessQueue } from './in-process-queue';
import type { JobQueue } from './job-queue';

/** The configured queue; BullMQ (and Redis) are loaded only when configured, keeping the embedded heap small. */
export async function createQueue(config: Pick<Config, 'queue'>, logger: Logger): Promise<JobQueue> {
  if (config.queue.driver === 'in-process') return new InProcessQueue(logger);
  const { BullMqQueue } = await import('./bullmq-queue');
  return new BullMqQueue({ redisUrl: config.queue.redis_url, prefix: config.queue.prefix }, logger);
}
