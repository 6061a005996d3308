import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb, migrate, type Db } from '../../../registry-core/src/db/database';
import { coreMigrations } from '../../../registry-core/src/db/migrations/core-migrations';
import { createPointReads, type PointReads } from '../../../registry-core/src/db/point-reads';
import { proxyCacheSchema } from '../../src/config/migrations';
import { lifecycleSchema } from '../../src/config/lifecycle-migration';
import { TagFreshness } from '../../src/freshness/tag-freshness';
import { ShortMemo } from '../../../registry-core/src/services/short-memo';
import { ContentUsage } from '../../../registry-core/src/services/content-usage';
import type { Digest } from '@entrepot/registry-core';
import { ManualClock } from '../upstream/helpers';

const A = `sha256:${'a'.repeat(64)}` as Digest;
const B = `sha256:${'b'.repeat(64)}` as Digest;

/** Two replicas' TagFreshness over one database file, each with its own read connection, as in a scale-out deployment. */
describe('TagFreshness', () => {
  let dir: string;
  let db: Db;
  const reads: PointReads[] = [];
  let repoId: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'entrepot-freshness-'));
    db = createDb({ database: { client: 'sqlite', filename: join(dir, 'test.db') }, data_dir: dir });
    await migrate(db, [...coreMigrations, proxyCacheSchema, lifecycleSchema]);
    const [orgId] = await db('organizations').insert({ name: 'cache', is_public: true, created_at: 1 });
    const [id] = await db('repositories').insert({ org_id: Number(orgId), name: 'library/app', visibility: null, created_at: 1 });
    repoId = Number(id);
  });

  afterAll(async () => {
    for (const r of reads) r.close();
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  function replica(clock: ManualClock): TagFreshness {
    const r = createPointReads(db);
    reads.push(r);
    return new TagFreshness(db, r, clock, (options) => new ShortMemo(clock, options), new ContentUsage(db));
  }

  /** The cache organization's expiration: how long a confirmed tag is fresh. */
  const FRESH_MS = 10_000;

  it('sees its own marks and forgets at once, and another replica’s newer check when its kept one turns stale', async () => {
    const clock = new ManualClock();
    const here = replica(clock);
    const there = replica(clock);

    expect(await here.lastCheck(repoId, 'v1', FRESH_MS)).toBeNull();
    await there.mark(repoId, 'v1', A);
    const first = clock.now();
    // "Never checked" is not kept: the mark made elsewhere is read at once.
    expect(await here.lastCheck(repoId, 'v1', FRESH_MS)).toEqual({ upstreamDigest: A, checkedAt: first });
    clock.advance(5000);
    await there.mark(repoId, 'v1', B);
    const second = clock.now();
    // Still fresh by the kept check: answered from memory.
    expect(await here.lastCheck(repoId, 'v1', FRESH_MS)).toEqual({ upstreamDigest: A, checkedAt: first });
    // Stale by the kept check: read again, and the other replica's check makes it fresh without a revalidation.
    clock.advance(5000);
    expect(await here.lastCheck(repoId, 'v1', FRESH_MS)).toEqual({ upstreamDigest: B, checkedAt: second });

    await here.mark(repoId, 'v1', A);
    expect(await here.lastCheck(repoId, 'v1', FRESH_MS)).toEqual({ upstreamDigest: A, checkedAt: clock.now() });
    await here.forget(repoId, 'v1');
    expect(await here.lastCheck(repoId, 'v1', FRESH_MS)).toBeNull();
    expect(await db('proxy_cache_tags').where({ repo_id: repoId })).toEqual([]);
  });

  it('answers from memory while the kept check is fresh: no database read per pull', async () => {
    const clock = new ManualClock();
    const here = replica(clock);
    await here.mark(repoId, 'v2', A);
    const checkedAt = clock.now();
    // A row changed behind its back (as by another replica) is not read again while the kept check is fresh...
    await db('proxy_cache_tags').where({ repo_id: repoId, tag: 'v2' }).update({ upstream_digest: B, checked_at: checkedAt + 5 });
    clock.advance(FRESH_MS - 1);
    expect(await here.lastCheck(repoId, 'v2', FRESH_MS)).toEqual({ upstreamDigest: A, checkedAt });
    // ...and is read once it is not.
    clock.advance(1);
    expect(await here.lastCheck(repoId, 'v2', FRESH_MS)).toEqual({ upstreamDigest: B, checkedAt: checkedAt + 5 });
  });
});
