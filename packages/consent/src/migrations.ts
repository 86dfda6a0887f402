import { columnType, engineOf } from '@privacykit/core/db';
import type { PackageMigrations } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { CreateTableBuilder, ExpressionBuilder, Kysely } from 'kysely';

const purposeType = sql`varchar(100)`;
const T_HEAD = 'privacykit_consent_head';
const T_STATE = 'privacykit_consent_state';
const T_KEYS = 'privacykit_consent_keys';
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

/** Each tenant's entries take ids `no · 2^36 + seq`: one integer key, ordered by tenant then seq. */
export const SEQ_SPAN = 2 ** 36;

const ledgerColumns = [
  'tenant',
  'seq',
  'event_id',
  'kind',
  'subject_key',
  'purpose',
  'entry',
  'leaf_hash',
  'nodes',
  'sealed',
  'recorded_at',
] as const;

/**
 * The perfect subtrees whose roots make up the frontier of a tree of `size` leaves, largest
 * first: each one's root is stored with its last leaf (the leaf hash at level 0, else
 * `nodes[level - 1]`).
 */
export function frontierSubtrees(size: number): { level: number; index: number; last: number }[] {
  const out: { level: number; index: number; last: number }[] = [];
  let start = 0;
  for (let level = 52; level >= 0; level--) {
    const width = 2 ** level;
    if (Math.floor(size / width) % 2 === 1) {
      out.push({ level, index: start / width, last: start + width - 1 });
      start += width;
    }
  }
  return out;
}

/** The columns of a ledger entry (0001 and 0003 alike). */
function entryColumns(db: Kysely<any>, table: CreateTableBuilder<string, never>) {
  return table
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
    .addColumn('recorded_at', columnType.instant, (col) => col.notNull());
}

/** The ledger as 0001 made it: keyed by tenant and seq, with event and subject indexes. */
async function createSeqLedger(db: Kysely<any>) {
  await entryColumns(db, db.schema.createTable('privacykit_consent_ledger'))
    .addPrimaryKeyConstraint('privacykit_consent_ledger_pk', ['tenant', 'seq'])
    .addUniqueConstraint('privacykit_consent_ledger_event_uq', ['tenant', 'event_id'])
    .execute();
  await db.schema
    .createIndex('privacykit_consent_ledger_subject_ix')
    .on('privacykit_consent_ledger')
    .columns(['tenant', 'subject_key', 'seq'])
    .execute();
}

/** A ledger table keyed by `id` alone (SQLite: the rowid itself), with no secondary index. */
async function createLeanLedger(db: Kysely<any>, name: string) {
  const sqlite = engineOf(db) === 'sqlite';
  const table = db.schema
    .createTable(name)
    .addColumn('id', sqlite ? sql`integer` : sql`bigint`, (col) =>
      sqlite ? col.primaryKey() : col.notNull().primaryKey(),
    );
  await entryColumns(db, table).execute();
}

/** A lookup table filled in batches behind the appends (see `0003_lean_appends`). */
async function createLookup(db: Kysely<any>, name: string, column: 'subject_key' | 'event_id') {
  let table = db.schema
    .createTable(name)
    .addColumn('tenant', columnType.tenant, (col) => col.notNull())
    .addColumn(column, column === 'event_id' ? columnType.id : columnType.hash, (col) => col.notNull())
    .addColumn('seq', sequenceType(db), (col) => col.notNull())
    .addPrimaryKeyConstraint(
      `${name}_pk`,
      column === 'event_id' ? ['tenant', column] : ['tenant', column, 'seq'],
    );
  if (engineOf(db) === 'sqlite') table = table.modifyEnd(sql`without rowid`);
  await table.execute();
}

/**
 * 0003: appends write two b-tree pages, not ten. The ledger is keyed by one integer id (no
 * second key, no event or subject index on the hot path); those two lookups move to tables
 * filled in batches behind the appends (`head.indexed_size` says how far; readers scan the short
 * unindexed tail); the head row becomes a checkpoint written when a tree head is signed or a
 * batch indexed; the per-subject keys move into the state rows (one key per subject × purpose),
 * so a first decision with evidence writes no separate key row. Existing rows, keys and
 * sealed evidence are carried over unchanged.
 */
