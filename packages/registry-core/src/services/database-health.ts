import type { Db } from '../db/database';

/** Whether the database answers a trivial query; never throws (for `/health/endtoend`). */
export function databaseProbe(db: Db): () => Promise<boolean> {
  return () => db.raw('select 1').then(() => true, () => false);
}
