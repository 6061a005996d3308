import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knex from 'knex';
import { createDb, ensureDatabaseExists, migrate, type Db } from '../../src/db/database';
import { coreMigrations } from '../../src/db/migrations/core-migrations';
import { ContentUsage } from '../../src/services/content-usage';

const MYSQL_URL = process.env.ENTREPOT_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const IMAGE = digest('a');
const SIGNATURE = digest('b');
const SBOM = digest('c');
const ORPHAN_SBOM = digest('d');

interface Backend {
  db: Db;
  cleanup(): Promise<void>;
}

async function sqlite(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'entrepot-referrer-candidates-'));
  const db = createDb({ database: { client: 'sqlite', filename: join(dir, 'c.db') }, data_dir: dir });
  return {
    db,
    async cleanup() {
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function mariadb(): Promise<Backend> {
  const url = new URL(MYSQL_URL);
  const settings = {
    client: 'mysql' as const,
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    database: `entrepot_rc_${randomBytes(4).toString('hex')}`,
    pool_max: 2,
  };
  await ensureDatabaseExists({ database: settings });
  const db = createDb({ database: settings, data_dir: '/nonexistent' });
  return {
    db,
    async cleanup() {
      await db.destroy();
      const admin = knex({ client: 'mysql2', connection: { host: settings.host, port: settings.port, user: settings.user, password: settings.password } });
      await admin.raw('DROP DATABASE IF EXISTS ??', [settings.database]);
      await admin.destroy();
    },
  };
}

/** Referrers go with their subject: eviction never offers one on its own while the subject is cached. */
describe.each([
  ['SQLite', sqlite],
  ['MariaDB', mariadb],
] as const)('eviction candidates and referrers (%s)', (_name, open) => {
  let backend: Backend;
  let orgId: number;
  let repoId: number;

  beforeAll(async () => {
    backend = await open();
    const db = backend.db;
    await migrate(db, coreMigrations);
    [orgId] = await db('organizations').insert({ name: 'c', created_at: 0 });
    [repoId] = await db('repositories').insert({ org_id: orgId, name: 'r', created_at: 0 });
    const manifest = (d: string, subject: string | null, createdAt: number) => ({ repo_id: repoId, digest: d, media_type: 'x', size: 1, subject_digest: subject, created_at: createdAt });
    await db('manifests').insert([manifest(IMAGE, null, 0), manifest(SIGNATURE, null, 1), manifest(SBOM, IMAGE, 2), manifest(ORPHAN_SBOM, digest('e'), 3)]);
    const tag = (name: string, d: string, lastPulledAt: number) => ({ repo_id: repoId, name, manifest_digest: d, updated_at: 0, pull_count: 1, last_pulled_at: lastPulledAt, pinned: false });
    // The signature tag is the least recently pulled: by LRU alone it would go first.
    await db('tags').insert([tag('1.0', IMAGE, 100), tag(`sha256-${'a'.repeat(64)}.sig`, SIGNATURE, 1)]);
  }, 60_000);

  afterAll(() => backend?.cleanup());

  it('offers the image, an orphaned referrer, but neither the subject-linked referrer nor the cosign signature tag', async () => {
    const found = await new ContentUsage(backend.db).evictionCandidates(orgId, 'lru', 1000, 10);
    expect(found.map((c) => (c.kind === 'tag' ? `tag:${c.tag}` : `manifest:${c.digest}`))).toEqual([`manifest:${ORPHAN_SBOM}`, 'tag:1.0']);
  });

  it('offers the signature tag once its subject is gone', async () => {
    await backend.db('tags').where({ repo_id: repoId, name: '1.0' }).delete();
    await backend.db('manifests').where({ repo_id: repoId, digest: IMAGE }).delete();
    const found = await new ContentUsage(backend.db).evictionCandidates(orgId, 'lru', 1000, 10);
    expect(found.map((c) => (c.kind === 'tag' ? `tag:${c.tag}` : `manifest:${c.digest}`))).toEqual([`manifest:${SBOM}`, `manifest:${ORPHAN_SBOM}`, `tag:sha256-${'a'.repeat(64)}.sig`]);
  });
});
