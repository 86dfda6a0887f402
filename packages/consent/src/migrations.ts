import { columnType, engineOf } from '@privacykit/core/db';
import type { PackageMigrations } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';

const purposeType = sql`varchar(100)`;
const subjectIdType = sql`varchar(255)`;

function sequenceType(db: Kysely<any>) {
  return engineOf(db) === 'sqlite' ? sql`integer` : sql`bigint`;
}

/**
 * The consent package's tables, applied with core's `migrate(db, [consentMigrations])`.
 * - `privacykit_consent_ledger`: the append-only Merkle log (hashed entries, no personal data;
 *   sealed evidence beside them, outside the hash).
 * - `privacykit_consent_head`: one row per tenant, the append lock and the tree frontier.
 * - `privacykit_consent_tree_heads`: Ed25519-signed tree heads (RFC 9162 §4.10).
 * - `privacykit_consent_state`: current decision per tenant × subject × purpose, kept in the
 *   same transaction as the append.
 * - `privacykit_consent_keys`: per-subject AES-256-GCM keys; deleting one crypto-shreds.
 * - `privacykit_consent_notices`: the published notice versions per purpose.
 */
export const consentMigrations: PackageMigrations = {
  name: 'consent',
  migrations: {
    '0001_init': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('privacykit_consent_ledger')
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('seq', sequenceType(db), (col) => col.notNull())
          .addColumn('event_id', columnType.id, (col) => col.notNull())
          .addColumn('kind', sql`varchar(32)`, (col) => col.notNull())
          .addColumn('subject_key', columnType.hash)
          .addColumn('purpose', purposeType)
          .addColumn('entry', columnType.text, (col) => col.notNull())
          .addColumn('leaf_hash', columnType.hash, (col) => col.notNull())
          .addColumn('nodes', columnType.text)
          .addColumn('sealed', columnType.text)
          .addColumn('recorded_at', columnType.instant, (col) => col.notNull())
          .addPrimaryKeyConstraint('privacykit_consent_ledger_pk', ['tenant', 'seq'])
          .addUniqueConstraint('privacykit_consent_ledger_event_uq', ['tenant', 'event_id'])
          .execute();
        await db.schema
          .createIndex('privacykit_consent_ledger_subject_ix')
          .on('privacykit_consent_ledger')
          .columns(['tenant', 'subject_key', 'seq'])
          .execute();

        await db.schema
          .createTable('privacykit_consent_head')
          .addColumn('tenant', columnType.tenant, (col) => col.primaryKey())
          .addColumn('size', sequenceType(db), (col) => col.notNull())
          .addColumn('frontier', columnType.text, (col) => col.notNull())
          .addColumn('signed_size', sequenceType(db), (col) => col.notNull())
          .addColumn('signed_at', columnType.instant)
          .addColumn('pseudonym_secret', columnType.shortText)
          .addColumn('signing_key', columnType.text)
          .addColumn('updated_at', columnType.instant, (col) => col.notNull())
          .execute();

        await db.schema
          .createTable('privacykit_consent_tree_heads')
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('size', sequenceType(db), (col) => col.notNull())
          .addColumn('root_hash', columnType.hash, (col) => col.notNull())
          .addColumn('timestamp', columnType.instant, (col) => col.notNull())
          .addColumn('key_id', columnType.hash, (col) => col.notNull())
          .addColumn('signature', columnType.shortText, (col) => col.notNull())
          .addPrimaryKeyConstraint('privacykit_consent_tree_heads_pk', ['tenant', 'size'])
          .execute();

        await db.schema
          .createTable('privacykit_consent_state')
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('subject_key', columnType.hash, (col) => col.notNull())
          .addColumn('purpose', purposeType, (col) => col.notNull())
          .addColumn('subject_id', subjectIdType, (col) => col.notNull())
          .addColumn('state', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('renewal', columnType.flag, (col) => col.notNull())
          .addColumn('event_id', columnType.id, (col) => col.notNull())
          .addColumn('seq', sequenceType(db), (col) => col.notNull())
          .addColumn('notice_version', sql`varchar(100)`, (col) => col.notNull())
          .addColumn('notice_hash', sql`varchar(64)`, (col) => col.notNull())
          .addColumn('source', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('decided_at', columnType.instant, (col) => col.notNull())
          .addColumn('expires_at', columnType.instant)
          .addColumn('gpc_conflict', columnType.flag, (col) => col.notNull())
          .addPrimaryKeyConstraint('privacykit_consent_state_pk', ['tenant', 'subject_key', 'purpose'])
          .execute();
        // Covers the "who may I process for purpose P" set query: no table lookups per row.
        await db.schema
          .createIndex('privacykit_consent_state_purpose_ix')
          .on('privacykit_consent_state')
          .columns(['tenant', 'purpose', 'state', 'subject_key', 'expires_at', 'notice_hash', 'subject_id'])
          .execute();

        await db.schema
          .createTable('privacykit_consent_keys')
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('subject_key', columnType.hash, (col) => col.notNull())
          .addColumn('key_material', sql`varchar(64)`, (col) => col.notNull())
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addPrimaryKeyConstraint('privacykit_consent_keys_pk', ['tenant', 'subject_key'])
          .execute();

        await db.schema
          .createTable('privacykit_consent_notices')
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('purpose', purposeType, (col) => col.notNull())
          .addColumn('version', sql`varchar(100)`, (col) => col.notNull())
          .addColumn('hash', sql`varchar(64)`, (col) => col.notNull())
          .addColumn('language', sql`varchar(35)`, (col) => col.notNull())
          .addColumn('content', columnType.text, (col) => col.notNull())
          .addColumn('published_at', columnType.instant, (col) => col.notNull())
          .addColumn('seq', sequenceType(db), (col) => col.notNull())
          .addPrimaryKeyConstraint('privacykit_consent_notices_pk', ['tenant', 'purpose', 'version'])
          .execute();
      },
      async down(db: Kysely<any>) {
        for (const table of [
          'privacykit_consent_notices',
          'privacykit_consent_keys',
          'privacykit_consent_state',
          'privacykit_consent_tree_heads',
          'privacykit_consent_head',
          'privacykit_consent_ledger',
        ]) {
          await db.schema.dropTable(table).ifExists().execute();
        }
      },
    },
  },
};
