import type { Config } from '../config/config';
import type { Logger } from '../logging/logger';
import { BullMqQueue } from './bullmq-queue';
import { InProcessQueue } from './in-process-queue';
import type { JobQueue } from './job-queue';

export function createQueue(config: Pick<Config, 'queue'>, logger: Logger): JobQueue {
  if (config.queue.driver === 'in-process') return new InProcessQueue(logger);
  return new BullMqQueue({ redisUrl: config.queue.redis_url, prefix: config.queue.prefix }, logger);
}
