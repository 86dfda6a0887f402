import { autoIncrementColumn, columnType, engineOf } from '@privacykit/core/db';
import type { PackageMigrations } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';

// Row keys compare with `cast(key as char)` of the host table: on MySQL a binary collation
// both avoids a collation clash and keeps 'A' and 'a' distinct keys.
const keyType = (db: Kysely<any>) =>
  engineOf(db) === 'mysql' ? sql`varchar(191) character set utf8mb4 collate utf8mb4_bin` : sql`varchar(191)`;
const name = sql`varchar(128)`;

/**
 * The tables of `@privacykit/retention`: legal holds, per-row phase progress, restrictions,
 * the review queue, one disposition record per row acted on, and one certificate per run.
 * Apply with `migrate(db, [retentionMigrations])` from `@privacykit/core/db`.
 */
export const retentionMigrations: PackageMigrations = {
  name: 'retention',
  migrations: {
    '0001_init': {
      async up(db: Kysely<any>) {
        const key = keyType(db);
        await db.schema
          .createTable('privacykit_retention_holds')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('scope', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('table_name', name)
          .addColumn('row_key', key)
          .addColumn('category', name)
          .addColumn('identities', columnType.json)
          .addColumn('reason', columnType.text, (col) => col.notNull())
          .addColumn('placed_by', columnType.shortText, (col) => col.notNull())
          .addColumn('placed_at', columnType.instant, (col) => col.notNull())
          .addColumn('expires_at', columnType.instant)
          .addColumn('released_at', columnType.instant)
          .addColumn('released_by', columnType.shortText)
          .addColumn('release_reason', columnType.text)
          .execute();
        await db.schema
          .createIndex('privacykit_retention_holds_row')
          .on('privacykit_retention_holds')
          .columns(['tenant', 'table_name', 'row_key'])
          .execute();

        await db.schema
          .createTable('privacykit_retention_applied')
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('table_name', name, (col) => col.notNull())
          .addColumn('rule', name, (col) => col.notNull())
          .addColumn('row_key', key, (col) => col.notNull())
          .addColumn('phase', 'integer', (col) => col.notNull())
          .addColumn('action', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('purposes', columnType.json)
          .addColumn('applied_at', columnType.instant, (col) => col.notNull())
          .addColumn('run_id', columnType.id, (col) => col.notNull())
          .addPrimaryKeyConstraint('privacykit_retention_applied_pk', [
            'tenant',
            'table_name',
            'rule',
            'row_key',
            'phase',
          ])
          .execute();

        await db.schema
          .createTable('privacykit_retention_reviews')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('table_name', name, (col) => col.notNull())
          .addColumn('rule', name, (col) => col.notNull())
          .addColumn('row_key', key, (col) => col.notNull())
          .addColumn('phase', 'integer', (col) => col.notNull())
          .addColumn('due_date', columnType.civilDate, (col) => col.notNull())
          .addColumn('queued_at', columnType.instant, (col) => col.notNull())
          .addColumn('run_id', columnType.id, (col) => col.notNull())
          .addColumn('status', sql`varchar(16)`, (col) => col.notNull())
          .execute();
        await db.schema
          .createIndex('privacykit_retention_reviews_open')
          .on('privacykit_retention_reviews')
          .columns(['tenant', 'status', 'queued_at'])
          .execute();

        await autoIncrementColumn(db, db.schema.createTable('privacykit_retention_dispositions'), 'seq')
          .addColumn('run_id', columnType.id, (col) => col.notNull())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('rule', name, (col) => col.notNull())
          .addColumn('phase', 'integer', (col) => col.notNull())
          .addColumn('action', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('table_name', name, (col) => col.notNull())
          .addColumn('row_key', key, (col) => col.notNull())
          .addColumn('due_date', columnType.civilDate)
          .addColumn('acted_at', columnType.instant, (col) => col.notNull())
          .addColumn('outcome', sql`varchar(16)`, (col) => col.notNull())
          .execute();
        await db.schema
          .createIndex('privacykit_retention_dispositions_run')
          .on('privacykit_retention_dispositions')
          .columns(['run_id', 'seq'])
          .execute();
        await db.schema
          .createIndex('privacykit_retention_dispositions_row')
          .on('privacykit_retention_dispositions')
          .columns(['tenant', 'table_name', 'row_key'])
          .execute();

        await db.schema
          .createTable('privacykit_retention_runs')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('policy_version', columnType.shortText, (col) => col.notNull())
          .addColumn('started_at', columnType.instant, (col) => col.notNull())
          .addColumn('finished_at', columnType.instant)
          .addColumn('status', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('records', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('counts', columnType.json)
          .addColumn('hash', columnType.hash)
          .execute();
        await db.schema
          .createIndex('privacykit_retention_runs_tenant')
          .on('privacykit_retention_runs')
          .columns(['tenant', 'started_at'])
          .execute();
      },
      async down(db: Kysely<any>) {
        for (const table of ['runs', 'dispositions', 'reviews', 'applied', 'holds']) {
          await db.schema.dropTable(`privacykit_retention_${table}`).ifExists().execute();
        }
      },
    },
  },
};
