import type { ScheduleEntryInput } from '@privacykit/retention';

const customerChildren = ['contracts', 'orders', 'payment_cards', 'logins', 'support_tickets'].map(
  (table) => ({
    table,
    column: 'customer_id',
    key: 'id',
  }),
);

/**
 * The seed's Article 10 rules bound to the demo tables: which column holds each fact a rule
 * counts from. Invoices are not children of customers: they outlive them (10 years).
 */
export const retentionSchedule: ScheduleEntryInput[] = [
  {
    rule: 'customer-relationship',
    table: 'customers',
    key: 'id',
    tenantColumn: 'tenant',
    facts: { contractEnd: 'contract_end' },
    children: customerChildren,
  },
  {
    rule: 'invoices',
    table: 'invoices',
    key: 'id',
    tenantColumn: 'tenant',
    facts: { invoiceDate: 'invoice_date' },
  },
  {
    rule: 'bank-card',
    table: 'payment_cards',
    key: 'id',
    tenantColumn: 'tenant',
    facts: {
      paymentReceived: 'payment_received_on',
      debitDate: 'debit_date',
      cardType: 'card_type',
      cardExpiry: 'expiry_month',
    },
  },
  {
    rule: 'traffic-data',
    table: 'logins',
    key: 'id',
    tenantColumn: 'tenant',
    facts: { recordedAt: 'recorded_on' },
    anonymise: { ip_address: 'null', user_agent: 'null' },
  },
  {
    rule: 'marketing-non-clients',
    table: 'newsletter_subscriptions',
    key: 'id',
    tenantColumn: 'tenant',
    facts: { lastContact: 'last_contact' },
  },
];
