import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knex from 'knex';
import { createDb, ensureDatabaseExists, type Db } from '../../src/db/database';
import { createPointReads } from '../../src/db/point-reads';

const MYSQL_URL = process.env.ENTREPOT_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';

async function withTable(db: Db): Promise<void> {
  await db.schema.createTable('things', (t) => {
    t.increments('id');
    t.string('name', 64).notNullable().unique();
    t.integer('size').notNullable();
  });
}

describe('point reads on SQLite', () => {
  let dir: string;
  let db: Db;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'entrepot-pr-'));
    db = createDb({ database: { client: 'sqlite', filename: join(dir, 'e.db') }, data_dir: dir });
    await withTable(db);
  });

  afterEach(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sees every committed write, and only committed writes, without waiting for the pool', async () => {
    const reads = createPointReads(db);
    try {
      const byName = reads.statement('SELECT id, name, size FROM things WHERE name = ? LIMIT 1');
      expect(await byName.first(['a'])).toBeUndefined();
      await db('things').insert({ name: 'a', size: 1 });
      expect(await byName.first(['a'])).toEqual({ id: 1, name: 'a', size: 1 });

      // The pool's only connection is held by an open transaction: a knex read
      // would queue behind it, a point read answers at once with the committed state.
      let commit!: () => void;
      const held = new Promise<void>((resolve) => (commit = resolve));
      const transaction = db.transaction(async (trx) => {
        await trx('things').where({ name: 'a' }).update({ size: 2 });
        await trx('things').insert({ name: 'b', size: 3 });
        await held;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await byName.first(['a'])).toEqual({ id: 1, name: 'a', size: 1 });
      expect(await byName.first(['b'])).toBeUndefined();
      commit();
      await transaction;
      expect(await byName.first(['a'])).toEqual({ id: 1, name: 'a', size: 2 });
      expect(await byName.first(['b'])).toEqual({ id: 2, name: 'b', size: 3 });
    } finally {
      reads.close();
    }
  });

  it('cannot write through its connection', async () => {
    const reads = createPointReads(db);
    try {
      // Compared by code: the addon raises its errors from the first test file's realm, so they are not `instanceof Error` here.
      const outcome = await reads
        .statement('INSERT INTO things (name, size) VALUES (?, ?) RETURNING id')
        .first(['z', 1])
        .then(
          () => 'written',
          (err: { code?: string }) => err.code,
        );
      expect(outcome).toBe('SQLITE_READONLY');
    } finally {
      reads.close();
    }
    expect(await db('things').count({ n: '*' }).first()).toEqual({ n: 0 });
  });

  it('reads an in-memory database through the pool, the only connection that sees it', async () => {
    const memory = createDb({ database: { client: 'sqlite', filename: ':memory:' }, data_dir: dir });
    try {
      await withTable(memory);
      await memory('things').insert({ name: 'm', size: 7 });
      const reads = createPointReads(memory);
      expect(await reads.statement('SELECT name, size FROM things WHERE name = ? LIMIT 1').first(['m'])).toEqual({ name: 'm', size: 7 });
      expect(await reads.statement('SELECT name FROM things WHERE name = ? LIMIT 1').first(['none'])).toBeUndefined();
      reads.close();
    } finally {
      await memory.destroy();
    }
  });
});

describe('point reads on MariaDB', () => {
  const url = new URL(MYSQL_URL);
  const settings = {
    client: 'mysql' as const,
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    database: `entrepot_pr_${randomBytes(4).toString('hex')}`,
    pool_max: 2,
  };
  let db: Db;

  beforeAll(async () => {
    await ensureDatabaseExists({ database: settings });
    db = createDb({ database: settings, data_dir: '/nonexistent' });
    await withTable(db);
  });

  afterAll(async () => {
    await db.destroy();
    const admin = knex({ client: 'mysql2', connection: { host: settings.host, port: settings.port, user: settings.user, password: settings.password } });
    await admin.raw('DROP DATABASE IF EXISTS ??', [settings.database]);
    await admin.destroy();
  });

  it('returns the first row or nothing, with the same SQL as on SQLite', async () => {
    const reads = createPointReads(db);
    const byName = reads.statement('SELECT id, name, size FROM things WHERE name = ? LIMIT 1');
    expect(await byName.first(['x'])).toBeUndefined();
    await db('things').insert([{ name: 'x', size: 5 }, { name: 'y', size: 6 }]);
    expect(await byName.first(['y'])).toEqual({ id: 2, name: 'y', size: 6 });
    reads.close();
  });
});
