// Benchmark: erase one subject with 100,000 rows across 10 tables — plan + execute + verify —
// against raw SQL deletes and updates of the same rows, measured in the same run on identical
// databases. SQLite always; PostgreSQL when PRIVACYKIT_TEST_POSTGRES_URL (or
// PRIVACYKIT_BENCH_POSTGRES_URL) is set. Run: npm run build -w @privacykit/erasure && npx tsx bench/erasure/run.ts
import { defineDataMap, definePolicy, fixedClock } from '@privacykit/core';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase } from '@privacykit/core/testing';
import type { TestEngine } from '@privacykit/core/testing';
import { erasureMigrations, executeErasure, planErasure, verifyErasure } from '@privacykit/erasure';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';

const SUBJECT = 'subject@example.com';
const OTHER = 'other@example.com';
const clock = fixedClock('2025-06-01T12:00:00.000Z');

// Rows of the subject per table (100,001 in all) and of another subject (untouched).
const subjectRows = {
  customers: 1,
  addresses: 1_000,
  sessions: 10_000,
  orders: 10_000,
  order_lines: 30_000,
  invoices: 5_000,
  payments: 5_000,
  tickets: 9_000,
  events: 10_000,
  logs: 20_000,
};

const policy = definePolicy({
  version: '1',
  effectiveDate: '2024-01-01',
  controller: { name: 'Bench SAS' },
  dpo: { email: 'dpo@example.com' },
  supervisoryAuthority: { name: 'CNIL' },
  purposes: [
    {
      id: 'contract',
      name: 'Contract',
      description: 'Contract.',
      legalBases: [{ basis: 'contract' }],
      categories: ['identity', 'contact', 'transaction', 'billing', 'support', 'usage', 'marketing'],
      recipients: ['hosting'],
    },
  ],
  recipients: [{ id: 'hosting', name: 'Hosting', kind: 'processor', locations: ['EU'] }],
  retention: [
    {
      id: 'invoices',
      title: 'Invoices',
      categories: ['billing.invoices'],
      facts: { invoiceDate: { label: 'the invoice date' } },
      phases: [{ action: 'delete', due: { from: 'invoiceDate', after: 'P10Y' } }],
      keepDespiteErasure: 'legal-obligation',
    },
  ],
  rights: { offered: ['erasure'], channels: [{ kind: 'email', value: 'dpo@example.com' }] },
});

const byCustomer = [{ column: 'customer_id', table: 'customers' }];
const dataMap = defineDataMap(
  {
    identities: { email: { normalise: 'email' } },
    tables: {
      customers: {
        primaryKey: 'id',
        identities: { email: 'email' },
        columns: { email: 'contact.email', name: 'identity.name' },
      },
      addresses: { primaryKey: 'id', references: byCustomer, columns: { street: 'contact.postal-address' } },
      sessions: { primaryKey: 'id', references: byCustomer, columns: { ip: 'usage.connection' } },
      orders: { primaryKey: 'id', references: byCustomer, columns: { total: 'transaction.details' } },
      order_lines: {
        primaryKey: 'id',
        references: [{ column: 'order_id', table: 'orders' }],
        columns: { product: 'transaction.details' },
      },
      invoices: {
        primaryKey: 'id',
        references: byCustomer,
        columns: { number: 'billing.invoices', issued_on: 'billing.invoices', note: 'marketing.preferences' },
      },
      payments: {
        primaryKey: 'id',
        references: [{ column: 'invoice_id', table: 'invoices' }],
        columns: { amount: 'billing.payments' },
      },
      tickets: { primaryKey: 'id', references: byCustomer, columns: { body: 'support' } },
      events: {
        primaryKey: 'id',
        identities: { email: 'email' },
        columns: { email: 'usage.logs', kind: 'usage.logs' },
      },
      logs: {
        primaryKey: 'id',
        identities: { email: 'email' },
        columns: { email: 'usage.logs', ip: 'usage.logs' },
      },
    },
  },
  { policy },
);

