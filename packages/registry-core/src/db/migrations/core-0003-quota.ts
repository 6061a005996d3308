import { Knex } from 'knex';
import { Migration } from '../database';

/**
 * Storage quotas per organization, declared sizes of referenced content (so
 * usage counts an image whole from the moment its manifest is stored), and when
 * a blob lost its last reference (garbage collection waits a grace period so
 * downloads in progress finish).
 */
export const quotaSchema: Migration = {
  name: '0003-quota',
  async up(db: Knex) {
    await db.schema.createTable('org_quotas', (t) => {
      t.string('id', 36).primary();
      t.integer('org_id').unsigned().notNullable().unique().references('organizations.id').onDelete('CASCADE');
      t.bigInteger('limit_bytes').notNullable();
      t.string('eviction_policy', 8).notNullable().defaultTo('lru');
      t.bigInteger('created_at').notNullable();
    });
    await db.schema.alterTable('manifest_refs', (t) => {
      t.bigInteger('size');
    });
    await db.schema.alterTable('blobs', (t) => {
      t.bigInteger('released_at');
    });
  },
};
