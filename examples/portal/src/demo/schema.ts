import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { columnType } from '@privacykit/core/db';

/**
 * The host application's own tables for the demo: what a SaaS company like the seed's keeps about
 * its clients (Article 7 of the seed). A real integration already has these; PrivacyKit only needs
 * the data map (`../data-map.ts`) describing them. Card security codes are never stored (Article 10).
 */
export const demoTables = [
  'customers',
  'contracts',
  'invoices',
  'orders',
  'payment_cards',
  'logins',
  'newsletter_subscriptions',
  'support_tickets',
] as const;

const id = columnType.id;
const tenant = columnType.tenant;
const date = columnType.civilDate;

export const demoSchemaMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('customers')
      .addColumn('id', id, (col) => col.primaryKey())
      .addColumn('tenant', tenant, (col) => col.notNull())
      .addColumn('email', columnType.shortText, (col) => col.notNull())
      .addColumn('customer_number', sql`varchar(32)`, (col) => col.notNull())
      .addColumn('title', sql`varchar(16)`)
      .addColumn('name', columnType.shortText, (col) => col.notNull())
      .addColumn('phone', sql`varchar(64)`)
      .addColumn('address', columnType.text)
      .addColumn('date_of_birth', date)
      .addColumn('created_on', date, (col) => col.notNull())
      .addColumn('contract_end', date)
      .addColumn('last_contact', date)
      .addColumn('last_purchase', date)
      .addColumn('last_account_use', date)
      .execute();
    await db.schema.createIndex('customers_email').on('customers').columns(['tenant', 'email']).execute();
    await db.schema
      .createIndex('customers_number')
      .on('customers')
      .columns(['tenant', 'customer_number'])
      .unique()
      .execute();

    await db.schema
      .createTable('contracts')
      .addColumn('id', id, (col) => col.primaryKey())
      .addColumn('tenant', tenant, (col) => col.notNull())
      .addColumn('customer_id', id, (col) => col.notNull().references('customers.id'))
      .addColumn('plan', sql`varchar(64)`, (col) => col.notNull())
      .addColumn('started_on', date, (col) => col.notNull())
      .addColumn('ended_on', date)
      .execute();

    // Invoices carry the billing identity themselves (an invoice must name its customer), and the
    // link to the customer row is dropped when that row is erased: they outlive it for 10 years.
    await db.schema
      .createTable('invoices')
      .addColumn('id', id, (col) => col.primaryKey())
      .addColumn('tenant', tenant, (col) => col.notNull())
      .addColumn('customer_id', id, (col) => col.references('customers.id').onDelete('set null'))
      .addColumn('billing_email', columnType.shortText, (col) => col.notNull())
      .addColumn('billing_name', columnType.shortText, (col) => col.notNull())
      .addColumn('number', sql`varchar(32)`, (col) => col.notNull())
      .addColumn('invoice_date', date, (col) => col.notNull())
      .addColumn('amount_cents', 'integer', (col) => col.notNull())
      .addColumn('currency', sql`varchar(3)`, (col) => col.notNull())
      .execute();
    await db.schema
      .createIndex('invoices_email')
      .on('invoices')
      .columns(['tenant', 'billing_email'])
      .execute();

    await db.schema
      .createTable('orders')
      .addColumn('id', id, (col) => col.primaryKey())
      .addColumn('tenant', tenant, (col) => col.notNull())
      .addColumn('customer_id', id, (col) => col.notNull().references('customers.id'))
      .addColumn('ordered_on', date, (col) => col.notNull())
      .addColumn('description', columnType.shortText, (col) => col.notNull())
      .addColumn('amount_cents', 'integer', (col) => col.notNull())
      .addColumn('payment_received_on', date)
      .execute();

    await db.schema
      .createTable('payment_cards')
      .addColumn('id', id, (col) => col.primaryKey())
      .addColumn('tenant', tenant, (col) => col.notNull())
      .addColumn('customer_id', id, (col) => col.notNull().references('customers.id'))
      .addColumn('masked_number', sql`varchar(32)`, (col) => col.notNull())
      .addColumn('expiry_month', sql`varchar(7)`, (col) => col.notNull())
      .addColumn('debit_date', date)
      .addColumn('card_type', sql`varchar(16)`, (col) => col.notNull())
      .addColumn('payment_received_on', date)
      .execute();

    await db.schema
      .createTable('logins')
      .addColumn('id', id, (col) => col.primaryKey())
      .addColumn('tenant', tenant, (col) => col.notNull())
      .addColumn('customer_id', id, (col) => col.notNull().references('customers.id'))
      .addColumn('at', columnType.instant, (col) => col.notNull())
      .addColumn('ip_address', sql`varchar(64)`)
      .addColumn('user_agent', columnType.shortText)
      .addColumn('recorded_on', date, (col) => col.notNull())
      .execute();

    await db.schema
      .createTable('newsletter_subscriptions')
      .addColumn('id', id, (col) => col.primaryKey())
      .addColumn('tenant', tenant, (col) => col.notNull())
      .addColumn('email', columnType.shortText, (col) => col.notNull())
      .addColumn('topics', columnType.shortText, (col) => col.notNull())
      .addColumn('subscribed_on', date, (col) => col.notNull())
      .addColumn('unsubscribed_on', date)
      .addColumn('last_contact', date)
      .execute();
    await db.schema
      .createIndex('newsletter_email')
      .on('newsletter_subscriptions')
      .columns(['tenant', 'email'])
      .execute();

    await db.schema
      .createTable('support_tickets')
      .addColumn('id', id, (col) => col.primaryKey())
      .addColumn('tenant', tenant, (col) => col.notNull())
      .addColumn('customer_id', id, (col) => col.notNull().references('customers.id'))
      .addColumn('opened_on', date, (col) => col.notNull())
      .addColumn('closed_on', date)
      .addColumn('subject', columnType.shortText, (col) => col.notNull())
      .addColumn('body', columnType.text, (col) => col.notNull())
      .addColumn('rating', 'integer')
      .execute();
  },
  async down(db: Kysely<any>) {
    for (const table of [...demoTables].reverse()) await db.schema.dropTable(table).ifExists().execute();
  },
};
