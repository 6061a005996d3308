import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, AUDIT_BATCH_JOB, AUDIT_JOB } from '../../src/audit/audit-log';
import { ANONYMOUS } from '../../src/auth/principal';
import { createDb, migrate, type Db } from '../../src/db/database';
import { coreMigrations } from '../../src/db/migrations/core-migrations';
import { InProcessQueue } from '../../src/jobs/in-process-queue';
import type { EnqueueOptions } from '../../src/jobs/job-queue';
import { createLogger } from '../../src/logging/logger';
import { createMetrics } from '../../src/metrics/metrics';
import { systemClock } from '../../src/services/clock';

/** The real in-process queue, counting what it is given. */
class CountingQueue extends InProcessQueue {
  readonly enqueued: string[] = [];
  override enqueue<T>(name: string, data: T, options?: EnqueueOptions): Promise<void> {
    this.enqueued.push(name);
    return super.enqueue(name, data, options);
  }
}

describe('audit entries are written in batches', () => {
  const logger = createLogger({ silent: true });
  let dir: string;
  let db: Db;
  let queue: CountingQueue;
  let audit: AuditLog;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'entrepot-audit-'));
    db = createDb({ database: { client: 'sqlite', filename: join(dir, 'test.db') }, data_dir: dir });
    await migrate(db, coreMigrations);
    queue = new CountingQueue(logger);
    audit = new AuditLog(db, queue, logger, createMetrics({ defaultMetrics: false }), systemClock);
    audit.registerJobs();
    await queue.start();
  });

  afterEach(async () => {
    await queue.close();
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const entry = (i: number) => ({ orgId: null, repo: `r${i}`, kind: 'pull_repo', performer: ANONYMOUS, metadata: { i } });

  test('450 entries recorded at once become 3 jobs and 450 rows, each entry once', async () => {
    await Promise.all(Array.from({ length: 450 }, (_, i) => audit.record(entry(i))));
    await audit.flush();
    await queue.drain(10_000);
    expect(queue.enqueued).toEqual([AUDIT_BATCH_JOB, AUDIT_BATCH_JOB, AUDIT_BATCH_JOB]);
    const rows = await db('audit_logs').select('repo');
    expect(rows).toHaveLength(450);
    expect(new Set(rows.map((r: { repo: string }) => r.repo)).size).toBe(450);
  });

  test('entry ids are unique and sort in the order entries were recorded, so inserts append to their index', async () => {
    for (let i = 0; i < 300; i++) void audit.record(entry(i));
    await audit.flush();
    await queue.drain(10_000);
    const rows: Array<{ entry_id: string; repo: string }> = await db('audit_logs').orderBy('id').select('entry_id', 'repo');
    expect(rows.map((r) => r.repo)).toEqual(Array.from({ length: 300 }, (_, i) => `r${i}`));
    const ids = rows.map((r) => r.entry_id);
    expect(new Set(ids).size).toBe(300);
    expect([...ids].sort()).toEqual(ids);
  });

  test('flush at shutdown hands over entries still gathering', async () => {
    void audit.record(entry(1));
    void audit.record(entry(2));
    await audit.flush();
    await queue.close();
    expect(await db('audit_logs').count({ n: '*' }).first()).toEqual({ n: 2 });
  });

  test('with the queue closed the batch is written directly', async () => {
    await queue.close();
    await Promise.all([audit.record(entry(1)), audit.record(entry(2)), audit.record(entry(3))]);
    expect(await db('audit_logs').count({ n: '*' }).first()).toEqual({ n: 3 });
  });

  test('single-entry jobs queued by earlier releases are still written', async () => {
    const row = { entry_id: 'legacy-1', org_id: null, repo: 'old', kind: 'pull_repo', performer_kind: 'anonymous', performer_name: '(anonymous)', ip: null, user_agent: null, metadata: '{}', created_at: Date.now() };
    await queue.enqueue(AUDIT_JOB, row);
    await queue.drain(10_000);
    expect(await db('audit_logs').where({ entry_id: 'legacy-1' }).select('repo')).toEqual([{ repo: 'old' }]);
  });
});