async function leanAppends(db: Kysely<any>) {
  const engine = engineOf(db);
  const ledger = 'privacykit_consent_ledger';
  const previous = 'privacykit_consent_ledger_v1';
  await db.schema.alterTable(T_HEAD).addColumn('no', sequenceType(db)).execute();
  await db.schema
    .alterTable(T_HEAD)
    .addColumn('indexed_size', sequenceType(db), (col) => col.notNull().defaultTo(0))
    .execute();
  const tenants = await db.selectFrom(T_HEAD).select('tenant').orderBy('tenant').execute();
  for (const [i, row] of tenants.entries()) {
    await db
      .updateTable(T_HEAD)
      .set({ no: i + 1 })
      .where('tenant', '=', row.tenant)
      .execute();
  }
  await db.schema.createIndex('privacykit_consent_head_no_uq').on(T_HEAD).column('no').unique().execute();

  await db.schema.alterTable(ledger).renameTo(previous).execute();
  if (engine === 'postgres') {
    // PostgreSQL index names are schema-wide: free the old ones for a later down migration.
    await sql`alter index privacykit_consent_ledger_pk rename to privacykit_consent_ledger_v1_pk`.execute(db);
    await sql`alter index privacykit_consent_ledger_event_uq rename to privacykit_consent_ledger_v1_event_uq`.execute(
      db,
    );
    await sql`alter index privacykit_consent_ledger_subject_ix rename to privacykit_consent_ledger_v1_subject_ix`.execute(
      db,
    );
  }
  await createLeanLedger(db, ledger);
  await db
    .insertInto(ledger)
    .columns(['id', ...ledgerColumns])
    .expression(
      db
        .selectFrom(`${previous} as l`)
        .innerJoin(`${T_HEAD} as h`, 'h.tenant', 'l.tenant')
        .select([
          sql`h.no * ${sql.lit(SEQ_SPAN)} + l.seq`.as('id'),
          ...ledgerColumns.map((column) => `l.${column}`),
        ]),
    )
    .execute();
  await db.schema.dropTable(previous).execute();

  await createLookup(db, 'privacykit_consent_subject_ix', 'subject_key');
  await createLookup(db, 'privacykit_consent_event_ix', 'event_id');
  await db
    .insertInto('privacykit_consent_subject_ix')
    .columns(['tenant', 'subject_key', 'seq'])
    .expression(
      db.selectFrom(ledger).select(['tenant', 'subject_key', 'seq']).where('subject_key', 'is not', null),
    )
    .execute();
  await db
    .insertInto('privacykit_consent_event_ix')
    .columns(['tenant', 'event_id', 'seq'])
    .expression(db.selectFrom(ledger).select(['tenant', 'event_id', 'seq']))
    .execute();
  await db
    .updateTable(T_HEAD)
    .set({ indexed_size: sql.ref('size') })
    .execute();

  await db.schema.alterTable(T_STATE).addColumn('key_material', sql`varchar(64)`).execute();
  await db
    .updateTable(T_STATE)
    .set({
      key_material: (eb: ExpressionBuilder<any, any>) =>
        eb
          .selectFrom(`${T_KEYS} as k`)
          .select('k.key_material')
          .whereRef('k.tenant', '=', `${T_STATE}.tenant`)
          .whereRef('k.subject_key', '=', `${T_STATE}.subject_key`),
    })
    .execute();
  await db.schema.dropTable(T_KEYS).execute();
}

async function leanAppendsDown(db: Kysely<any>) {
  const engine = engineOf(db);
  const ledger = 'privacykit_consent_ledger';
  // One key per subject again (the first purpose's): evidence sealed since the upgrade under
  // another purpose's key cannot be opened after going down.
  await createKeysTable(db, T_KEYS, 'privacykit_consent_keys_pk', engine === 'sqlite');
  const keyed = await db
    .selectFrom(T_STATE)
    .select(['tenant', 'subject_key', 'key_material', 'decided_at'])
    .where('key_material', 'is not', null)
    .orderBy('tenant')
    .orderBy('subject_key')
    .orderBy('purpose')
    .execute();
  const seen = new Set<string>();
  for (const row of keyed) {
    const key = `${row.tenant}\u0000${row.subject_key}`;
    if (seen.has(key)) continue;
    seen.add(key);
    await db
      .insertInto(T_KEYS)
      .values({
        tenant: row.tenant,
        subject_key: row.subject_key,
        key_material: row.key_material,
        created_at: row.decided_at,
      })
      .execute();
  }
  await db.schema.alterTable(T_STATE).dropColumn('key_material').execute();
  await db.schema.dropTable('privacykit_consent_event_ix').execute();
  await db.schema.dropTable('privacykit_consent_subject_ix').execute();

  // The head row becomes exact again: size and frontier of the whole ledger.
  const previous = 'privacykit_consent_ledger_v3';
  await db.schema.alterTable(ledger).renameTo(previous).execute();
  if (engine === 'postgres') {
    await sql`alter index privacykit_consent_ledger_pkey rename to privacykit_consent_ledger_v3_pkey`.execute(
      db,
    );
  }
  await createSeqLedger(db);
  await copyRows(db, previous, ledger, ledgerColumns);
  await db.schema.dropTable(previous).execute();
  for (const head of await db.selectFrom(T_HEAD).select('tenant').execute()) {
    const last = await db
      .selectFrom(ledger)
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('tenant', '=', head.tenant)
      .executeTakeFirst();
    const size = last?.seq === null || last?.seq === undefined ? 0 : Number(last.seq) + 1;
    const ends = frontierSubtrees(size);
    const rows =
      ends.length === 0
        ? []
        : await db
            .selectFrom(ledger)
            .select(['seq', 'leaf_hash', 'nodes'])
            .where('tenant', '=', head.tenant)
            .where(
              'seq',
              'in',
              ends.map((end) => end.last),
            )
            .execute();
    const frontier = ends.map(({ last, level }) => {
      const row = rows.find((candidate) => Number(candidate.seq) === last);
      if (!row) throw new Error(`ledger entry ${last} of ${head.tenant} is missing`);
      return level === 0 ? row.leaf_hash : (JSON.parse(row.nodes) as string[])[level - 1];
    });
    await db
      .updateTable(T_HEAD)
      .set({ size, frontier: JSON.stringify(frontier) })
      .where('tenant', '=', head.tenant)
      .execute();
  }
  const dropIndex = db.schema.dropIndex('privacykit_consent_head_no_uq');
  await (engine === 'mysql' ? dropIndex.on(T_HEAD) : dropIndex).execute();
  await db.schema.alterTable(T_HEAD).dropColumn('indexed_size').execute();
  await db.schema.alterTable(T_HEAD).dropColumn('no').execute();
}

