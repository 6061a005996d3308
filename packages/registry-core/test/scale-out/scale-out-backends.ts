/**
 * The scale-out deployment for tests: a fresh MariaDB database, a BullMQ
 * queue prefix of its own on Redis, and a SeaweedFS S3 server, all real
 * servers on loopback. Replicas started with `startReplica()` share the three
 * backends and nothing else (each has its own local data directory for scratch
 * space), like Entrepot replicas behind a load balancer.
 *
 * MariaDB (root, no password) and Redis come from the machine; `npm test`
 * (scripts/test.sh) starts them when they are down. `ENTREPOT_TEST_MYSQL_URL`
 * and `ENTREPOT_TEST_REDIS_URL` point the tests elsewhere.
 */
import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import knex, { type Knex } from 'knex';
import { Client as MinioClient } from 'minio';
import { startEntrepot, type TestInstance, type TestInstanceOptions } from '../../../../testing/entrepot-instance';
import { S3Server } from '../../../../testing/s3-server';

const MYSQL_URL = process.env.ENTREPOT_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
const REDIS_URL = process.env.ENTREPOT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface ScaleOutBackends {
  s3: S3Server;
  /** Name of the MariaDB database this run owns (dropped by `cleanup()`). */
  database: string;
  /** BullMQ key prefix this run owns (its keys are deleted by `cleanup()`). */
  queuePrefix: string;
  /** The environment that points a replica at the three backends (for replicas run as processes). */
  env: Record<string, string>;
  /** Redis URL the replicas share (queue, leases, change notices under `queuePrefix`). */
  redisUrl: string;
  /** Starts one Entrepot replica on the shared backends (plugins and extra settings optional). */
  startReplica(options?: Pick<TestInstanceOptions, 'plugins' | 'env' | 'overrides' | 'clock'>): Promise<TestInstance>;
  /** Object keys in the bucket (to show blobs went to S3). */
  listObjects(): Promise<string[]>;
  /** Rows in a table of this run's database. */
  countRows(table: string): Promise<number>;
  /** BullMQ keys under this run's prefix. */
  queueKeys(): Promise<string[]>;
  /** Stops the S3 server, drops the database and deletes the queue keys. */
  cleanup(): Promise<void>;
}

function mysqlConnection(database?: string): Knex.MySql2ConnectionConfig {
  const url = new URL(MYSQL_URL);
  return {
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    database,
  };
}

async function assertReachable(): Promise<void> {
  const db = knex({ client: 'mysql2', connection: { ...mysqlConnection(), connectTimeout: 3000 }, pool: { min: 0, max: 1 } });
  try {
    await db.raw('SELECT 1');
  } catch (err) {
    throw new Error(`MariaDB at ${MYSQL_URL} is not reachable (${String(err)}); run the suite with \`npm test\`, which starts it`);
  } finally {
    await db.destroy();
  }
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(`Redis at ${REDIS_URL} is not reachable (${String(err)}); run the suite with \`npm test\`, which starts it`);
  } finally {
    redis.disconnect();
  }
}

async function redisKeys(pattern: string): Promise<string[]> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return keys;
  } finally {
    await redis.quit();
  }
}

export async function startScaleOutBackends(): Promise<ScaleOutBackends> {
  await assertReachable();
  const run = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const database = `entrepot_so_${run}`;
  const queuePrefix = `entrepot-so-${run}`;
  const secretKey = randomBytes(32).toString('base64');
  const s3 = await S3Server.start();
  const replicas: TestInstance[] = [];
  const mysql = mysqlConnection();

  const env: Record<string, string> = {
    ENTREPOT_DATABASE_URL: `${MYSQL_URL.replace(/\/+$/, '')}/${database}`,
    ENTREPOT_SECRET_KEY: secretKey,
    ENTREPOT_REDIS_URL: REDIS_URL,
    ENTREPOT_S3_ENDPOINT: s3.endPoint,
    ENTREPOT_S3_PORT: String(s3.port),
    ENTREPOT_S3_USE_SSL: 'false',
    ENTREPOT_S3_ACCESS_KEY: s3.accessKey,
    ENTREPOT_S3_SECRET_KEY: s3.secretKey,
    ENTREPOT_S3_BUCKET: s3.bucket,
    ENTREPOT_S3_REGION: s3.region,
  };

  return {
    s3,
    database,
    queuePrefix,
    env,
    redisUrl: REDIS_URL,
    async startReplica(options = {}) {
      const replica = await startEntrepot({
        plugins: options.plugins,
        clock: options.clock,
        env: { ...env, ...options.env },
        // ENTREPOT_REDIS_URL selects BullMQ with the default prefix; the test
        // run needs a prefix of its own so parallel runs never share queues.
        overrides: { ...options.overrides, queue: { driver: 'bullmq', redis_url: REDIS_URL, prefix: queuePrefix } },
      });
      replicas.push(replica);
      return replica;
    },
    async listObjects() {
      const client = new MinioClient({ ...s3.connection() });
      const keys: string[] = [];
      for await (const item of client.listObjectsV2(s3.bucket, '', true) as AsyncIterable<{ name?: string }>) {
        if (item.name) keys.push(item.name);
      }
      return keys;
    },
    async countRows(table) {
      const db = knex({ client: 'mysql2', connection: mysqlConnection(database), pool: { min: 0, max: 1 } });
      try {
        const [row] = (await db(table).count({ n: '*' })) as Array<{ n: number | string }>;
        return Number(row.n);
      } finally {
        await db.destroy();
      }
    },
    queueKeys: () => redisKeys(`${queuePrefix}:*`),
    async cleanup() {
      const errors: unknown[] = [];
      for (const replica of replicas.splice(0)) await replica.stop().catch((err: unknown) => errors.push(err));
      await s3.stop().catch((err: unknown) => errors.push(err));
      const admin = knex({ client: 'mysql2', connection: mysql, pool: { min: 0, max: 1 } });
      await admin
        .raw('DROP DATABASE IF EXISTS ??', [database])
        .catch((err: unknown) => errors.push(err))
        .finally(() => admin.destroy());
      const keys = await redisKeys(`${queuePrefix}:*`).catch((err: unknown) => {
        errors.push(err);
        return [];
      });
      if (keys.length > 0) {
        const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
        for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
        await redis.quit();
      }
      if (errors.length > 0) throw new AggregateError(errors, 'scale-out cleanup failed');
    },
  };
}
