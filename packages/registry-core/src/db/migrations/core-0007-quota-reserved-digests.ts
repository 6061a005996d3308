import { Knex } from 'knex';
import { Migration } from '../database';

/** Digest column width: sha512 digests are 135 characters. */
const DIGEST = 140;

/**
 * What each quota reservation counts, digest by digest: a measurement counts a
 * digest once whether it is referenced, reserved, or both (a blob linked just
 * before its reservation is released), and an admission does not count again
 * what another admission is still storing.
 */
export const quotaReservedDigests: Migration = {
  name: '0007-quota-reserved-digests',
  async up(db: Knex) {
    await db.schema.createTable('quota_reserved_digests', (t) => {
      t.string('reservation_id', 36).notNullable().references('quota_reservations.id').onDelete('CASCADE');
      t.integer('org_id').unsigned().notNullable();
      t.string('digest', DIGEST).notNullable();
      t.bigInteger('size').notNullable();
      t.primary(['reservation_id', 'digest']);
      t.index(['org_id', 'digest']);
    });
  },
};
