// Test fixtures: a small host schema (customers, orders → customers, order_lines → orders,
// invoices → customers kept 10 years, logs keyed by email, an audit table without a primary
// key), its data map and policy, and two subjects. Not part of the published API.
import { definePolicy, defineDataMap, fixedClock } from '@privacykit/core';
import type { DataMap, DataMapInput, Policy } from '@privacykit/core';
import { migrate } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { erasureMigrations } from './migrations.js';
import { planErasure } from './plan.js';
import type { PlanErasureOptions } from './plan.js';

export const policy: Policy = definePolicy({
  version: '1',
  effectiveDate: '2024-01-01',
  zone: 'Europe/Paris',
  controller: { name: 'Example SAS', address: '1 rue Exemple, Paris' },
  dpo: { email: 'dpo@example.com' },
  supervisoryAuthority: { name: 'CNIL', website: 'https://www.cnil.fr/' },
  purposes: [
    {
      id: 'contract',
      name: 'Perform the contract',
      description: 'Deliver what you ordered.',
      legalBases: [{ basis: 'contract' }],
      categories: ['identity', 'contact', 'transaction', 'billing.invoices'],
      recipients: ['staff', 'hosting', 'payments'],
      retention: ['invoices'],
    },
    {
      id: 'security',
      name: 'Keep the service secure',
      description: 'Logs.',
      legalBases: [{ basis: 'legitimate-interests', legitimateInterest: 'security of the service' }],
      categories: ['usage.logs'],
      recipients: ['hosting'],
    },
    {
      id: 'newsletter',
      name: 'Newsletter',
      description: 'Send our news.',
      legalBases: [{ basis: 'consent' }],
      categories: ['marketing.preferences'],
      recipients: ['mailer'],
    },
  ],
  recipients: [
    { id: 'staff', name: 'Our staff', kind: 'internal', locations: ['FR'] },
    {
      id: 'hosting',
      name: 'Hosting Ltd',
      kind: 'processor',
      locations: ['EU'],
      contact: 'privacy@hosting.example',
    },
    { id: 'payments', name: 'Payments SA', kind: 'processor', locations: ['EU'] },
    { id: 'mailer', name: 'Mailer Inc', kind: 'processor', locations: ['EU'] },
  ],
  retention: [
    {
      id: 'invoices',
      title: 'Invoices and accounting data',
      categories: ['billing.invoices'],
      facts: { invoiceDate: { label: 'the invoice date' } },
      phases: [{ action: 'delete', due: { from: 'invoiceDate', after: 'P10Y' } }],
      keepDespiteErasure: 'legal-obligation',
    },
  ],
  rights: { offered: ['access', 'erasure'], channels: [{ kind: 'email', value: 'dpo@example.com' }] },
});

export const dataMapInput: DataMapInput = {
  identities: { email: { normalise: 'email' } },
  tables: {
    customers: {
      primaryKey: 'id',
      identities: { email: 'email' },
      columns: {
        email: 'contact.email',
        name: 'identity.name',
        phone: 'contact.phone',
        born_on: 'identity.date-of-birth',
      },
    },
    orders: {
      primaryKey: 'id',
      references: [{ column: 'customer_id', table: 'customers' }],
      columns: { total: 'transaction.details', placed_at: 'transaction.details' },
    },
    order_lines: {
      primaryKey: 'id',
      references: [{ column: 'order_id', table: 'orders' }],
      columns: { product: 'transaction.details', quantity: 'transaction.details' },
    },
    invoices: {
      primaryKey: 'id',
      references: [{ column: 'customer_id', table: 'customers' }],
      columns: {
        number: 'billing.invoices',
        issued_on: 'billing.invoices',
        billing_name: 'billing.invoices',
        amount_cents: 'billing.invoices',
        marketing_note: 'marketing.preferences',
      },
    },
    logs: {
      primaryKey: 'id',
      identities: { email: 'email' },
      columns: {
        email: 'usage.logs',
        ip: 'usage.logs',
        message: 'usage.logs',
        at: 'usage.logs',
        latency: 'usage.logs',
      },
    },
  },
};

export const dataMap: DataMap = defineDataMap(dataMapInput, { policy });

/** The same map plus `audit_trail`, a table without a primary key. */
export const dataMapWithAudit: DataMap = defineDataMap(
  {
    ...dataMapInput,
    tables: {
      ...dataMapInput.tables,
      audit_trail: { identities: { email: 'email' }, columns: { email: 'usage.logs', action: 'usage.logs' } },
    },
  },
  { policy },
);