/** Text keys the ledger compares byte for byte, by table. */
const binaryKeyColumns: [table: string, column: string][] = [
  ['privacykit_consent_notices', 'version'],
  ['privacykit_consent_state', 'notice_version'],
  ['privacykit_consent_ledger', 'event_id'],
  ['privacykit_consent_event_ix', 'event_id'],
];

/**
 * 0004: on MySQL and MariaDB, notice versions and event ids compare byte for byte, as on SQLite
 * and PostgreSQL. Their default collations ignore case (and accents): a notice published as
 * "Spring" after "spring" found the old row and its text was never stored, and an imported
 * event `crm-a` was refused as a replay of `crm-A`. Other engines: nothing to do.
 */
async function binaryKeys(db: Kysely<any>, direction: 'up' | 'down') {
  if (engineOf(db) !== 'mysql') return;
  for (const [table, column] of binaryKeyColumns) {
    const { rows } = await sql<{ type: string; nullable: string; charset: string | null }>`
      select column_type as type, is_nullable as nullable, character_set_name as charset
      from information_schema.columns
      where table_schema = database() and table_name = ${table} and column_name = ${column}`.execute(db);
    const row = rows[0];
    if (!row?.charset) continue;
    const collation = direction === 'up' ? sql` collate ${sql.raw(`${row.charset}_bin`)}` : sql``;
    await sql`alter table ${sql.id(table)} modify column ${sql.id(column)} ${sql.raw(row.type)} character set ${sql.raw(row.charset)}${collation} ${sql.raw(row.nullable === 'NO' ? 'not null' : 'null')}`.execute(
      db,
    );
  }
}

/**
 * The consent package's tables, applied with core's `migrate(db, [consentMigrations])`.
 * - `privacykit_consent_ledger`: the append-only Merkle log (hashed entries, no personal data;
 *   sealed evidence beside them, outside the hash), keyed by `no · SEQ_SPAN + seq` (0003).
 * - `privacykit_consent_head`: one row per tenant: its number, the append lock, and a checkpoint
 *   of the tree (size, frontier, signed and indexed sizes) written behind the appends.
 * - `privacykit_consent_tree_heads`: Ed25519-signed tree heads (RFC 9162 §4.10).
 * - `privacykit_consent_state`: current decision per tenant × purpose × subject, kept in the
 *   same transaction as the append, with the evidence key of that subject and purpose (0003;
 *   deleting the row crypto-shreds). 0002: keyed by purpose, no secondary index.
 * - `privacykit_consent_subject_ix`, `privacykit_consent_event_ix`: entries by subject and by
 *   event id, filled in batches behind the appends (0003).
 * - `privacykit_consent_notices`: the published notice versions per purpose.
 * On MySQL/MariaDB, notice versions and event ids have binary collations (0004). The head row
 * says whether the tenant's evidence keys live in an `evidenceKeys` store (0005).
 */
export const consentMigrations: PackageMigrations = {
  name: 'consent',
  migrations: {
    '0001_init': {
      async up(db: Kysely<any>) {
        await createSeqLedger(db);

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
    '0003_lean_appends': { up: leanAppends, down: leanAppendsDown },
    '0004_binary_keys': {
      up: (db: Kysely<any>) => binaryKeys(db, 'up'),
      down: (db: Kysely<any>) => binaryKeys(db, 'down'),
    },
    // 0005: where the tenant's evidence keys live — `'store'` once an instance with an
    // `evidenceKeys` store ran on it, so that one without cannot shred only half of them.
    '0005_key_store_marker': {
      up: (db: Kysely<any>) =>
        db.schema.alterTable(T_HEAD).addColumn('evidence_keys', sql`varchar(16)`).execute(),
      down: (db: Kysely<any>) => db.schema.alterTable(T_HEAD).dropColumn('evidence_keys').execute(),
    },
  },
};
