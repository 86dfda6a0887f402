import { columnType, engineOf } from '@privacykit/core/db';
import type { PackageMigrations } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';

const purposeType = sql`varchar(100)`;
const subjectIdType = sql`varchar(255)`;

function sequenceType(db: Kysely<any>) {
  return engineOf(db) === 'sqlite' ? sql`integer` : sql`bigint`;
}

const stateColumns = [
  'tenant',
  'subject_key',
  'purpose',
  'subject_id',
  'state',
  'renewal',
  'event_id',
  'seq',
  'notice_version',
  'notice_hash',
  'source',
  'decided_at',
  'expires_at',
  'gpc_conflict',
] as const;

/**
 * The current-state table. `layout: 'subject'` (0001) keys it by subject then purpose, beside a
 * covering index for the set query; `layout: 'purpose'` (0002) keys it by purpose then subject:
 * the set query reads the table itself in key order and a decision writes one b-tree, not three
 * (on SQLite the table is WITHOUT ROWID, on MySQL/MariaDB InnoDB clusters on the key anyway).
 */
async function createStateTable(db: Kysely<any>, name: string, layout: 'subject' | 'purpose') {
  let table = db.schema
    .createTable(name)
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
    .addColumn('gpc_conflict', columnType.flag, (col) => col.notNull());
  if (layout === 'subject') {
    table = table.addPrimaryKeyConstraint('privacykit_consent_state_pk', [
      'tenant',
      'subject_key',
      'purpose',
    ]);
  } else {
    table = table.addPrimaryKeyConstraint('privacykit_consent_state_purpose_pk', [
      'tenant',
      'purpose',
      'subject_key',
    ]);
    if (engineOf(db) === 'sqlite') table = table.modifyEnd(sql`without rowid`);
  }
  await table.execute();
}

/** Per-subject keys; `withoutRowid` (0002, SQLite only) stores them in the key's own b-tree. */
async function createKeysTable(db: Kysely<any>, name: string, pk: string, withoutRowid: boolean) {
  let table = db.schema
    .createTable(name)
    .addColumn('tenant', columnType.tenant, (col) => col.notNull())
    .addColumn('subject_key', columnType.hash, (col) => col.notNull())
    .addColumn('key_material', sql`varchar(64)`, (col) => col.notNull())
    .addColumn('created_at', columnType.instant, (col) => col.notNull())
    .addPrimaryKeyConstraint(pk, ['tenant', 'subject_key']);
  if (withoutRowid) table = table.modifyEnd(sql`without rowid`);
  await table.execute();
}

async function copyRows(db: Kysely<any>, from: string, to: string, columns: readonly string[]) {
  await db
    .insertInto(to)
    .columns(columns as string[])
    .expression(db.selectFrom(from).select(columns as string[]))
    .execute();
}

/** 0002: the state table keyed by purpose (no covering index); SQLite keys WITHOUT ROWID. */
async function relayout(db: Kysely<any>, direction: 'up' | 'down') {
  const state = 'privacykit_consent_state';
  const previous = 'privacykit_consent_state_previous';
  if (direction === 'down') {
    await db.schema.alterTable(state).renameTo(previous).execute();
    await createStateTable(db, state, 'subject');
    await copyRows(db, previous, state, stateColumns);
    await db.schema.dropTable(previous).execute();
    await db.schema
      .createIndex('privacykit_consent_state_purpose_ix')
      .on(state)
      .columns(['tenant', 'purpose', 'state', 'subject_key', 'expires_at', 'notice_hash', 'subject_id'])
      .execute();
  } else {
    const dropIndex = db.schema.dropIndex('privacykit_consent_state_purpose_ix');
    await (engineOf(db) === 'mysql' ? dropIndex.on(state) : dropIndex).execute();
    await db.schema.alterTable(state).renameTo(previous).execute();
    await createStateTable(db, state, 'purpose');
    await copyRows(db, previous, state, stateColumns);
    await db.schema.dropTable(previous).execute();
  }
  if (engineOf(db) !== 'sqlite') return;
  const keys = 'privacykit_consent_keys';
  const oldKeys = 'privacykit_consent_keys_previous';
  await db.schema.alterTable(keys).renameTo(oldKeys).execute();
  await createKeysTable(db, keys, 'privacykit_consent_keys_pk', direction === 'up');
  await copyRows(db, oldKeys, keys, ['tenant', 'subject_key', 'key_material', 'created_at']);
  await db.schema.dropTable(oldKeys).execute();
}

/**
 * The consent package's tables, applied with core's `migrate(db, [consentMigrations])`.
 * - `privacykit_consent_ledger`: the append-only Merkle log (hashed entries, no personal data;
 *   sealed evidence beside them, outside the hash).
 * - `privacykit_consent_head`: one row per tenant, the append lock and the tree frontier.
 * - `privacykit_consent_tree_heads`: Ed25519-signed tree heads (RFC 9162 §4.10).
 * - `privacykit_consent_state`: current decision per tenant × purpose × subject, kept in the
 *   same transaction as the append (0002: keyed by purpose, no secondary index).
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

        await createStateTable(db, 'privacykit_consent_state', 'subject');
        // Covers the "who may I process for purpose P" set query: no table lookups per row.
        await db.schema
          .createIndex('privacykit_consent_state_purpose_ix')
          .on('privacykit_consent_state')
          .columns(['tenant', 'purpose', 'state', 'subject_key', 'expires_at', 'notice_hash', 'subject_id'])
          .execute();

        await createKeysTable(db, 'privacykit_consent_keys', 'privacykit_consent_keys_pk', false);

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
    '0002_state_by_purpose': {
      up: (db: Kysely<any>) => relayout(db, 'up'),
      down: (db: Kysely<any>) => relayout(db, 'down'),
    },
  },
};
