import type { Migration } from '../core-types';

export const proxyCacheSchema: Migration = {
  name: '0100-proxy-cache-schema',
  async up(db) {
    await db.schema.createTable('proxy_cache_configs', (t) => {
      t.integer('org_id').unsigned().primary().references('organizations.id').onDelete('CASCADE');
      t.string('upstream_registry', 512).notNullable();
      t.string('upstream_endpoint', 512);
      t.string('username', 255);
      t.text('password_sealed');
      t.integer('expiration_s').notNullable();
      t.boolean('insecure').notNullable().defaultTo(false);
      t.integer('stale_if_error_s').notNullable();
      t.string('on_upstream_404', 8).notNullable().defaultTo('remove');
      t.bigInteger('created_at').notNullable();
      t.bigInteger('updated_at').notNullable();
    });
    await db.schema.createTable('proxy_cache_tags', (t) => {
      t.integer('repo_id').unsigned().notNullable().references('repositories.id').onDelete('CASCADE');
      t.string('tag', 128).notNullable();
      t.string('upstream_digest', 140).notNullable();
      t.bigInteger('checked_at').notNullable();
      t.primary(['repo_id', 'tag']);
    });
  },
};

/**
 * Referrer lists fetched from upstreams (with when they were last confirmed),
 * and the signature policy of cache organizations.
 */
export const referrersAndSignatures: Migration = {
  name: '0103-proxy-cache-referrers-signatures',
  async up(db) {
    await db.schema.createTable('proxy_cache_referrers', (t) => {
      t.integer('repo_id').unsigned().notNullable().references('repositories.id').onDelete('CASCADE');
      t.string('subject_digest', 140).notNullable();
      t.text('descriptors').notNullable();
      t.bigInteger('checked_at').notNullable();
      t.primary(['repo_id', 'subject_digest']);
    });
    await db.schema.alterTable('proxy_cache_configs', (t) => {
      t.boolean('require_signature').notNullable().defaultTo(false);
      t.text('signature_keys');
    });
  },
};

/** Per organization: whether a Range request for an uncached blob also fills the whole blob. */
export const fillOnRangeColumn: Migration = {
  name: '0104-proxy-cache-fill-on-range',
  async up(db) {
    await db.schema.alterTable('proxy_cache_configs', (t) => {
      t.string('fill_on_range', 8).notNullable().defaultTo('always');
    });
  },
};
