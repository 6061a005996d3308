import Database from 'better-sqlite3';
import { rawRowsOf, type Db } from './database';

export type Row = Record<string, unknown>;
export type Param = string | number;

/** One single-row lookup by key, written once in SQL that SQLite and MariaDB both accept. */
export interface PointRead {
  first(params: readonly Param[]): Promise<Row | undefined>;
}

/**
 * The handful of lookups every pull makes (organization, repository, tag,
 * freshness, blob link, permissions). Through knex each one builds and
 * compiles a query and takes the pool's only SQLite connection, several
 * times the cost of running it; here
 * the SQL is fixed, so SQLite runs prepared statements on a read-only
 * connection of its own. WAL mode lets that connection read while the pool's
 * connection writes, and a statement reads everything committed before it
 * started, so these lookups must not be used inside a transaction that
 * expects to see its own writes. MariaDB keeps the pool.
 */
export interface PointReads {
  statement(sql: string): PointRead;
  close(): void;
}

export function createPointReads(db: Db): PointReads {
  const filename = sqliteFilename(db);
  return filename ? new SqlitePointReads(filename) : new KnexPointReads(db);
}

/** The database file of a knex better-sqlite3 instance; null for MariaDB and for an in-memory database (a second connection would see another one). */
function sqliteFilename(db: Db): string | null {
  const config = db.client.config as { client?: unknown; connection?: { filename?: unknown } };
  if (config.client !== 'better-sqlite3') return null;
  const filename = config.connection?.filename;
  return typeof filename === 'string' && filename !== ':memory:' ? filename : null;
}

class SqlitePointReads implements PointReads {
  private readonly connection: Database.Database;

  constructor(filename: string) {
    this.connection = new Database(filename, { readonly: true, fileMustExist: true });
    this.connection.pragma('busy_timeout = 5000');
  }

  statement(sql: string): PointRead {
    const prepared = this.connection.prepare<Param[], Row>(sql);
    return { first: async (params) => prepared.get(...params) };
  }

  close(): void {
    this.connection.close();
  }
}

class KnexPointReads implements PointReads {
  private readonly rowsOf: <R>(result: unknown) => R[];

  constructor(private readonly db: Db) {
    this.rowsOf = rawRowsOf(db);
  }

  statement(sql: string): PointRead {
    return { first: async (params) => this.rowsOf<Row>(await this.db.raw(sql, [...params]))[0] };
  }

  close(): void {
    // The pool belongs to the knex instance.
  }
}