async function createSchema(db: Kysely<any>): Promise<void> {
  const text = sql`varchar(255)`;
  await db.schema
    .createTable('customers')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('email', text)
    .addColumn('name', text)
    .execute();
  const child = async (
    name: string,
    parent: string,
    column: string,
    extra: [string, 'text' | 'integer'][],
  ) => {
    let table = db.schema
      .createTable(name)
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn(column, 'integer', (c) => c.notNull().references(`${parent}.id`));
    for (const [col, type] of extra) table = table.addColumn(col, type === 'text' ? text : 'integer');
    await table.execute();
    await db.schema.createIndex(`${name}_${column}`).on(name).column(column).execute();
  };
  await child('addresses', 'customers', 'customer_id', [['street', 'text']]);
  await child('sessions', 'customers', 'customer_id', [['ip', 'text']]);
  await child('orders', 'customers', 'customer_id', [['total', 'integer']]);
  await child('order_lines', 'orders', 'order_id', [['product', 'text']]);
  await child('invoices', 'customers', 'customer_id', [
    ['number', 'text'],
    ['issued_on', 'text'],
    ['note', 'text'],
  ]);
  await child('payments', 'invoices', 'invoice_id', [['amount', 'integer']]);
  await child('tickets', 'customers', 'customer_id', [['body', 'text']]);
  for (const name of ['events', 'logs']) {
    await db.schema
      .createTable(name)
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('email', text)
      .addColumn(name === 'events' ? 'kind' : 'ip', text)
      .execute();
    await db.schema.createIndex(`${name}_email`).on(name).column('email').execute();
  }
  await migrate(db, [erasureMigrations]);
}

async function insertAll(db: Kysely<any>, table: string, rows: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 1000)
    await db
      .insertInto(table)
      .values(rows.slice(i, i + 1000))
      .execute();
}

/** The subject (customer 1) with 100,001 rows, and another subject (customer 2) with a tenth of that. */
async function seed(db: Kysely<any>): Promise<void> {
  let id = 1;
  await insertAll(db, 'customers', [
    { id: 1, email: SUBJECT, name: 'Subject' },
    { id: 2, email: OTHER, name: 'Other' },
  ]);
  for (const [customer, share] of [
    [1, 1],
    [2, 0.1],
  ] as const) {
    const n = (table: keyof typeof subjectRows) => Math.round(subjectRows[table] * share);
    const email = customer === 1 ? SUBJECT : OTHER;
    const make = (count: number, f: (i: number) => Record<string, unknown>) =>
      Array.from({ length: count }, (_, i) => ({ id: id++, ...f(i) }));
    await insertAll(
      db,
      'addresses',
      make(n('addresses'), (i) => ({ customer_id: customer, street: `${i} rue Exemple` })),
    );
    await insertAll(
      db,
      'sessions',
      make(n('sessions'), (i) => ({ customer_id: customer, ip: `10.0.${i % 250}.1` })),
    );
    const orders = make(n('orders'), (i) => ({ customer_id: customer, total: i }));
    await insertAll(db, 'orders', orders);
    await insertAll(
      db,
      'order_lines',
      make(n('order_lines'), (i) => ({ order_id: orders[i % orders.length]!.id, product: `p${i}` })),
    );
    const invoices = make(n('invoices'), (i) => ({
      customer_id: customer,
      number: `F-${i}`,
      issued_on: `20${String(15 + (i % 10)).padStart(2, '0')}-0${(i % 9) + 1}-28`,
      note: 'vip',
    }));
    await insertAll(db, 'invoices', invoices);
    await insertAll(
      db,
      'payments',
      make(n('payments'), (i) => ({ invoice_id: invoices[i % invoices.length]!.id, amount: i })),
    );
    await insertAll(
      db,
      'tickets',
      make(n('tickets'), (i) => ({ customer_id: customer, body: `help ${i}` })),
    );
    await insertAll(
      db,
      'events',
      make(n('events'), (i) => ({ email, kind: `k${i % 7}` })),
    );
    await insertAll(
      db,
      'logs',
      make(n('logs'), (i) => ({ email, ip: `192.0.2.${i % 250}` })),
    );
  }
}

/** The same work by hand: children first, one transaction per table, set-based statements. */
async function rawSql(db: Kysely<any>): Promise<void> {
  const statements = [
    sql`delete from order_lines where order_id in (select id from orders where customer_id in (select id from customers where email = ${SUBJECT}))`,
    sql`delete from payments where invoice_id in (select id from invoices where customer_id in (select id from customers where email = ${SUBJECT}))`,
    sql`delete from orders where customer_id in (select id from customers where email = ${SUBJECT})`,
    sql`delete from sessions where customer_id in (select id from customers where email = ${SUBJECT})`,
    sql`delete from addresses where customer_id in (select id from customers where email = ${SUBJECT})`,
    sql`update tickets set body = '[erased]' where customer_id in (select id from customers where email = ${SUBJECT})`,
    sql`update invoices set note = '[erased]' where customer_id in (select id from customers where email = ${SUBJECT})`,
    sql`delete from events where email = ${SUBJECT}`,
    sql`update logs set email = 'pseudonym', ip = '[erased]' where email = ${SUBJECT}`,
    sql`update customers set name = '[erased]' where email = ${SUBJECT}`,
  ];
  for (const statement of statements) await db.transaction().execute((trx) => statement.execute(trx));
}

