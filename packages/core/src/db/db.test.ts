import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CamelCasePlugin, sql } from 'kysely';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineDataMap } from '../data-map.js';
import { isPrivacyKitError } from '../errors.js';
import { createTestDatabase, testEngines } from '../testing.js';
import type { TestDatabase } from '../testing.js';
import { engineOf } from './engine.js';
import { autoIncrementColumn, columnType, migrate } from './migrate.js';
import type { PackageMigrations } from './migrate.js';
import {
  engineOfUrl,
  openDatabase,
  sqliteConnectionOf,
  truncateSqliteLog,
  withStatementCache,
} from './open.js';
import { countSubjectRows, selectExact, subjectRows, subjectRowsQuery } from './traversal.js';
import { writeTransaction } from './write-transaction.js';

const notes: PackageMigrations = {
  name: 'notes',
  migrations: {
    '0001_init': {
      async up(db: Kysely<any>) {
        await autoIncrementColumn(db, db.schema.createTable('privacykit_notes_items'), 'seq')
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('body', columnType.text)
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .execute();
      },
    },
    '0002_index': {
      async up(db: Kysely<any>) {
        await db.schema
          .createIndex('privacykit_notes_items_tenant')
          .on('privacykit_notes_items')
          .columns(['tenant', 'created_at'])
          .execute();
      },
    },
  },
};

const dataMap = defineDataMap({
  identities: { email: { normalise: 'email' }, customerNumber: {} },
  tenantColumn: 'tenant',
  tables: {
    customers: {
      primaryKey: 'id',
      identities: { email: 'email', customerNumber: 'customer_no' },
      columns: { email: 'contact.email', name: 'identity.name', customer_no: 'identity.customer-number' },
    },
    orders: {
      primaryKey: 'id',
      references: [{ column: 'customer_id', table: 'customers' }],
      columns: { total: 'transaction.details' },
    },
    order_lines: {
      primaryKey: ['order_id', 'line'],
      references: [{ column: 'order_id', table: 'orders' }],
      columns: { item: 'transaction.details' },
    },
    logins: { identities: { email: 'login_email' }, columns: { ip: 'usage.logs' } },
  },
});

async function createHostSchema(db: Kysely<any>) {
  await db.schema
    .createTable('customers')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('tenant', sql`varchar(64)`, (col) => col.notNull())
    .addColumn('email', sql`varchar(255)`)
    .addColumn('customer_no', sql`varchar(32)`)
    .addColumn('name', sql`varchar(255)`)
    .execute();
  await db.schema
    .createTable('orders')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('tenant', sql`varchar(64)`, (col) => col.notNull())
    .addColumn('customer_id', 'integer', (col) => col.references('customers.id'))
    .addColumn('total', 'integer')
    .execute();
  await db.schema
    .createTable('order_lines')
    .addColumn('order_id', 'integer', (col) => col.notNull().references('orders.id'))
    .addColumn('line', 'integer', (col) => col.notNull())
    .addColumn('tenant', sql`varchar(64)`, (col) => col.notNull())
    .addColumn('item', sql`varchar(255)`)
    .addPrimaryKeyConstraint('order_lines_pk', ['order_id', 'line'])
    .execute();
  await db.schema
    .createTable('logins')
    .addColumn('tenant', sql`varchar(64)`, (col) => col.notNull())
    .addColumn('login_email', sql`varchar(255)`)
    .addColumn('ip', sql`varchar(64)`)
    .execute();
  await db
    .insertInto('customers')
    .values([
      { id: 1, tenant: 'acme', email: 'alice@example.com', customer_no: 'C-1', name: 'Alice' },
      { id: 2, tenant: 'acme', email: 'bob@example.com', customer_no: 'C-2', name: 'Bob' },
      { id: 3, tenant: 'other', email: 'alice@example.com', customer_no: 'C-3', name: 'Alice elsewhere' },
      { id: 4, tenant: 'acme', email: 'ALICE@example.com', customer_no: 'C-4', name: 'Upper-case twin' },
    ])
    .execute();
  const orders = [];
  const lines = [];
  for (let id = 1; id <= 30; id++) {
    const customer = id <= 25 ? 1 : id <= 28 ? 2 : 3;
    orders.push({ id, tenant: customer === 3 ? 'other' : 'acme', customer_id: customer, total: id * 10 });
    for (let line = 1; line <= 3; line++)
      lines.push({
        order_id: id,
        line,
        tenant: customer === 3 ? 'other' : 'acme',
        item: `item ${id}.${line}`,
      });
  }
  await db.insertInto('orders').values(orders).execute();
  await db.insertInto('order_lines').values(lines).execute();
  await db
    .insertInto('logins')
    .values([
      { tenant: 'acme', login_email: 'alice@example.com', ip: '192.0.2.1' },
      { tenant: 'acme', login_email: 'alice@example.com', ip: '192.0.2.2' },
      { tenant: 'acme', login_email: 'bob@example.com', ip: '192.0.2.3' },
      { tenant: 'other', login_email: 'alice@example.com', ip: '192.0.2.4' },
      // Another tenant whose id differs only by case: MySQL's default collations would match it.
      { tenant: 'ACME', login_email: 'alice@example.com', ip: '192.0.2.5' },
    ])
    .execute();
}

