import { Knex } from 'knex';
import { Migration } from '../database';

/**
 * Robots keep, next to the hash that authenticates their token, a copy sealed
 * with the instance's secret key (AES-256-GCM) so that organization
 * administrators can read the token again, as Quay allows.
 */
export const robotTokenSecret: Migration = {
  name: '0002-robot-token-secret',
  async up(db: Knex) {
    await db.schema.alterTable('robots', (t) => {
      t.text('token_sealed');
    });
  },
};
