import type { Migration } from '@entrepot/registry-core';

/**
 * Lifecycle settings of cache organizations (idle expiry, refresh ahead,
 * prefetch of changed tags, eviction watermark), the record of lifecycle job
 * runs, and the pull count at each tag's last check (to tell hot tags).
 */
export const lifecycleSchema: Migration = {
  name: '0102-proxy-cache-lifecycle',
  async up(db) {
    await db.schema.alterTable('proxy_cache_configs', (t) => {
      t.integer('idle_expiration_s');
      t.integer('refresh_min_pulls');
      t.boolean('prefetch_changed_tags').notNullable().defaultTo(false);
      t.double('low_watermark');
    });
    await db.schema.alterTable('proxy_cache_tags', (t) => {
      t.integer('pulls_at_check').notNullable().defaultTo(0);
    });
    await db.schema.createTable('proxy_cache_job_runs', (t) => {
      t.increments('id').primary();
      t.integer('org_id').unsigned().notNullable().references('organizations.id').onDelete('CASCADE');
      t.string('job', 32).notNullable();
      t.string('state', 16).notNullable();
      t.string('replica', 64).notNullable();
      t.bigInteger('started_at').notNullable();
      t.integer('duration_ms').notNullable();
      t.text('summary');
      t.index(['org_id', 'started_at']);
    });
  },
};
