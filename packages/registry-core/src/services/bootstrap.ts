import type { PasswordHasher } from '../auth/passwords';
import type { Db } from '../db/database';
import { isUniqueViolation } from '../db/database';
import type { Logger } from '../logging/logger';
import type { Clock } from './clock';

/** Creates the `name:password` superuser if no user of that name exists (ENTREPOT_BOOTSTRAP_ADMIN). */
export async function bootstrapAdmin(db: Db, passwords: PasswordHasher, clock: Clock, spec: string, logger: Logger): Promise<void> {
  const colon = spec.indexOf(':');
  const username = spec.slice(0, colon);
  if (await db('users').where({ username }).first('id')) return;
  try {
    await db('users').insert({ username, password_hash: await passwords.hash(spec.slice(colon + 1)), is_superuser: true, created_at: clock.now() });
    logger.info('bootstrap superuser created', { username });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
  }
}