describe('openDatabase', () => {
  it('tells the engine from the URL and refuses unknown ones with a typed error', async () => {
    expect(engineOfUrl('postgresql://u@h/db')).toBe('postgres');
    expect(engineOfUrl('mariadb://root@127.0.0.1/test')).toBe('mysql');
    expect(engineOfUrl('sqlite:./data/portal.db')).toBe('sqlite');
    await expect(openDatabase('redis://secret:pw@localhost')).rejects.toSatisfy(
      (error: unknown) => isPrivacyKitError(error, 'database/invalid-url') && !String(error).includes('pw'),
    );
  });

  it('refuses options that are no URL, and a SQLite file it cannot open, with typed errors (TypeErrors before)', async () => {
    const codeOf = (promise: Promise<unknown>) =>
      promise.then(
        () => 'opened',
        (error: unknown) => (isPrivacyKitError(error) ? error.code : String(error)),
      );
    expect(await codeOf(openDatabase(undefined as never))).toBe('database/invalid-options');
    expect(await codeOf(openDatabase(42 as never))).toBe('database/invalid-options');
    expect(await codeOf(openDatabase({ url: 42 } as never))).toBe('database/invalid-url');
    expect(await codeOf(openDatabase(''))).toBe('database/invalid-url');
    expect(await codeOf(openDatabase('sqlite:/no-such-directory-pk/x.db'))).toBe('database/invalid-url');
  });
});

describe('writeTransaction and migrate refuse what they cannot run, before writing anything', () => {
  it('refuses a missing database or work function with a typed error', async () => {
    const db = await openDatabase('sqlite::memory:');
    try {
      for (const [on, work] of [
        [db, 5],
        [null, async () => 1],
      ] as const) {
        await expect(writeTransaction(on as never, work as never)).rejects.toSatisfy((error: unknown) =>
          isPrivacyKitError(error, 'database/invalid-options'),
        );
      }
    } finally {
      await db.destroy();
    }
  });

  it('refuses package migrations that are not, creating no table', async () => {
    const db = await openDatabase('sqlite::memory:');
    try {
      for (const packages of [
        undefined,
        'str',
        [null],
        [{}],
        [{ name: 'a"b', migrations: {} }],
        [{ name: 'x', migrations: { '0001': {} } }],
      ]) {
        await expect(migrate(db, packages as never), JSON.stringify(packages)).rejects.toSatisfy(
          (error: unknown) => isPrivacyKitError(error, 'database/invalid-options'),
        );
      }
      const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(
        db,
      );
      expect(tables.rows).toEqual([]);
    } finally {
      await db.destroy();
    }
  });
});

