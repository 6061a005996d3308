/**
 * The job queue contract against the machine's Redis (127.0.0.1:6379), each
 * test under its own key prefix, plus what only the Redis driver has.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as net from 'node:net';
import { Redis } from 'ioredis';
import { TempDir, eventually, freePort, stopProcess, waitForPort } from '../../../../testing';
import { BullMqQueue, bullJobId } from '../../src/jobs/bullmq-queue';
import { createLogger } from '../../src/logging/logger';
import { describeJobQueueContract } from './job-queue.contract';

const REDIS_URL = process.env.ENTREPOT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger({ silent: true });

beforeAll(async () => {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(`Redis at ${REDIS_URL} is not reachable (${String(err)}); the BullMQ tests need a running Redis server`);
  } finally {
    redis.disconnect();
  }
});

/** Removes every key under `prefix:` (a test's queues). */
async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

function testPrefix(): string {
  return `entrepot-test-${randomUUID()}`;
}

describeJobQueueContract('bullmq', async () => {
  const prefix = testPrefix();
  return {
    create: () => new BullMqQueue({ redisUrl: REDIS_URL, prefix }, logger),
    cleanup: () => deleteKeys(prefix),
  };
});

/** A port on 127.0.0.1 with nothing listening. */
async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A private redis-server (the shared one must not be restarted by tests). */
class PrivateRedis {
  private child?: ChildProcess;
  private constructor(
    readonly port: number,
    private readonly dir: TempDir,
  ) {}

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), await TempDir.create('entrepot-redis-'));
    await redis.up();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir.path, '--save', '', '--appendonly', 'yes'];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) => reject(new Error(`cannot run redis-server (needed for the restart test): ${err.message}`)));
    });
    this.child = child;
    await waitForPort(this.port, 10_000);
  }

  async down(): Promise<void> {
    if (this.child) await stopProcess(this.child, 5000);
    this.child = undefined;
  }

  async stop(): Promise<void> {
    await this.down();
    await this.dir.remove();
  }
}

describe('bullmq queue specifics', () => {
  test('workers resume after a Redis restart, and enqueue fails fast while it is down', async () => {
    const server = await PrivateRedis.start();
    const queue = new BullMqQueue({ redisUrl: server.url, prefix: testPrefix() }, logger);
    try {
      const ran: string[] = [];
      queue.register<string>('restart.job', async (data) => {
        ran.push(data);
      });
      await queue.start();
      await queue.enqueue('restart.job', 'before');
      await queue.drain(10_000);
      expect(ran).toEqual(['before']);

      await server.down();
      const before = Date.now();
      await expect(queue.enqueue('restart.job', 'while down')).rejects.toThrow();
      expect(Date.now() - before).toBeLessThan(3500);

      await server.up();
      // The producer reconnects on its own; enqueue works again once it has.
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          await queue.enqueue('restart.job', 'after');
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      await eventually(() => ran.includes('after'), 30_000, 'the worker to run a job after the restart');
      expect(ran).toEqual(['before', 'after']);
    } finally {
      await queue.close();
      await server.stop();
    }
  }, 60_000);

  test('enqueue rejects within a few seconds when Redis is unreachable, and close does not hang', async () => {
    const port = await closedPort();
    const queue = new BullMqQueue({ redisUrl: `redis://127.0.0.1:${port}`, prefix: testPrefix() }, logger);
    queue.register('unreachable.job', async () => undefined);
    const startedAt = Date.now();
    await queue.start();
    expect(Date.now() - startedAt).toBeLessThan(8000);
    for (let i = 0; i < 3; i++) {
      const before = Date.now();
      await expect(queue.enqueue('unreachable.job', { i })).rejects.toThrow();
      expect(Date.now() - before).toBeLessThan(2500);
    }
    const closing = Date.now();
    await queue.close();
    expect(Date.now() - closing).toBeLessThan(5000);
  }, 30_000);

  test('a job enqueued on one replica runs on another', async () => {
    const prefix = testPrefix();
    const producer = new BullMqQueue({ redisUrl: REDIS_URL, prefix }, logger);
    const consumer = new BullMqQueue({ redisUrl: REDIS_URL, prefix }, logger);
    try {
      const ran: string[] = [];
      producer.register<string>('replica.job', async () => {
        throw new Error('the producer never starts its workers');
      });
      consumer.register<string>('replica.job', async (data) => {
        ran.push(data);
      });
      await consumer.start();
      await producer.enqueue('replica.job', 'hello');
      await consumer.drain(10_000);
      expect(ran).toEqual(['hello']);
    } finally {
      await producer.close();
      await consumer.close();
      await deleteKeys(prefix);
    }
  });

  test('bullJobId maps ids to BullMQ-safe ids without collisions', () => {
    const ids = ['sha256:ab', 'sha256%3Aab', '42', '%i42', 'plain-id', ':', '%3A', '%253A', '-1', '1e3'];
    const mapped = ids.map(bullJobId);
    expect(new Set(mapped).size).toBe(ids.length);
    for (const id of mapped) {
      expect(id).not.toContain(':');
      expect(`${parseInt(id, 10)}`).not.toBe(id);
    }
    expect(bullJobId('plain-id')).toBe('plain-id');
  });
});