export const strategies = {
  logs: {
    email: 'hmac',
    ip: 'redact',
    message: 'random',
    at: 'generalise',
    latency: { strategy: 'generalise', bucket: 100 },
  },
} as const;

export const facts = { invoices: { invoiceDate: 'issued_on' } };

export const ada = { email: ['Ada@Example.com'] };
export const bob = { email: ['bob@example.com'] };

/** Creates the host tables and the erasure tables, and inserts Ada's and Bob's data. */
export async function seedHost(db: Kysely<any>, options: { adaLogs?: number } = {}): Promise<void> {
  await db.schema
    .createTable('customers')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('email', sql`varchar(255)`, (c) => c.notNull())
    .addColumn('name', sql`varchar(255)`, (c) => c.notNull())
    .addColumn('phone', sql`varchar(64)`)
    .addColumn('born_on', 'date')
    .execute();
  await db.schema
    .createTable('orders')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('customer_id', 'integer', (c) => c.notNull().references('customers.id'))
    .addColumn('total', sql`numeric(10, 2)`, (c) => c.notNull())
    .addColumn('placed_at', sql`varchar(32)`, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('order_lines')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('order_id', 'integer', (c) => c.notNull().references('orders.id'))
    .addColumn('product', sql`varchar(255)`, (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('invoices')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('customer_id', 'integer', (c) => c.notNull().references('customers.id'))
    .addColumn('number', sql`varchar(32)`, (c) => c.notNull())
    .addColumn('issued_on', sql`varchar(10)`, (c) => c.notNull())
    .addColumn('billing_name', sql`varchar(255)`, (c) => c.notNull())
    .addColumn('amount_cents', 'integer', (c) => c.notNull())
    .addColumn('marketing_note', sql`varchar(255)`)
    .execute();
  await db.schema
    .createTable('logs')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('email', sql`varchar(255)`, (c) => c.notNull())
    .addColumn('ip', sql`varchar(64)`, (c) => c.notNull())
    .addColumn('message', sql`varchar(255)`, (c) => c.notNull())
    .addColumn('at', sql`varchar(32)`, (c) => c.notNull())
    .addColumn('latency', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('audit_trail')
    .addColumn('email', sql`varchar(255)`, (c) => c.notNull())
    .addColumn('action', sql`varchar(64)`, (c) => c.notNull())
    .execute();
  await migrate(db, [erasureMigrations]);

  await db
    .insertInto('customers')
    .values([
      {
        id: 1,
        email: 'ada@example.com',
        name: 'Ada Lovelace',
        phone: '+33 1 23 45 67 89',
        born_on: '1985-03-04',
      },
      { id: 2, email: 'bob@example.com', name: 'Bob Martin', phone: null, born_on: '1990-12-31' },
    ])
    .execute();
  await db
    .insertInto('orders')
    .values([
      { id: 10, customer_id: 1, total: '12.50', placed_at: '2024-05-01T10:00:00.000Z' },
      { id: 11, customer_id: 1, total: '99.99', placed_at: '2024-06-01T10:00:00.000Z' },
      { id: 12, customer_id: 1, total: '5.00', placed_at: '2024-07-01T10:00:00.000Z' },
      { id: 20, customer_id: 2, total: '42.00', placed_at: '2024-05-02T10:00:00.000Z' },
    ])
    .execute();
  await db
    .insertInto('order_lines')
    .values([
      { id: 100, order_id: 10, product: 'Book', quantity: 1 },
      { id: 101, order_id: 10, product: 'Pen', quantity: 3 },
      { id: 102, order_id: 11, product: 'Lamp', quantity: 1 },
      { id: 103, order_id: 12, product: 'Mug', quantity: 2 },
      { id: 200, order_id: 20, product: 'Chair', quantity: 1 },
    ])
    .execute();
  await db
    .insertInto('invoices')
    .values([
      {
        id: 1000,
        customer_id: 1,
        number: 'F-2020-1',
        issued_on: '2020-01-31',
        billing_name: 'Ada Lovelace',
        amount_cents: 1250,
        marketing_note: 'likes books',
      },
      {
        id: 1001,
        customer_id: 1,
        number: 'F-2024-7',
        issued_on: '2024-02-29',
        billing_name: 'Ada Lovelace',
        amount_cents: 9999,
        marketing_note: null,
      },
      {
        id: 2000,
        customer_id: 2,
        number: 'F-2024-9',
        issued_on: '2024-05-02',
        billing_name: 'Bob Martin',
        amount_cents: 4200,
        marketing_note: 'vip',
      },
    ])
    .execute();
  const logs = [];
  const adaLogs = options.adaLogs ?? 5;
  for (let i = 0; i < adaLogs; i++) {
    logs.push({
      id: 5000 + i,
      email: 'ada@example.com',
      ip: `192.0.2.${i + 1}`,
      message: `login ${i}`,
      at: `2024-0${(i % 9) + 1}-15T08:30:00.000Z`,
      latency: 120 + i * 37,
    });
  }
  logs.push({
    id: 6000,
    email: 'bob@example.com',
    ip: '198.51.100.7',
    message: 'login',
    at: '2024-03-03T09:00:00.000Z',
    latency: 80,
  });
  logs.push({
    id: 6001,
    email: 'bob@example.com',
    ip: '198.51.100.7',
    message: 'logout',
    at: '2024-03-03T10:00:00.000Z',
    latency: 55,
  });
  await db.insertInto('logs').values(logs).execute();
  await db
    .insertInto('audit_trail')
    .values([
      { email: 'ada@example.com', action: 'login' },
      { email: 'ada@example.com', action: 'export' },
      { email: 'bob@example.com', action: 'login' },
    ])
    .execute();
}

/** Every host row as plain text, table by table in key order: compares whole database states. */
export async function dumpHost(db: Kysely<any>): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [table, order] of [
    ['customers', 'id'],
    ['orders', 'id'],
    ['order_lines', 'id'],
    ['invoices', 'id'],
    ['logs', 'id'],
    ['audit_trail', 'action'],
  ] as const) {
    const rows = await db.selectFrom(table).selectAll().orderBy(order).execute();
    out[table] = rows
      .map((row) =>
        JSON.stringify(
          Object.fromEntries(
            Object.entries(row).map(([k, v]) => [
              k,
              v instanceof Date ? v.toISOString().slice(0, 10) : v === null ? null : String(v),
            ]),
          ),
        ),
      )
      .sort();
  }
  return out;
}

/** Only the rows of Bob, the other subject, which erasure must never touch. */
export async function dumpBob(db: Kysely<any>): Promise<string[]> {
  const all = await dumpHost(db);
  return Object.values(all)
    .flat()
    .filter(
      (row) => row.includes('bob@') || row.includes('Bob') || /"customer_id":"2"|"order_id":"20"/.test(row),
    );
}

/**
 * An erasure of Ada (or of `identities`) planned with these fixtures at 2025-06-01T12:00Z, as the
 * concurrency tests and their worker processes plan it.
 */
export function planFixtureErasure(db: Kysely<any>, extra: Partial<PlanErasureOptions> = {}) {
  return planErasure({
    db,
    dataMap,
    policy,
    identities: ada,
    clock: fixedClock('2025-06-01T12:00:00.000Z'),
    strategies,
    facts,
    ...extra,
  });
}

/**
 * The application writing on a connection of its own (`db`: a second `openDatabase` on the same
 * SQLite file): a plain kysely transaction that inserts Bob's `audit_trail` row `action`, then
 * holds the write lock across a 300 ms timer. Resolves once it holds the lock; `committed` settles
 * when it ends.
 */
export async function holdWriteLock(db: Kysely<any>, action: string): Promise<{ committed: Promise<void> }> {
  let holding!: () => void;
  const held = new Promise<void>((resolve) => {
    holding = resolve;
  });
  const committed = db.transaction().execute(async (trx) => {
    await trx.insertInto('audit_trail').values({ email: 'bob@example.com', action }).execute();
    holding();
    await new Promise((resolve) => setTimeout(resolve, 300));
  });
  // A failed insert rejects here instead of leaving the caller waiting for `held`.
  await Promise.race([held, committed]);
  return { committed };
}

/** The application's audit rows (written by `holdWriteLock` and the seed), by action. */
export function applicationWrites(db: Kysely<any>): Promise<{ action: string }[]> {
  return db
    .selectFrom('audit_trail')
    .select('action')
    .where('email', '=', 'bob@example.com')
    .orderBy('action')
    .execute() as Promise<{ action: string }[]>;
}
