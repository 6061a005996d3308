import { Knex } from 'knex';
import { Migration } from '../database';

/**
 * What admission decisions count against a quota without measuring the whole
 * organization each time: the last measured figure (grown by every admission
 * since), reservations of admissions whose content is still being stored, and
 * an index to find an organization's manifests by digest.
 */
export const quotaCounting: Migration = {
  name: '0004-quota-counting',
  async up(db: Knex) {
    await db.schema.alterTable('org_quotas', (t) => {
      t.bigInteger('counted_bytes');
      t.bigInteger('counted_at');
    });
    // Admission asks whether an organization already holds a manifest, by digest.
    await db.schema.alterTable('manifests', (t) => {
      t.index(['digest']);
    });
    await db.schema.createTable('quota_reservations', (t) => {
      t.string('id', 36).primary();
      t.integer('org_id').unsigned().notNullable().references('organizations.id').onDelete('CASCADE');
      t.bigInteger('bytes').notNullable();
      t.bigInteger('expires_at').notNullable();
      t.index(['org_id', 'expires_at']);
    });
  },
};
