import { Knex } from 'knex';
import { Migration } from '../database';

/**
 * Quota thresholds (Quay's quota limits): `Warning` raises an audit entry and a
 * metric when usage crosses it, `Reject` is the hard limit a cache organization's
 * eviction keeps usage under. `crossed` remembers that a Warning was reported, so
 * it is reported once per crossing.
 */
export const quotaLimits: Migration = {
  name: '0006-quota-limits',
  async up(db: Knex) {
    await db.schema.createTable('quota_limits', (t) => {
      t.increments('id').primary();
      t.integer('org_id').unsigned().notNullable().references('organizations.id').onDelete('CASCADE');
      t.string('type', 8).notNullable();
      t.integer('percent').notNullable();
      t.boolean('crossed').notNullable().defaultTo(false);
      t.bigInteger('created_at').notNullable();
      t.unique(['org_id', 'type', 'percent']);
    });
  },
};