describe('openDatabase on a SQLite file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pk-open-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const pageSize = async (db: Kysely<any>) =>
    (await sql<{ page_size: number }>`pragma page_size`.execute(db)).rows[0]?.page_size;

  it('creates new files with 8 KiB pages, or the size asked for', async () => {
    const db = await openDatabase(`sqlite:${join(dir, 'default.db')}`);
    await sql`create table t (x integer)`.execute(db);
    expect(await pageSize(db)).toBe(8192);
    await db.destroy();
    const small = await openDatabase({ url: `sqlite:${join(dir, 'small.db')}`, sqlitePageSize: 4096 });
    await sql`create table t (x integer)`.execute(small);
    expect(await pageSize(small)).toBe(4096);
    await small.destroy();
  });

  it('keeps the page size of an existing file and its rows', async () => {
    const file = join(dir, 'existing.db');
    const first = await openDatabase({ url: `sqlite:${file}`, sqlitePageSize: 4096 });
    await sql`create table t (x integer)`.execute(first);
    await sql`insert into t values (1), (2)`.execute(first);
    await first.destroy();
    const again = await openDatabase(`sqlite:${file}`);
    expect(await pageSize(again)).toBe(4096);
    expect((await sql<{ n: number }>`select count(*) as n from t`.execute(again)).rows[0]?.n).toBe(2);
    await again.destroy();
  });

  it('refuses a page size SQLite cannot use, before creating anything', async () => {
    for (const sqlitePageSize of [0, 1000, 131072, 4096.5]) {
      const file = join(dir, `bad-${sqlitePageSize}.db`);
      await expect(openDatabase({ url: `sqlite:${file}`, sqlitePageSize })).rejects.toSatisfy(
        (error: unknown) =>
          isPrivacyKitError(error, 'database/invalid-options') && String(error).includes('sqlitePageSize'),
      );
      expect(existsSync(file)).toBe(false);
    }
  });
});

