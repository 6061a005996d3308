import { Knex } from 'knex';
import { Migration } from '../database';

/** Digest column width: sha512 digests are 135 characters. */
const DIGEST = 140;

export const coreSchema: Migration = {
  name: '0001-core-schema',
  async up(db: Knex) {
    await db.schema.createTable('users', (t) => {
      t.increments('id');
      t.string('username', 255).notNullable().unique();
      t.string('password_hash', 255);
      t.string('email', 255);
      t.boolean('is_superuser').notNullable().defaultTo(false);
      t.bigInteger('created_at').notNullable();
    });
    await db.schema.createTable('organizations', (t) => {
      t.increments('id');
      t.string('name', 255).notNullable().unique();
      t.boolean('is_public').notNullable().defaultTo(false);
      t.string('email', 255);
      t.bigInteger('created_at').notNullable();
    });
    await db.schema.createTable('org_members', (t) => {
      t.integer('org_id').unsigned().notNullable().references('organizations.id').onDelete('CASCADE');
      t.integer('user_id').unsigned().notNullable().references('users.id').onDelete('CASCADE');
      t.string('role', 16).notNullable();
      t.primary(['org_id', 'user_id']);
    });
    await db.schema.createTable('robots', (t) => {
      t.increments('id');
      t.integer('org_id').unsigned().notNullable().references('organizations.id').onDelete('CASCADE');
      t.string('short_name', 255).notNullable();
      t.string('token_hash', 64).notNullable();
      t.string('description', 1024);
      t.bigInteger('created_at').notNullable();
      t.unique(['org_id', 'short_name']);
      t.index(['token_hash']);
    });
    await db.schema.createTable('repositories', (t) => {
      t.increments('id');
      t.integer('org_id').unsigned().notNullable().references('organizations.id').onDelete('CASCADE');
      t.string('name', 255).notNullable();
      t.string('visibility', 16);
      t.string('description', 4096);
      t.bigInteger('created_at').notNullable();
      t.unique(['org_id', 'name']);
    });
    await db.schema.createTable('permissions', (t) => {
      t.integer('repo_id').unsigned().notNullable().references('repositories.id').onDelete('CASCADE');
      t.string('subject_kind', 8).notNullable();
      t.integer('subject_id').unsigned().notNullable();
      t.string('role', 8).notNullable();
      t.primary(['repo_id', 'subject_kind', 'subject_id']);
      t.index(['subject_kind', 'subject_id']);
    });
    await db.schema.createTable('prototypes', (t) => {
      t.string('id', 36).primary();
      t.integer('org_id').unsigned().notNullable().references('organizations.id').onDelete('CASCADE');
      t.string('delegate_kind', 8).notNullable();
      t.integer('delegate_id').unsigned().notNullable();
      t.string('role', 8).notNullable();
      t.bigInteger('created_at').notNullable();
      t.unique(['org_id', 'delegate_kind', 'delegate_id']);
    });
    await db.schema.createTable('blobs', (t) => {
      t.string('digest', DIGEST).primary();
      t.bigInteger('size').notNullable();
      t.bigInteger('created_at').notNullable();
    });
    await db.schema.createTable('repo_blobs', (t) => {
      t.integer('repo_id').unsigned().notNullable().references('repositories.id').onDelete('CASCADE');
      t.string('digest', DIGEST).notNullable();
      t.bigInteger('created_at').notNullable();
      t.primary(['repo_id', 'digest']);
      t.index(['digest']);
    });
    await db.schema.createTable('manifests', (t) => {
      t.integer('repo_id').unsigned().notNullable().references('repositories.id').onDelete('CASCADE');
      t.string('digest', DIGEST).notNullable();
      t.string('media_type', 255).notNullable();
      t.bigInteger('size').notNullable();
      t.string('artifact_type', 255);
      t.string('subject_digest', DIGEST);
      t.text('annotations');
      t.bigInteger('created_at').notNullable();
      t.primary(['repo_id', 'digest']);
      t.index(['repo_id', 'subject_digest']);
    });
    await db.schema.createTable('manifest_refs', (t) => {
      t.integer('repo_id').unsigned().notNullable().references('repositories.id').onDelete('CASCADE');
      t.string('manifest_digest', DIGEST).notNullable();
      t.string('child_digest', DIGEST).notNullable();
      t.string('child_kind', 8).notNullable();
      t.primary(['repo_id', 'manifest_digest', 'child_digest']);
      t.index(['child_digest']);
      t.index(['repo_id', 'child_digest']);
    });
    await db.schema.createTable('tags', (t) => {
      t.integer('repo_id').unsigned().notNullable().references('repositories.id').onDelete('CASCADE');
      t.string('name', 128).notNullable();
      t.string('manifest_digest', DIGEST).notNullable();
      t.bigInteger('updated_at').notNullable();
      t.bigInteger('last_pulled_at');
      t.integer('pull_count').notNullable().defaultTo(0);
      t.boolean('pinned').notNullable().defaultTo(false);
      t.primary(['repo_id', 'name']);
      t.index(['repo_id', 'manifest_digest']);
    });
    await db.schema.createTable('uploads', (t) => {
      t.string('id', 64).primary();
      t.integer('repo_id').unsigned().notNullable().references('repositories.id').onDelete('CASCADE');
      t.bigInteger('created_at').notNullable();
    });
    await db.schema.createTable('audit_logs', (t) => {
      t.bigIncrements('id');
      t.string('entry_id', 64).notNullable().unique();
      t.integer('org_id').unsigned();
      t.string('repo', 255);
      t.string('kind', 64).notNullable();
      t.string('performer_kind', 16);
      t.string('performer_name', 255);
      t.string('ip', 64);
      t.string('user_agent', 512);
      t.text('metadata');
      t.bigInteger('created_at').notNullable();
      t.index(['org_id', 'created_at']);
    });
    await db.schema.createTable('login_failures', (t) => {
      t.string('key', 320).primary();
      t.integer('count').notNullable();
      t.bigInteger('first_at').notNullable();
      t.bigInteger('locked_until');
    });
    await db.schema.createTable('signing_keys', (t) => {
      t.string('id', 64).primary();
      t.text('private_pem').notNullable();
      t.text('public_pem').notNullable();
      t.bigInteger('created_at').notNullable();
    });
  },
};
