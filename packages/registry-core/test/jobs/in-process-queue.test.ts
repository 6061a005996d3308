import { InProcessQueue } from '../../src/jobs/in-process-queue';
import { createLogger } from '../../src/logging/logger';
import { describeJobQueueContract } from './job-queue.contract';

const logger = createLogger({ silent: true });

describeJobQueueContract('in-process', async () => ({
  create: () => new InProcessQueue(logger),
  cleanup: async () => undefined,
}));

describe('in-process queue specifics', () => {
  test('close runs delayed jobs instead of dropping them', async () => {
    const queue = new InProcessQueue(logger);
    const ran: string[] = [];
    queue.register<string>('later', async (data) => {
      ran.push(data);
    });
    await queue.start();
    await queue.enqueue('later', 'in an hour', { delayMs: 3_600_000 });
    await queue.close();
    expect(ran).toEqual(['in an hour']);
  });
});
