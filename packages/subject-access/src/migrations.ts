import { columnType, engineOf } from '@privacykit/core/db';
import type { PackageMigrations } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * Tables of the export store: finished packages (metadata and wrapped key), their encrypted
 * chunks, and download tokens (hashes only). Apply with `migrate(db, [subjectAccessMigrations])`.
 */
export const subjectAccessMigrations: PackageMigrations = {
  // Named as the package; kysely quotes its migration tables (`privacykit_subject-access_migrations`).
  name: 'subject-access',
  migrations: {
    '0001_init': {
      async up(db: Kysely<any>) {
        // A chunk is ~350 KB of base64: past MySQL's 64 KB `text`.
        const payload = engineOf(db) === 'mysql' ? sql`mediumtext` : sql`text`;
        await db.schema
          .createTable('privacykit_subject_access_packages')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('status', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('filename', columnType.shortText, (col) => col.notNull())
          .addColumn('content_type', columnType.shortText, (col) => col.notNull())
          .addColumn('request_id', columnType.id)
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addColumn('expires_at', columnType.instant, (col) => col.notNull())
          .addColumn('bytes', 'bigint')
          .addColumn('sha256', columnType.hash)
          .addColumn('chunk_count', 'integer')
          .addColumn('data_key', columnType.text, (col) => col.notNull())
          .execute();
        await db.schema
          .createIndex('privacykit_subject_access_packages_expiry')
          .on('privacykit_subject_access_packages')
          .columns(['tenant', 'expires_at'])
          .execute();
        await db.schema
          .createTable('privacykit_subject_access_chunks')
          .addColumn('package_id', columnType.id, (col) => col.notNull())
          .addColumn('seq', 'integer', (col) => col.notNull())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('data', payload, (col) => col.notNull())
          .addPrimaryKeyConstraint('privacykit_subject_access_chunks_pk', ['package_id', 'seq'])
          .execute();
        await db.schema
          .createTable('privacykit_subject_access_tokens')
          .addColumn('token_hash', columnType.hash, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('package_id', columnType.id, (col) => col.notNull())
          .addColumn('binding_hash', columnType.hash, (col) => col.notNull())
          .addColumn('issued_at', columnType.instant, (col) => col.notNull())
          .addColumn('expires_at', columnType.instant, (col) => col.notNull())
          .addColumn('used_at', columnType.instant)
          .execute();
        await db.schema
          .createIndex('privacykit_subject_access_tokens_package')
          .on('privacykit_subject_access_tokens')
          .column('package_id')
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable('privacykit_subject_access_tokens').ifExists().execute();
        await db.schema.dropTable('privacykit_subject_access_chunks').ifExists().execute();
        await db.schema.dropTable('privacykit_subject_access_packages').ifExists().execute();
      },
    },
  },
};
