import { columnType, engineOf } from '@privacykit/core/db';
import type { PackageMigrations } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/** Big JSON payloads: `text` is 64 KB on MySQL, so plans and reports use `mediumtext` there. */
function bigJson(db: Kysely<any>) {
  return engineOf(db) === 'mysql' ? sql`mediumtext` : columnType.json;
}

/**
 * Tables of `@privacykit/erasure` (apply with core's `migrate(db, [erasureMigrations])`):
 * - `privacykit_erasure_plans` — one per erasure request: the plan, its per-request secrets,
 *   status, execution report and verification result;
 * - `privacykit_erasure_retained` — the rows a plan keeps, with their Art 17(3) ground and date;
 * - `privacykit_erasure_progress` — per plan and table: cursor and counts, for resuming;
 * - `privacykit_erasure_restrictions` — rows restricted to storage only (Art 18(2));
 * - `privacykit_erasure_outbox` — Art 19 notifications to recipients, with attempts and receipts.
 *
 * `0002_execution_lease` adds the plan's execution lease (owner token and expiry, so only one
 * worker executes a plan at a time) and the time its identities were purged.
 *
 * `0003_superseded_by` adds the plan that replaced a plan never run (`planErasure` with
 * `replace: true`; the replaced plan's status is then `superseded`).
 */
export const erasureMigrations: PackageMigrations = {
  name: 'erasure',
  migrations: {
    '0001_init': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('privacykit_erasure_plans')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('request_id', columnType.shortText)
          .addColumn('status', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('plan', bigJson(db), (col) => col.notNull())
          .addColumn('hmac_key', columnType.hash, (col) => col.notNull())
          .addColumn('seed', columnType.hash, (col) => col.notNull())
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addColumn('updated_at', columnType.instant, (col) => col.notNull())
          .addColumn('completed_at', columnType.instant)
          .addColumn('shredded_at', columnType.instant)
          .addColumn('report', bigJson(db))
          .addColumn('verification', bigJson(db))
          .execute();
        await db.schema
          .createIndex('privacykit_erasure_plans_request')
          .on('privacykit_erasure_plans')
          .columns(['tenant', 'request_id'])
          .execute();

        await db.schema
          .createTable('privacykit_erasure_retained')
          .addColumn('plan_id', columnType.id, (col) => col.notNull())
          .addColumn('table_name', sql`varchar(128)`, (col) => col.notNull())
          .addColumn('row_key', columnType.shortText, (col) => col.notNull())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('source', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('ground', sql`varchar(32)`, (col) => col.notNull())
          .addColumn('rule_id', sql`varchar(128)`)
          .addColumn('reason', columnType.text)
          .addColumn('retain_until', columnType.civilDate)
          .addColumn('mask', columnType.json)
          .addPrimaryKeyConstraint('privacykit_erasure_retained_pk', ['plan_id', 'table_name', 'row_key'])
          .execute();

        await db.schema
          .createTable('privacykit_erasure_progress')
          .addColumn('plan_id', columnType.id, (col) => col.notNull())
          .addColumn('table_name', sql`varchar(128)`, (col) => col.notNull())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('status', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('last_key', columnType.text)
          .addColumn('deleted', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('updated', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('restricted', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('error', columnType.text)
          .addColumn('started_at', columnType.instant)
          .addColumn('finished_at', columnType.instant)
          .addPrimaryKeyConstraint('privacykit_erasure_progress_pk', ['plan_id', 'table_name'])
          .execute();

        await db.schema
          .createTable('privacykit_erasure_restrictions')
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('table_name', sql`varchar(128)`, (col) => col.notNull())
          .addColumn('row_key', columnType.shortText, (col) => col.notNull())
          .addColumn('plan_id', columnType.id, (col) => col.notNull())
          .addColumn('purposes', columnType.shortText, (col) => col.notNull())
          .addColumn('ground', sql`varchar(32)`, (col) => col.notNull())
          .addColumn('reason', columnType.text)
          .addColumn('retain_until', columnType.civilDate)
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addPrimaryKeyConstraint('privacykit_erasure_restrictions_pk', ['tenant', 'table_name', 'row_key'])
          .execute();
        await db.schema
          .createIndex('privacykit_erasure_restrictions_plan')
          .on('privacykit_erasure_restrictions')
          .columns(['plan_id', 'table_name'])
          .execute();

        await db.schema
          .createTable('privacykit_erasure_outbox')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('plan_id', columnType.id, (col) => col.notNull())
          .addColumn('recipient_id', sql`varchar(128)`, (col) => col.notNull())
          .addColumn('idempotency_key', sql`varchar(200)`, (col) => col.notNull().unique())
          .addColumn('payload', bigJson(db), (col) => col.notNull())
          .addColumn('status', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('next_attempt_at', columnType.instant, (col) => col.notNull())
          .addColumn('last_error', columnType.text)
          .addColumn('receipt', columnType.json)
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addColumn('delivered_at', columnType.instant)
          .execute();
        await db.schema
          .createIndex('privacykit_erasure_outbox_due')
          .on('privacykit_erasure_outbox')
          .columns(['tenant', 'status', 'next_attempt_at'])
          .execute();
      },
      async down(db: Kysely<any>) {
        for (const table of [
          'privacykit_erasure_outbox',
          'privacykit_erasure_restrictions',
          'privacykit_erasure_progress',
          'privacykit_erasure_retained',
          'privacykit_erasure_plans',
        ]) {
          await db.schema.dropTable(table).ifExists().execute();
        }
      },
    },
    '0002_execution_lease': {
      async up(db: Kysely<any>) {
        // One column per statement: SQLite adds a single column per ALTER TABLE.
        await db.schema
          .alterTable('privacykit_erasure_plans')
          .addColumn('lease_owner', sql`varchar(64)`)
          .execute();
        await db.schema
          .alterTable('privacykit_erasure_plans')
          .addColumn('lease_expires_at', columnType.instant)
          .execute();
        await db.schema
          .alterTable('privacykit_erasure_plans')
          .addColumn('identities_purged_at', columnType.instant)
          .execute();
      },
      async down(db: Kysely<any>) {
        for (const column of ['identities_purged_at', 'lease_expires_at', 'lease_owner']) {
          await db.schema.alterTable('privacykit_erasure_plans').dropColumn(column).execute();
        }
      },
    },
    '0003_superseded_by': {
      async up(db: Kysely<any>) {
        await db.schema
          .alterTable('privacykit_erasure_plans')
          .addColumn('superseded_by', columnType.id)
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.alterTable('privacykit_erasure_plans').dropColumn('superseded_by').execute();
      },
    },
  },
};
