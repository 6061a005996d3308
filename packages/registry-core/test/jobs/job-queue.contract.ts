/**
 * The conformance suite every JobQueue driver runs:
 * `describeJobQueueContract('in-process', setup)`. `setup` runs before each
 * test; `create()` returns a new queue on the same backend (for Redis: another
 * replica sharing the jobs), and every queue created is closed after the test.
 */
import { eventually } from '../../../../testing/tools';
import { EnqueueOptions, JobQueue, UnrecoverableJobError } from '../../src/jobs/job-queue';

export interface JobQueueFixture {
  create(): JobQueue;
  cleanup(): Promise<void>;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}


interface Call<T> {
  data: T;
  at: number;
}

export function describeJobQueueContract(name: string, setup: () => Promise<JobQueueFixture>): void {
  describe(`job queue contract: ${name}`, () => {
    let fixture: JobQueueFixture | undefined;
    let created: JobQueue[];

    function newQueue(): JobQueue {
      const queue = fixture!.create();
      created.push(queue);
      return queue;
    }

    /** A started queue with one handler that records its calls and can fail on demand. */
    async function recordingQueue<T>(
      behaviour: (data: T, attempt: number) => Promise<void> | void = () => undefined,
      options: { concurrency?: number; start?: boolean } = {},
    ): Promise<{ queue: JobQueue; calls: Array<Call<T>>; enqueue(data: T, opts?: EnqueueOptions): Promise<void> }> {
      const queue = newQueue();
      const calls: Array<Call<T>> = [];
      const attempts = new Map<string, number>();
      queue.register<T>(
        'contract.job',
        async (data) => {
          calls.push({ data, at: Date.now() });
          const key = JSON.stringify(data);
          const attempt = (attempts.get(key) ?? 0) + 1;
          attempts.set(key, attempt);
          await behaviour(data, attempt);
        },
        { concurrency: options.concurrency },
      );
      if (options.start !== false) await queue.start();
      return { queue, calls, enqueue: (data, opts) => queue.enqueue('contract.job', data, opts) };
    }

    beforeEach(async () => {
      created = [];
      fixture = await setup();
    });

    afterEach(async () => {
      for (const queue of created) await queue.close();
      await fixture?.cleanup();
      fixture = undefined;
    });

    test('runs the handler with the job data', async () => {
      const { queue, calls, enqueue } = await recordingQueue<{ n: number; s: string; nested: { list: number[] } }>();
      const data = { n: 1, s: 'é', nested: { list: [1, 2, 3] } };
      await enqueue(data);
      await queue.drain(10_000);
      expect(calls.map((c) => c.data)).toEqual([data]);
    });

    test('jobs enqueued before start run once the queue starts', async () => {
      const { queue, calls, enqueue } = await recordingQueue<string>(undefined, { start: false });
      await enqueue('early');
      await sleep(200);
      expect(calls).toEqual([]);
      await queue.start();
      await queue.drain(10_000);
      expect(calls.map((c) => c.data)).toEqual(['early']);
    });

    test('a failing job is retried with growing delays until it succeeds', async () => {
      const { queue, calls, enqueue } = await recordingQueue<string>((_data, attempt) => {
        if (attempt < 3) throw new Error(`transient failure ${attempt}`);
      });
      await enqueue('flaky', { attempts: 3 });
      await queue.drain(20_000);
      expect(calls).toHaveLength(3);
      const firstGap = calls[1].at - calls[0].at;
      const secondGap = calls[2].at - calls[1].at;
      expect(firstGap).toBeGreaterThanOrEqual(150);
      expect(secondGap).toBeGreaterThanOrEqual(300);
    });

    test('a job stops after `attempts` failures', async () => {
      const { queue, calls, enqueue } = await recordingQueue<string>(() => {
        throw new Error('always fails');
      });
      await enqueue('doomed', { attempts: 2 });
      await queue.drain(20_000);
      expect(calls).toHaveLength(2);
      await sleep(1000);
      expect(calls).toHaveLength(2);
    });

    test('UnrecoverableJobError stops retries at once', async () => {
      const { queue, calls, enqueue } = await recordingQueue<string>(() => {
        throw new UnrecoverableJobError('can never succeed');
      });
      await enqueue('hopeless', { attempts: 5 });
      await queue.drain(10_000);
      await sleep(500);
      expect(calls).toHaveLength(1);
    });

    test('a pending jobId is deduplicated; once finished, the id can be used again', async () => {
      const { queue, calls, enqueue } = await recordingQueue<string>(undefined, { start: false });
      await enqueue('first', { jobId: 'audit-1' });
      await enqueue('second', { jobId: 'audit-1' });
      await enqueue('other', { jobId: 'audit-2' });
      await queue.start();
      await queue.drain(10_000);
      expect(calls.map((c) => c.data).sort()).toEqual(['first', 'other']);

      await enqueue('third', { jobId: 'audit-1' });
      await queue.drain(10_000);
      expect(calls.map((c) => c.data).sort()).toEqual(['first', 'other', 'third']);
    });

    test('a permanently failed jobId can be enqueued again', async () => {
      const { queue, calls, enqueue } = await recordingQueue<string>((data) => {
        if (data === 'bad') throw new UnrecoverableJobError('bad input');
      });
      await enqueue('bad', { jobId: 'scan-x' });
      await queue.drain(10_000);
      await enqueue('good', { jobId: 'scan-x' });
      await queue.drain(10_000);
      expect(calls.map((c) => c.data)).toEqual(['bad', 'good']);
    });

    test('jobs without a jobId are never deduplicated', async () => {
      const { queue, calls, enqueue } = await recordingQueue<string>();
      await enqueue('same');
      await enqueue('same');
      await queue.drain(10_000);
      expect(calls).toHaveLength(2);
    });

    test('any string works as a jobId (digests with ":", integers, "%")', async () => {
      const { queue, calls, enqueue } = await recordingQueue<string>(undefined, { start: false });
      const ids = ['sha256:abcd', 'scan:sha256:abcd', '42', '%3A', ':', 'a%b'];
      for (const id of ids) await enqueue(id, { jobId: id });
      for (const id of ids) await enqueue(`${id} again`, { jobId: id });
      await queue.start();
      await queue.drain(10_000);
      expect(calls.map((c) => c.data).sort()).toEqual([...ids].sort());
    });

    test('a delayed job does not run before its delay', async () => {
      const { queue, calls, enqueue } = await recordingQueue<string>();
      const enqueuedAt = Date.now();
      await enqueue('later', { delayMs: 700 });
      await sleep(300);
      expect(calls).toEqual([]);
      await queue.drain(10_000);
      expect(calls.map((c) => c.data)).toEqual(['later']);
      expect(calls[0].at - enqueuedAt).toBeGreaterThanOrEqual(650);
    });

    test('drain waits for running jobs and times out when they do not finish', async () => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let finished = false;
      const { queue, calls, enqueue } = await recordingQueue<string>(async () => {
        await released;
        finished = true;
      });
      await enqueue('slow');
      await eventually(() => calls.length === 1, 10_000, 'the job to start');
      await expect(queue.drain(300)).rejects.toThrow();
      expect(finished).toBe(false);
      release();
      await queue.drain(10_000);
      expect(finished).toBe(true);
    });

    test('a handler runs at most `concurrency` jobs at a time', async () => {
      let running = 0;
      let peak = 0;
      const { queue, calls, enqueue } = await recordingQueue<number>(
        async () => {
          running++;
          peak = Math.max(peak, running);
          await sleep(150);
          running--;
        },
        { concurrency: 2 },
      );
      for (let i = 0; i < 6; i++) await enqueue(i);
      await queue.drain(20_000);
      expect(calls.map((c) => c.data).sort()).toEqual([0, 1, 2, 3, 4, 5]);
      expect(peak).toBe(2);
    });

    test('enqueueing an unregistered job name rejects', async () => {
      const { queue } = await recordingQueue<string>();
      await expect(queue.enqueue('not.registered', {})).rejects.toThrow();
    });

    test('close waits for running jobs, and every accepted job runs exactly once', async () => {
      const started: number[] = [];
      const finished: number[] = [];
      const handler = async (n: number): Promise<void> => {
        started.push(n);
        await sleep(100);
        finished.push(n);
      };
      const first = newQueue();
      first.register<number>('contract.close', handler, { concurrency: 1 });
      await first.start();
      for (let i = 0; i < 5; i++) await first.enqueue('contract.close', i);
      await eventually(() => started.length > 0, 10_000, 'the first job to start');
      await first.close();
      // Nothing was cut off: whatever started on the closed queue also finished.
      expect([...finished].sort()).toEqual([...started].sort());
      await expect(first.enqueue('contract.close', 99)).rejects.toThrow();

      // Jobs not run by the closed queue are run by the next one (a restarted process or another replica).
      const second = newQueue();
      second.register<number>('contract.close', handler, { concurrency: 1 });
      await second.start();
      await second.drain(20_000);
      expect([...finished].sort()).toEqual([0, 1, 2, 3, 4]);
    });
  });
}
