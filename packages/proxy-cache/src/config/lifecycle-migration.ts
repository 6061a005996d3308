import type { Migration } from '../core-types';

/**
 * Lifecycle settings of cache organizations (idle expiry, refresh ahead,
 * prefetch of changed tags, eviction watermark), the record of lifecycle job
 * runs, the pull count at each tag's last check (to tell hot tags), and the
 * hourly statistics behind the stats API and the dashboard.
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
    await db.schema.createTable('proxy_cache_stats', (t) => {
      t.integer('org_id').unsigned().notNullable().references('organizations.id').onDelete('CASCADE');
      t.bigInteger('hour').notNullable();
      // '' for what belongs to the organization as a whole (evictions, expiries).
      t.string('repo', 255).notNullable();
      for (const column of STATS_COLUMNS) t.bigInteger(column).notNullable().defaultTo(0);
      t.primary(['org_id', 'hour', 'repo']);
      t.index(['hour']);
    });
    await db.schema.createTable('proxy_cache_upstream_errors', (t) => {
      t.string('host', 255).notNullable();
      t.bigInteger('hour').notNullable();
      t.string('kind', 32).notNullable();
      t.bigInteger('count').notNullable().defaultTo(0);
      t.primary(['host', 'hour', 'kind']);
    });
    await db.schema.createTable('proxy_cache_upstream_status', (t) => {
      t.string('host', 255).primary();
      t.integer('ratelimit_remaining');
      t.bigInteger('ratelimit_at');
      t.string('last_error_kind', 32);
      t.bigInteger('last_error_at');
    });
  },
};

/** Counters of `proxy_cache_stats`, per organization, hour and repository. */
export const STATS_COLUMNS = [
  'pulls',
  'cache_requests',
  'upstream_requests',
  'cache_bytes',
  'upstream_bytes',
  'revalidated_unchanged',
  'revalidated_changed',
  'stale_serves',
  'evictions',
  'evicted_bytes',
  'expiries',
  'expired_bytes',
] as const;
export type StatsColumn = (typeof STATS_COLUMNS)[number];
