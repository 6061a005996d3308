import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import knex, { Knex } from 'knex';
import { Config } from '../config/config';

export type Db = Knex;

/** A migration contributed by the core or a plugin; names must be globally unique and sortable. */
export interface Migration {
  name: string;
  up(db: Knex): Promise<void>;
  down?(db: Knex): Promise<void>;
}

/** What the SQLite connection setup needs of a better-sqlite3 database. */
interface SqliteConnection {
  pragma(sql: string): unknown;
  prepare(sql: string): SqliteStatement;
}

interface SqliteStatement {
  safeIntegers(enabled: boolean): unknown;
}

/** Distinct statements kept prepared per SQLite connection. */
const PREPARED_STATEMENTS = 500;

/**
 * knex prepares every query anew; the pull path repeats a handful of
 * statements thousands of times a second. better-sqlite3 statements are
 * reusable (knex runs them to completion with `all`/`run`), so the
 * connection keeps the most recently used ones.
 */
function reusePreparedStatements(conn: SqliteConnection): void {
  const prepare = conn.prepare.bind(conn);
  const prepared = new Map<string, SqliteStatement>();
  conn.prepare = (sql: string): SqliteStatement => {
    const cached = prepared.get(sql);
    if (cached) {
      // Most recently used last; back to the database's default integer mode (knex sets it per query when asked).
      prepared.delete(sql);
      prepared.set(sql, cached);
      cached.safeIntegers(false);
      return cached;
    }
    const statement = prepare(sql);
    prepared.set(sql, statement);
    if (prepared.size > PREPARED_STATEMENTS) prepared.delete(prepared.keys().next().value as string);
    return statement;
  };
}

/**
 * Lets pending requests run. better-sqlite3 answers synchronously, so a loop
 * awaiting many queries never gives up the event loop by itself; long
 * background passes (statistics, eviction, garbage collection) call this
 * between steps so the pull path is not held up behind them.
 */
export function yieldToRequests(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function createDb(config: Pick<Config, 'database' | 'data_dir'>): Db {
  const database = config.database;
  if (database.client === 'sqlite') {
    const filename = database.filename ?? join(config.data_dir, 'entrepot.db');
    if (filename !== ':memory:') mkdirSync(dirname(filename), { recursive: true });
    return knex({
      client: 'better-sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      pool: {
        min: 1,
        max: 1,
        afterCreate(conn: SqliteConnection, done: (err: Error | null, conn: unknown) => void) {
          // WAL lets readers proceed during writes; busy_timeout rides out short write locks.
          conn.pragma('journal_mode = WAL');
          conn.pragma('synchronous = NORMAL');
          conn.pragma('busy_timeout = 5000');
          conn.pragma('foreign_keys = ON');
          reusePreparedStatements(conn);
          done(null, conn);
        },
      },
    });
  }
  return knex({
    client: 'mysql2',
    connection: {
      host: database.host,
      port: database.port,
      user: database.user,
      password: database.password,
      database: database.database,
      charset: 'utf8mb4',
      supportBigNumbers: true,
      bigNumberStrings: false,
    },
    pool: {
      min: 0,
      max: database.pool_max,
      afterCreate(conn: { query(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, conn: unknown) => void) {
        // READ COMMITTED avoids InnoDB gap locks on the hot insert paths (manifests,
        // references, links), and a short lock wait turns a stuck transaction into a
        // quick, retryable error instead of a pool starved for 50 s.
        conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', (err) => {
          if (err) return done(err, conn);
          conn.query('SET SESSION innodb_lock_wait_timeout = 10', (err2) => done(err2, conn));
        });
      },
    },
    acquireConnectionTimeout: 10_000,
  });
}

/** How to take the rows out of a `db.raw` result: mysql2 answers [rows, fields], better-sqlite3 the rows. */
export function rawRowsOf(db: Db): <Row>(result: unknown) => Row[] {
  return db.client.config.client === 'mysql2' ? <Row>(result: unknown) => (result as [Row[]])[0] : <Row>(result: unknown) => result as Row[];
}

/**
 * Whether an insert failed because the row it refers to is gone: a repository
 * (or organization) deleted while a push to it was being stored.
 */
export function isMissingParentRow(err: unknown): boolean {
  const e = err as { code?: string; errno?: number };
  return e?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || e?.code === 'ER_NO_REFERENCED_ROW_2' || e?.errno === 1452;
}

function isRetryableConflict(err: unknown): boolean {
  const e = err as { code?: string; errno?: number };
  return e?.code === 'ER_LOCK_DEADLOCK' || e?.code === 'ER_LOCK_WAIT_TIMEOUT' || e?.code === 'SQLITE_BUSY';
}

/**
 * Runs `work` in a transaction, retrying a few times when the database picked it
 * as a deadlock victim (or timed out its lock wait): with concurrent fills,
 * evictions and flushes that is expected, and the work is safe to run again.
 */
export async function inTransaction<T>(db: Db, work: (trx: Knex.Transaction) => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(work);
    } catch (err) {
      if (attempt >= attempts || !isRetryableConflict(err)) throw err;
      await new Promise((r) => setTimeout(r, 10 * attempt + Math.floor(Math.random() * 20)));
    }
  }
}

/** Creates the MySQL database if needed (the server-level connection is short-lived). */
export async function ensureDatabaseExists(config: Pick<Config, 'database'>): Promise<void> {
  const database = config.database;
  if (database.client !== 'mysql') return;
  const admin = knex({
    client: 'mysql2',
    connection: { host: database.host, port: database.port, user: database.user, password: database.password },
    pool: { min: 0, max: 1 },
  });
  try {
    await admin.raw('CREATE DATABASE IF NOT EXISTS ?? CHARACTER SET utf8mb4 COLLATE utf8mb4_bin', [database.database]);
  } finally {
    await admin.destroy();
  }
}

/** Runs core and plugin migrations in name order; safe to call from several replicas at once (knex locks). */
export async function migrate(db: Db, migrations: readonly Migration[]): Promise<void> {
  const sorted = [...migrations].sort((a, b) => a.name.localeCompare(b.name));
  const source: Knex.MigrationSource<Migration> = {
    getMigrations: async () => sorted,
    getMigrationName: (m) => m.name,
    getMigration: async (m) => ({ up: (k: Knex) => m.up(k), down: (k: Knex) => (m.down ? m.down(k) : Promise.resolve()) }),
  };
  await db.migrate.latest({ migrationSource: source, tableName: 'entrepot_migrations' });
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; errno?: number };
  return e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'ER_DUP_ENTRY';
}
