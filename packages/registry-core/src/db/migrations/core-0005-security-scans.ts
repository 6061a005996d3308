import { Knex } from 'knex';
import { Migration } from '../database';

const DIGEST = 140;

/**
 * Clair scan results per manifest digest (the report depends only on the
 * content, so every repository holding the manifest shares it) and each
 * organization's pull policy.
 */
export const securityScans: Migration = {
  name: '0005-security-scans',
  async up(db: Knex) {
    await db.schema.createTable('security_scans', (t) => {
      t.string('manifest_digest', DIGEST).primary();
      /** queued | scanned | failed | unsupported */
      t.string('status', 16).notNullable();
      t.text('reason');
      /** Clair errors counted towards `failed` since the scan was last queued. */
      t.integer('attempts').notNullable().defaultTo(0);
      /** Clair's indexer state (index_state ETag) the report was made under. */
      t.string('indexer_state', 255);
      /** JSON: vulnerability counts by severity. */
      t.text('counts');
      /** JSON: one entry per (vulnerability, package), highest severity first. */
      t.text('findings', 'longtext');
      /** JSON: the report in Quay's `Layer` shape. */
      t.text('report', 'longtext');
      t.bigInteger('queued_at').notNullable();
      t.bigInteger('scanned_at');
      t.bigInteger('updated_at').notNullable();
      t.index(['status', 'updated_at']);
    });
    await db.schema.createTable('org_security_policies', (t) => {
      t.integer('org_id').unsigned().primary().references('organizations.id').onDelete('CASCADE');
      /** Lowest severity that refuses a pull; null: the policy is off. */
      t.string('block_pulls_at_severity', 16);
      t.boolean('block_unscanned').notNullable().defaultTo(false);
      /** JSON array of vulnerability names that never refuse a pull. */
      t.text('allowlist').notNullable();
      t.bigInteger('updated_at').notNullable();
    });
  },
};