/** BENCH_DEBUG=1: the slowest statements, summed by their SQL. */
function traced(db: Kysely<any>): { db: Kysely<any>; print(): void } {
  const started = new Map<unknown, [number, string]>();
  const totals = new Map<string, [number, number]>();
  const plugin = {
    transformQuery(args: { node: any; queryId: unknown }) {
      const text = db.getExecutor().compileQuery(args.node, args.queryId as never).sql;
      started.set(args.queryId, [performance.now(), text.replace(/\s+/g, ' ').slice(0, 220)]);
      return args.node;
    },
    async transformResult(args: { result: any; queryId: unknown }) {
      const [t, label] = started.get(args.queryId) ?? [performance.now(), '?'];
      const entry = totals.get(label) ?? [0, 0];
      entry[0] += performance.now() - t;
      entry[1]++;
      totals.set(label, entry);
      return args.result;
    },
  };
  return {
    db: db.withPlugin(plugin),
    print() {
      for (const [label, [ms, n]] of [...totals]
        .sort((a, b) => b[1][0] - a[1][0])
        .slice(0, Number(process.env.BENCH_DEBUG) || 12)) {
        console.log(`  ${ms.toFixed(0).padStart(6)} ms ${String(n).padStart(5)}× ${label}`);
      }
    },
  };
}

async function privacyKit(input: Kysely<any>): Promise<{ plan: number; execute: number; verify: number }> {
  const trace = process.env.BENCH_DEBUG ? traced(input) : undefined;
  const db = trace?.db ?? input;
  const t0 = performance.now();
  const plan = await planErasure({
    db,
    dataMap,
    policy,
    identities: { email: [SUBJECT] },
    clock,
    strategies: { tickets: { body: 'redact' }, logs: { email: 'hmac', ip: 'redact' } },
    facts: { invoices: { invoiceDate: 'issued_on' } },
  });
  const t1 = performance.now();
  const report = await executeErasure(plan, { db, clock, batchSize: 5000 });
  if (process.env.BENCH_DEBUG) console.log(report.tables.map((r) => `${r.table}:${r.ms}`).join(' '));
  const t2 = performance.now();
  const verification = await verifyErasure({ db, plan, clock });
  const t3 = performance.now();
  trace?.print();
  if (report.status !== 'partial' || !verification.ok) {
    throw new Error(
      `unexpected outcome ${report.status} / ${JSON.stringify(verification.leftovers.slice(0, 3))}`,
    );
  }
  return { plan: t1 - t0, execute: t2 - t1, verify: t3 - t2 };
}

async function once(
  engine: TestEngine,
): Promise<{ raw: number; plan: number; execute: number; verify: number }> {
  const raw = await createTestDatabase(engine);
  const ours = await createTestDatabase(engine);
  try {
    for (const t of [raw, ours]) {
      await createSchema(t.db);
      await seed(t.db);
    }
    const r0 = performance.now();
    await rawSql(raw.db);
    const baseline = performance.now() - r0;
    return { raw: baseline, ...(await privacyKit(ours.db)) };
  } finally {
    await raw.destroy();
    await ours.destroy();
  }
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function bench(engine: TestEngine): Promise<void> {
  const ms = (n: number) => `${n.toFixed(0)} ms`;
  const ratios: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const r = await once(engine);
    const total = r.plan + r.execute + r.verify;
    ratios.push(total / r.raw);
    console.log(
      `${engine.engine.padEnd(8)} #${round} raw SQL ${ms(r.raw)} | PrivacyKit ${ms(total)} (plan ${ms(r.plan)}, execute ${ms(r.execute)}, verify ${ms(r.verify)}) | ratio ${(total / r.raw).toFixed(2)}×`,
    );
  }
  ratios.sort((a, b) => a - b);
  console.log(
    `${engine.engine.padEnd(8)} median ratio ${ratios[Math.floor(ratios.length / 2)]!.toFixed(2)}× over ${ROUNDS} rounds (target ≤ 3×)`,
  );
}

const engines: TestEngine[] = [{ engine: 'sqlite', url: 'sqlite' }];
const pg = process.env.PRIVACYKIT_BENCH_POSTGRES_URL ?? process.env.PRIVACYKIT_TEST_POSTGRES_URL;
if (pg) engines.push({ engine: 'postgres', url: pg });
console.log(
  `erasure of one subject: ${Object.values(subjectRows).reduce((a, b) => a + b, 0)} rows across 10 tables`,
);
for (const engine of engines) await bench(engine);
