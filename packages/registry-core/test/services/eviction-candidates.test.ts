import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb, migrate, type Db } from '../../src/db/database';
import { coreMigrations } from '../../src/db/migrations/core-migrations';
import { ContentUsage } from '../../src/services/content-usage';

const first = async (db: Db, orgId: number, policy: 'lru' | 'lfu', now: number, protect?: { repoId: number; tag?: string }) => (await new ContentUsage(db).evictionCandidates(orgId, policy, now, 1, protect))[0] ?? null;

const DAY = 24 * 3600 * 1000;
const NOW = 100 * DAY;

describe('eviction candidates', () => {
  let dir: string;
  let db: Db;
  let repoId: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'entrepot-candidates-'));
    db = createDb({ database: { client: 'sqlite', filename: join(dir, 'c.db') }, data_dir: dir });
    await migrate(db, coreMigrations);
    const [orgId] = await db('organizations').insert({ name: 'c', created_at: 0 });
    [repoId] = await db('repositories').insert({ org_id: orgId, name: 'r', created_at: 0 });
    const tag = (name: string, pulls: number, lastPulledDaysAgo: number, pinned = false) => ({
      repo_id: repoId,
      name,
      manifest_digest: `sha256:${name.padEnd(64, '0')}`,
      updated_at: 0,
      pull_count: pulls,
      last_pulled_at: NOW - lastPulledDaysAgo * DAY,
      pinned,
    });
    for (const name of ['old', 'recent', 'hot', 'pinned']) {
      await db('manifests').insert({ repo_id: repoId, digest: `sha256:${name.padEnd(64, '0')}`, media_type: 'x', size: 1, created_at: 0 });
    }
    await db('tags').insert([tag('old', 40, 60), tag('recent', 3, 1), tag('hot', 50, 0), tag('pinned', 0, 90, true)]);
  });

  afterAll(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lru picks the least recently pulled unpinned tag', async () => {
    expect(await first(db, 1, 'lru', NOW)).toMatchObject({ kind: 'tag', tag: 'old' });
  });

  it('lfu counts pulls within a window: many pulls long ago lose to a few recent ones', async () => {
    expect(await first(db, 1, 'lfu', NOW)).toMatchObject({ kind: 'tag', tag: 'old' });
    // Without the window, 40 pulls would have kept "old" over "recent".
    expect(await first(db, 1, 'lfu', NOW, { repoId, tag: 'old' })).toMatchObject({ kind: 'tag', tag: 'recent' });
  });

  it('never offers a pinned tag, and offers untagged manifests first', async () => {
    await db('manifests').insert({ repo_id: repoId, digest: `sha256:${'u'.padEnd(64, '0')}`, media_type: 'x', size: 1, created_at: 5 });
    expect(await first(db, 1, 'lru', NOW)).toMatchObject({ kind: 'manifest', digest: `sha256:${'u'.padEnd(64, '0')}` });
    await db('manifests').where({ digest: `sha256:${'u'.padEnd(64, '0')}` }).delete();
    await db('tags').whereNot({ name: 'pinned' }).update({ pinned: true });
    expect(await first(db, 1, 'lru', NOW)).toBeNull();
  });
});