describe('deleted data leaves SQLite files (secure_delete, truncateSqliteLog)', () => {
  it('a deleted row is in neither the database file nor its log once the log is truncated; without secure_delete it stays', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pk-secure-delete-'));
    try {
      const bytes = (file: string) =>
        ['', '-wal']
          .filter((suffix) => existsSync(file + suffix))
          .map((suffix) => readFileSync(file + suffix).toString('latin1'))
          .join('');
      const run = async (secure: boolean) => {
        const file = join(dir, `${secure ? 'secure' : 'plain'}.db`);
        const db = await openDatabase({ url: `sqlite:${file}`, sqliteSecureDelete: secure });
        try {
          await sql`create table people (id integer primary key, name text not null)`.execute(db);
          for (let i = 0; i < 200; i++) {
            await db
              .insertInto('people')
              .values({ id: i, name: `person-${i}-${'x'.repeat(40)}` })
              .execute();
          }
          await db.insertInto('people').values({ id: 1000, name: 'Ada Lovelace-7f3a9c' }).execute();
          await db.deleteFrom('people').where('id', '=', 1000).execute();
          const truncated = await truncateSqliteLog(db);
          return { truncated, found: bytes(file).includes('Ada Lovelace-7f3a9c') };
        } finally {
          await db.destroy();
        }
      };
      expect(await run(true)).toEqual({ truncated: true, found: false });
      // What the default prevents: the deleted row, readable in a copy of the files.
      expect((await run(false)).found).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(testEngines())('on $engine', (engine) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(engine);
    await createHostSchema(t.db);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('knows its engine', () => {
    expect(engineOf(t.db)).toBe(engine.engine);
  });

  it.runIf(engine.engine === 'sqlite')(
    'SQLite: a migration that fails halfway leaves nothing behind, and two connections migrating at once both succeed',
    async () => {
      const failing: PackageMigrations = {
        name: 'halfway',
        migrations: {
          '0001_init': {
            async up(db) {
              await db.schema.createTable('privacykit_halfway_a').addColumn('id', 'integer').execute();
              await sql`this is not sql`.execute(db);
            },
          },
        },
      };
      await expect(migrate(t.db, [failing])).rejects.toMatchObject({ code: 'database/migration-failed' });
      // Before: privacykit_halfway_a stayed, and the fixed migration failed "table already exists".
      const tables = (await t.db.introspection.getTables()).map((table) => table.name);
      expect(tables).not.toContain('privacykit_halfway_a');
      const fixed: PackageMigrations = {
        name: 'halfway',
        migrations: {
          '0001_init': {
            async up(db) {
              await db.schema.createTable('privacykit_halfway_a').addColumn('id', 'integer').execute();
            },
          },
        },
      };
      expect(await migrate(t.db, [fixed])).toEqual([{ name: 'halfway', applied: ['0001_init'] }]);
      // Two connections to one file (a web process and a worker starting together): before, both
      // ran 0001_init and one failed "table already exists".
      const racing: PackageMigrations = {
        name: 'racing',
        migrations: {
          '0001_init': {
            async up(db) {
              await db.schema.createTable('privacykit_racing_a').addColumn('id', 'integer').execute();
            },
          },
          '0002_more': {
            async up(db) {
              await db.schema.createTable('privacykit_racing_b').addColumn('id', 'integer').execute();
            },
          },
        },
      };
      const other = await openDatabase(t.url);
      try {
        const both = await Promise.all([migrate(t.db, [racing]), migrate(other, [racing])]);
        expect(both.map((result) => result[0]?.applied.length).sort()).toEqual([0, 2]);
      } finally {
        await other.destroy();
      }
    },
  );

  it('runs package migrations once, in their own migration table', async () => {
    const first = await migrate(t.db, [notes]);
    expect(first).toEqual([{ name: 'notes', applied: ['0001_init', '0002_index'] }]);
    const second = await migrate(t.db, [notes]);
    expect(second).toEqual([{ name: 'notes', applied: [] }]);
    const tables = (await t.db.introspection.getTables()).map((table) => table.name);
    expect(tables).toEqual(expect.arrayContaining(['privacykit_notes_items', 'privacykit_notes_migrations']));
    await t.db
      .insertInto('privacykit_notes_items')
      .values({ tenant: 'acme', body: 'x', created_at: new Date().toISOString() })
      .execute();
    const rows = await t.db.selectFrom('privacykit_notes_items').select(['seq', 'body']).execute();
    expect(rows).toEqual([{ seq: 1, body: 'x' }]);
    // Tenants never match across case, on MySQL too (whose default collations ignore it).
    await t.db
      .insertInto('privacykit_notes_items')
      .values({ tenant: 'Acme', body: 'y', created_at: new Date().toISOString() })
      .execute();
    const acme = await t.db
      .selectFrom('privacykit_notes_items')
      .select('body')
      .where('tenant', '=', 'acme')
      .execute();
    expect(acme).toEqual([{ body: 'x' }]);
  });

  it('reports a failing migration with the package and migration name', async () => {
    const broken: PackageMigrations = {
      name: 'broken',
      migrations: {
        '0001_bad': {
          up: async (db: Kysely<any>) => void (await sql`select * from no_such_table`.execute(db)),
        },
      },
    };
    await expect(migrate(t.db, [broken])).rejects.toSatisfy(
      (error: unknown) =>
        isPrivacyKitError(error, 'database/migration-failed') &&
        String((error as Error).message).includes('broken/0001_bad'),
    );
  });

  it('finds exactly one subject’s rows along foreign keys, within its tenant', async () => {
    const scope = { db: t.db, dataMap, identities: { email: ['Alice@example.com '] }, tenant: 'acme' };
    const counts = await countSubjectRows(scope);
    expect(counts).toEqual({ customers: 1, orders: 25, order_lines: 75, logins: 2 });
    const rows = [];
    for await (const row of subjectRows({ ...scope, batchSize: 7 })) rows.push(row);
    expect(rows.map((row) => row.table).filter((name, i, all) => all.indexOf(name) === i)).toEqual([
      'customers',
      'orders',
      'order_lines',
      'logins',
    ]);
    const lines = rows
      .filter((row) => row.table === 'order_lines')
      .map((row) => `${row.row.order_id}.${row.row.line}`);
    expect(new Set(lines).size).toBe(75);
    expect(rows.find((row) => row.table === 'customers')?.row.name).toBe('Alice');
    // Upper-case twin (id 4) and the other tenant's Alice (id 3) are never matched.
    expect(rows.filter((row) => row.table === 'customers').map((row) => row.row.id)).toEqual([1]);
  });

  it('pages exactly through keys beyond 2^53, and gives such integers as text', async () => {
    await sql`create table snowflakes (id bigint primary key, tenant varchar(64) not null, email varchar(255) not null, parent bigint)`.execute(
      t.db,
    );
    const ids = ['9007199254740993', '9007199254740995', '9007199254740997'];
    for (const id of ids) {
      await sql`insert into snowflakes (id, tenant, email, parent) values (${sql.raw(id)}, 'acme', 'ada@example.com', ${sql.raw(id)})`.execute(
        t.db,
      );
    }
    await sql`insert into snowflakes (id, tenant, email, parent) values (12, 'acme', 'ada@example.com', 7)`.execute(
      t.db,
    );
    const map = defineDataMap({
      identities: { email: { normalise: 'email' } },
      tenantColumn: 'tenant',
      tables: {
        snowflakes: { primaryKey: 'id', identities: { email: 'email' }, columns: { parent: 'identity' } },
      },
    });
    const rows = [];
    for await (const { row } of subjectRows({
      db: t.db,
      dataMap: map,
      identities: { email: ['ada@example.com'] },
      tenant: 'acme',
      batchSize: 1,
    })) {
      rows.push([row.id, row.parent]);
      if (rows.length > 10) break;
    }
    // Each row once, in key order, none rounded: a rounded key resumes a page at the wrong row.
    expect(rows).toEqual([[12, 7], ...ids.map((id) => [id, id])]);
  });

  it('selectExact gives integers beyond 2^53 as their text, on the database and inside a writeTransaction, so a key names its own row', async () => {
    await sql`create table big_keys (id bigint primary key, owner varchar(32) not null)`.execute(t.db);
    await sql`insert into big_keys (id, owner) values (9007199254740992, 'bob'), (9007199254740993, 'ada'), (7, 'eve')`.execute(
      t.db,
    );
    const query = t.db.selectFrom('big_keys').select(['id', 'owner']).orderBy('id');
    const expected = [
      { id: 7, owner: 'eve' },
      { id: '9007199254740992', owner: 'bob' },
      { id: '9007199254740993', owner: 'ada' },
    ];
    expect(await selectExact(t.db, query)).toEqual(expected);
    // Ada's key as read names Ada's row, not Bob's: deleting by it inside a transaction, as an
    // erasure or a retention sweep does, leaves Bob's.
    await writeTransaction(t.db, async (trx) => {
      const rows = await selectExact(trx, trx.selectFrom('big_keys').select('id').where('owner', '=', 'ada'));
      expect(rows).toEqual([{ id: '9007199254740993' }]);
      await trx
        .deleteFrom('big_keys')
        .where('id', '=', rows[0]!.id as string)
        .execute();
      expect(await selectExact(trx, query.where('owner', '!=', 'eve'))).toEqual([expected[1]]);
    });
    expect(await selectExact(t.db, query)).toEqual([expected[0], expected[1]]);
  });

  it('pages exactly through keys beyond 2^53 inside a transaction and on an instance with a plugin, and refuses a NULL key part instead of skipping rows', async () => {
    await sql`create table flakes (id bigint primary key, tenant varchar(64) not null, email varchar(255) not null)`.execute(
      t.db,
    );
    const ids = Array.from({ length: 7 }, (_, i) => (1234567890123456789n + BigInt(i)).toString());
    for (const id of ids) {
      await sql`insert into flakes (id, tenant, email) values (${sql.raw(id)}, 'acme', 'ada@example.com')`.execute(
        t.db,
      );
    }
    const map = defineDataMap({
      identities: { email: { normalise: 'email' } },
      tenantColumn: 'tenant',
      tables: { flakes: { primaryKey: 'id', identities: { email: 'email' } } },
    });
    const traverse = async (db: Kysely<any>) => {
      const seen: unknown[] = [];
      for await (const { row } of subjectRows({
        db,
        dataMap: map,
        identities: { email: ['ada@example.com'] },
        tenant: 'acme',
        batchSize: 3,
      })) {
        seen.push(row.id);
        // Before, inside a transaction, the pages resumed from a rounded key for ever.
        if (seen.length > 20) break;
      }
      return seen;
    };
    expect(await traverse(t.db)).toEqual(ids);
    expect(await writeTransaction(t.db, (trx) => traverse(trx))).toEqual(ids);
    expect(await t.db.transaction().execute((trx) => traverse(trx))).toEqual(ids);
    expect(await traverse(t.db.withPlugin(new CamelCasePlugin()))).toEqual(ids);
    if (engineOf(t.db) === 'sqlite') {
      // SQLite allows NULL in a key that is not INTEGER PRIMARY KEY: a page ending on one was the
      // last (`> NULL` is never true), and the rows after it were silently skipped.
      await sql`create table notes (a varchar(8), b varchar(8), tenant varchar(64) not null, email varchar(255) not null, primary key (a, b))`.execute(
        t.db,
      );
      for (const [a, b] of [
        ['n1', null],
        ['n2', 'x'],
        ['n3', 'y'],
        ['n4', 'z'],
      ] as const) {
        await t.db.insertInto('notes').values({ a, b, tenant: 'acme', email: 'ada@example.com' }).execute();
      }
      const notes = defineDataMap({
        identities: { email: { normalise: 'email' } },
        tenantColumn: 'tenant',
        tables: { notes: { primaryKey: ['a', 'b'], identities: { email: 'email' } } },
      });
      const read = async () => {
        const seen: unknown[] = [];
        for await (const { row } of subjectRows({
          db: t.db,
          dataMap: notes,
          identities: { email: ['ada@example.com'] },
          tenant: 'acme',
          batchSize: 1,
        })) {
          seen.push(row.a);
        }
        return seen;
      };
      await expect(read()).rejects.toMatchObject({ code: 'database/inexact-keys' });
    }
  });

  it('reads a date column as its civil date text, whatever the process time zone', async () => {
    await sql`create table civil_days (id integer primary key, day date not null)`.execute(t.db);
    await sql`insert into civil_days (id, day) values (1, '2020-01-15'), (2, '2024-02-29')`.execute(t.db);
    const zone = process.env.TZ;
    try {
      for (const tz of ['Asia/Tokyo', 'America/Los_Angeles', 'UTC']) {
        process.env.TZ = tz;
        const rows = await sql<{ day: unknown }>`select day from civil_days order by id`.execute(t.db);
        expect(rows.rows.map((row) => row.day)).toEqual(['2020-01-15', '2024-02-29']);
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('matches by any identity, and filters columns by category', async () => {
    const scope = { db: t.db, dataMap, identities: { customerNumber: ['C-2'] }, tenant: 'acme' };
    expect(await countSubjectRows(scope)).toEqual({ customers: 1, orders: 3, order_lines: 9 });
    const rows = [];
    for await (const row of subjectRows({ ...scope, categories: ['identity'] })) rows.push(row);
    expect(rows).toEqual([{ table: 'customers', row: { id: 2, name: 'Bob', customer_no: 'C-2' } }]);
  });

  it('keeps the references to a parent read for the same categories, so filtered rows still link', async () => {
    const scope = { db: t.db, dataMap, identities: { customerNumber: ['C-2'] }, tenant: 'acme' };
    const read = async (categories: string[]) => {
      const rows: Record<string, Record<string, unknown>[]> = {};
      for await (const { table, row } of subjectRows({ ...scope, categories })) {
        rows[table] = [...(rows[table] ?? []), row];
      }
      return rows;
    };
    const withCustomers = await read(['transaction', 'contact.email']);
    expect(withCustomers.customers).toEqual([{ id: 2, email: 'bob@example.com' }]);
    expect(withCustomers.orders).toEqual([
      { id: 26, total: 260, customer_id: 2 },
      { id: 27, total: 270, customer_id: 2 },
      { id: 28, total: 280, customer_id: 2 },
    ]);
    // Without the customers, an order's customer_id would point at nothing read: left out.
    const ordersOnly = await read(['transaction']);
    expect(ordersOnly.customers).toBeUndefined();
    expect(ordersOnly.orders?.[0]).toEqual({ id: 26, total: 260 });
  });

  it('never reads the uncommitted rows of a transaction open on the same instance', async () => {
    const scope = { db: t.db, dataMap, identities: { email: ['alice@example.com'] }, tenant: 'acme' };
    type Open = (work: (trx: Kysely<any>) => Promise<void>) => Promise<void>;
    const opens: Open[] = [
      (work) => t.db.transaction().execute(work),
      (work) => writeTransaction(t.db, work),
    ];
    for (const open of opens) {
      let inserted!: () => void;
      const hasInserted = new Promise<void>((resolve) => {
        inserted = resolve;
      });
      let rollBack!: () => void;
      const rollingBack = new Promise<void>((resolve) => {
        rollBack = resolve;
      });
      const transaction = open(async (trx) => {
        await trx
          .insertInto('orders')
          .values({ id: 999, tenant: 'acme', customer_id: 1, total: 1 })
          .execute();
        inserted();
        await rollingBack;
        throw new Error('rolled back');
      }).catch(() => undefined);
      await hasInserted;
      const reading = (async () => {
        const ids: unknown[] = [];
        for await (const { row } of subjectRows({ ...scope, tables: ['orders'], batchSize: 10 }))
          ids.push(row.id);
        return ids;
      })();
      // PostgreSQL and MySQL read on another connection of the pool, before the rollback; SQLite's
      // one connection is the transaction's, so the read waits for it to end.
      await Promise.race([reading, new Promise((resolve) => setTimeout(resolve, 300))]);
      rollBack();
      await transaction;
      const ids = await reading;
      expect(ids).toHaveLength(25);
      expect(ids).not.toContain(999);
    }
  });

  it('gives a subquery usable in set-based statements', async () => {
    const keys = await subjectRowsQuery(
      { db: t.db, dataMap, identities: { email: ['bob@example.com'] }, tenant: 'acme' },
      'orders',
    )
      .select('orders.id')
      .orderBy('orders.id')
      .execute();
    expect(keys.map((row) => row.id)).toEqual([26, 27, 28]);
    expect(
      await countSubjectRows({
        db: t.db,
        dataMap,
        identities: { email: ['nobody@example.com'] },
        tenant: 'acme',
      }),
    ).toEqual({});
  });
});

// MySQL's own types: the other engines have no DATETIME/TIMESTAMP of this kind.
describe.each(testEngines().filter((engine) => engine.engine === 'mysql'))(
  'MySQL instants on $engine',
  (engine) => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await createTestDatabase(engine);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('reads MySQL DATETIME and TIMESTAMP as ISO 8601 UTC instants, in a UTC session', async () => {
      await sql`create table instants (id integer primary key, dt datetime(3), ts timestamp(6) null, d date)`.execute(
        t.db,
      );
      await sql`insert into instants values (1, '2024-01-01 10:00:00.123', '2024-01-01 10:00:00.123456', '2024-02-29'), (2, '2024-06-30 23:59:59', null, null)`.execute(
        t.db,
      );
      const rows = await sql<{
        dt: unknown;
        ts: unknown;
        d: unknown;
      }>`select dt, ts, d from instants order by id`.execute(t.db);
      expect(rows.rows).toEqual([
        { dt: '2024-01-01T10:00:00.123Z', ts: '2024-01-01T10:00:00.123456Z', d: '2024-02-29' },
        { dt: '2024-06-30T23:59:59.000Z', ts: null, d: null },
      ]);
      const zone = await sql<{ zone: string }>`select @@session.time_zone as zone`.execute(t.db);
      expect(zone.rows[0]?.zone).toBe('+00:00');
    });
  },
);

describe('SQLite statement cache', () => {
  it('reuses a statement, and prepares a fresh one while the cached one is iterating', async () => {
    const Database = (await import('better-sqlite3')).default;
    const raw = new Database(':memory:');
    const cached = withStatementCache(raw, 2);
    raw.exec('create table n (v integer); insert into n values (1), (2), (3)');
    const first = cached.prepare('select v from n order by v');
    expect(cached.prepare('select v from n order by v')).toBe(first);
    const iterator = (first as unknown as { iterate(): Iterator<unknown> }).iterate();
    iterator.next();
    const during = cached.prepare('select v from n order by v');
    expect(during).not.toBe(first);
    expect((during as unknown as { all(): unknown[] }).all()).toEqual([{ v: 1 }, { v: 2 }, { v: 3 }]);
    iterator.return?.();
    expect(cached.prepare('select v from n order by v')).toBe(first);
    // Least recently used statements leave a full cache.
    cached.prepare('select 1');
    cached.prepare('select 2');
    expect(cached.prepare('select v from n order by v')).not.toBe(first);
    cached.close();
  });

  it('keeps working across schema changes', async () => {
    const t = await createTestDatabase({ engine: 'sqlite', url: 'sqlite' });
    try {
      await t.db.schema.createTable('n').addColumn('v', 'integer').execute();
      await t.db
        .insertInto('n')
        .values([{ v: 1 }])
        .execute();
      expect(await t.db.selectFrom('n').selectAll().execute()).toEqual([{ v: 1 }]);
      await t.db.schema.alterTable('n').addColumn('w', 'integer').execute();
      expect(await t.db.selectFrom('n').selectAll().execute()).toEqual([{ v: 1, w: null }]);
    } finally {
      await t.destroy();
    }
  });
});

describe('sqliteConnectionOf', () => {
  it('gives the connection of a SQLite database openDatabase opened, sharing its data, until it is closed', async () => {
    const db = await openDatabase('sqlite::memory:');
    const connection = sqliteConnectionOf(db);
    expect(connection?.inTransaction).toBe(false);
    await sql`create table t (n integer)`.execute(db);
    connection?.prepare('insert into t (n) values (?)').run(7);
    expect((await sql<{ n: number }>`select n from t`.execute(db)).rows).toEqual([{ n: 7 }]);
    await db.transaction().execute(async (trx) => {
      await sql`insert into t (n) values (8)`.execute(trx);
      expect(connection?.inTransaction).toBe(true);
    });
    await db.destroy();
    expect(sqliteConnectionOf(db)).toBeUndefined();
  });

  it('gives nothing for a kysely instance it did not open', async () => {
    const Database = (await import('better-sqlite3')).default;
    const { Kysely, SqliteDialect } = await import('kysely');
    const own = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) });
    expect(sqliteConnectionOf(own)).toBeUndefined();
    await own.destroy();
  });
});
