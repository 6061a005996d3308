import { Knex } from 'knex';
import { Migration } from '../database';

/**
 * Quay's teams: named groups of users and robots in an organization with an
 * organization role (`member`, `creator`, `admin`). A team's repository roles live
 * in `permissions` (subject kind `team`) and its default permissions in
 * `prototypes` (delegate kind `team`), beside those of users and robots.
 */
export const teams: Migration = {
  name: '0006-teams',
  async up(db: Knex) {
    await db.schema.createTable('teams', (t) => {
      t.increments('id').primary();
      t.integer('org_id').unsigned().notNullable().references('organizations.id').onDelete('CASCADE');
      t.string('name', 255).notNullable();
      t.string('description', 1024).notNullable().defaultTo('');
      t.string('role', 8).notNullable();
      t.bigInteger('created_at').notNullable();
      t.unique(['org_id', 'name']);
    });
    await db.schema.createTable('team_members', (t) => {
      t.integer('team_id').unsigned().notNullable().references('teams.id').onDelete('CASCADE');
      t.string('subject_kind', 8).notNullable();
      t.integer('subject_id').unsigned().notNullable();
      t.primary(['team_id', 'subject_kind', 'subject_id']);
      t.index(['subject_kind', 'subject_id']);
    });
  },
};
