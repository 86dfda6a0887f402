import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { columnType } from '@privacykit/core/db';
import type { PackageMigrations } from '@privacykit/core/db';
import { demoSchemaMigration } from './demo/schema.js';

/**
 * The portal's own tables (`privacykit_portal_*`: staff, sessions, mail outbox, staff audit) and
 * the demo host schema, applied with core's `migrate(db, [portalMigrations, …packages])`.
 */
export const portalMigrations: PackageMigrations = {
  name: 'portal',
  migrations: {
    '0001_demo_schema': demoSchemaMigration,
    '0002_portal_tables': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('privacykit_portal_staff')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('email', columnType.shortText, (col) => col.notNull())
          .addColumn('name', columnType.shortText, (col) => col.notNull())
          .addColumn('role', sql`varchar(32)`, (col) => col.notNull())
          .addColumn('password_hash', columnType.shortText, (col) => col.notNull())
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addColumn('last_login_at', columnType.instant)
          .execute();
        await db.schema
          .createIndex('privacykit_portal_staff_email')
          .on('privacykit_portal_staff')
          .columns(['tenant', 'email'])
          .unique()
          .execute();

        await db.schema
          .createTable('privacykit_portal_sessions')
          .addColumn('sid', sql`varchar(128)`, (col) => col.primaryKey())
          .addColumn('data', columnType.text, (col) => col.notNull())
          .addColumn('expires_at', columnType.instant, (col) => col.notNull())
          .execute();
        await db.schema
          .createIndex('privacykit_portal_sessions_expiry')
          .on('privacykit_portal_sessions')
          .column('expires_at')
          .execute();

        await db.schema
          .createTable('privacykit_portal_outbox')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('recipient', columnType.shortText, (col) => col.notNull())
          .addColumn('subject', columnType.shortText, (col) => col.notNull())
          .addColumn('body', columnType.text, (col) => col.notNull())
          .addColumn('sent_at', columnType.instant, (col) => col.notNull())
          .execute();

        // Staff actions that no package audits itself (retention runs, holds, scans, logins).
        await db.schema
          .createTable('privacykit_portal_audit')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('at', columnType.instant, (col) => col.notNull())
          .addColumn('actor', columnType.shortText, (col) => col.notNull())
          .addColumn('action', sql`varchar(64)`, (col) => col.notNull())
          .addColumn('target', columnType.shortText)
          .addColumn('detail', columnType.text)
          .execute();
        await db.schema
          .createIndex('privacykit_portal_audit_at')
          .on('privacykit_portal_audit')
          .columns(['tenant', 'at'])
          .execute();
      },
      async down(db: Kysely<any>) {
        for (const table of ['audit', 'outbox', 'sessions', 'staff']) {
          await db.schema.dropTable(`privacykit_portal_${table}`).ifExists().execute();
        }
      },
    },
    '0003_request_exports': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('privacykit_portal_request_exports')
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('request_id', columnType.id, (col) => col.notNull())
          .addColumn('export_id', columnType.id, (col) => col.notNull())
          .addColumn('format', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('created_by', columnType.shortText, (col) => col.notNull())
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addPrimaryKeyConstraint('privacykit_portal_request_exports_pk', [
            'tenant',
            'request_id',
            'export_id',
          ])
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable('privacykit_portal_request_exports').ifExists().execute();
      },
    },
    '0004_four_eyes': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('privacykit_portal_approvals')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('action', sql`varchar(64)`, (col) => col.notNull())
          .addColumn('target', columnType.id, (col) => col.notNull())
          .addColumn('requested_by', columnType.shortText, (col) => col.notNull())
          .addColumn('requested_at', columnType.instant, (col) => col.notNull())
          .addColumn('approved_by', columnType.shortText)
          .addColumn('approved_at', columnType.instant)
          .execute();
        await db.schema
          .createIndex('privacykit_portal_approvals_target')
          .on('privacykit_portal_approvals')
          .columns(['tenant', 'action', 'target'])
          .execute();
        // An export is available to the requester only once a second staff member released it.
        await db.schema
          .alterTable('privacykit_portal_request_exports')
          .addColumn('released_by', columnType.shortText)
          .execute();
        await db.schema
          .alterTable('privacykit_portal_request_exports')
          .addColumn('released_at', columnType.instant)
          .execute();
        // Packages made before the rule stay available as they were.
        await db
          .updateTable('privacykit_portal_request_exports')
          .set((eb) => ({ released_at: eb.ref('created_at'), released_by: eb.ref('created_by') }))
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable('privacykit_portal_approvals').ifExists().execute();
        await db.schema.alterTable('privacykit_portal_request_exports').dropColumn('released_at').execute();
        await db.schema.alterTable('privacykit_portal_request_exports').dropColumn('released_by').execute();
      },
    },
    '0005_return_codes': {
      async up(db: Kysely<any>) {
        // Fresh codes for visitors returning to a verified request from a new session.
        await db.schema
          .createTable('privacykit_portal_return_codes')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('request_id', columnType.id)
          .addColumn('code_hash', sql`varchar(64)`, (col) => col.notNull())
          .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addColumn('expires_at', columnType.instant, (col) => col.notNull())
          .addColumn('consumed_at', columnType.instant)
          .execute();
        await db.schema
          .createIndex('privacykit_portal_return_codes_request')
          .on('privacykit_portal_return_codes')
          .columns(['tenant', 'request_id', 'created_at'])
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable('privacykit_portal_return_codes').ifExists().execute();
      },
    },
    '0006_staff_creators': {
      async up(db: Kysely<any>) {
        // Who created each staff account (null: the first admin, or one made outside the portal).
        // Four eyes: an account the requester made, directly or through accounts they made, knows
        // the password they gave it, so it cannot approve their requests.
        await db.schema
          .alterTable('privacykit_portal_staff')
          .addColumn('created_by', columnType.id)
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.alterTable('privacykit_portal_staff').dropColumn('created_by').execute();
      },
    },
    '0007_staff_disabled': {
      async up(db: Kysely<any>) {
        // An account an administrator disabled (a member who left, a compromised password): it
        // signs in no more and its sessions end at their next request. Kept, not deleted, for
        // the audit trail and the four-eyes record of who created whom.
        await db.schema
          .alterTable('privacykit_portal_staff')
          .addColumn('disabled_at', columnType.instant)
          .execute();
        await db.schema
          .alterTable('privacykit_portal_staff')
          .addColumn('disabled_by', columnType.id)
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.alterTable('privacykit_portal_staff').dropColumn('disabled_by').execute();
        await db.schema.alterTable('privacykit_portal_staff').dropColumn('disabled_at').execute();
      },
    },
    '0007_own_passwords': {
      async up(db: Kysely<any>) {
        // 1: the password was chosen by the account's creator, and its owner must replace it at
        // their next sign-in. Accounts another staff member created before this migration never
        // had a way to change theirs, so they all do.
        await db.schema
          .alterTable('privacykit_portal_staff')
          .addColumn('password_change_due', columnType.flag, (col) => col.notNull().defaultTo(0))
          .execute();
        await db
          .updateTable('privacykit_portal_staff')
          .set({ password_change_due: 1 })
          .where('created_by', 'is not', null)
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.alterTable('privacykit_portal_staff').dropColumn('password_change_due').execute();
      },
    },
  },
};
