import { defineDataMap } from '@privacykit/core';
import { seedPolicy } from './policy.js';

/**
 * Where the demo host application keeps personal data (`demo/schema.ts`), column by column. The
 * access export, erasure and retention all read this one map; `defineDataMap` refuses a table no
 * identity reaches and any column holding a category the policy prohibits (card security codes).
 */
export const dataMap = defineDataMap(
  {
    identities: {
      email: { normalise: 'email' },
      customerNumber: { normalise: 'exact' },
    },
    tenantColumn: 'tenant',
    tables: {
      customers: {
        primaryKey: 'id',
        identities: { email: 'email', customerNumber: 'customer_number' },
        columns: {
          email: 'contact.email',
          customer_number: 'identity.customer-number',
          title: 'identity.title',
          name: 'identity.name',
          phone: 'contact.phone',
          address: 'contact.postal-address',
          date_of_birth: 'identity.date-of-birth',
          created_on: 'account',
          contract_end: 'account.subscription',
          last_contact: 'account',
          last_purchase: 'transaction',
          last_account_use: 'usage.login-history',
        },
        description: 'Client accounts (Article 7: identity, contact details, account)',
      },
      contracts: {
        primaryKey: 'id',
        references: [{ column: 'customer_id', table: 'customers' }],
        columns: {
          plan: 'account.subscription',
          started_on: 'account.subscription',
          ended_on: 'account.subscription',
        },
        description: 'Subscribed SERVICES',
      },
      invoices: {
        primaryKey: 'id',
        // Reached through the billing email only: the invoice outlives the customer row
        // (10 years, Art 17(3)(b)), so it must not depend on it to be found for Art 15.
        identities: { email: 'billing_email' },
        columns: {
          billing_email: 'billing.invoices',
          billing_name: 'billing.invoices',
          number: 'billing.invoices',
          invoice_date: 'billing.invoices',
          amount_cents: 'billing.invoices',
          currency: 'billing.invoices',
        },
        description: 'Invoices, kept 10 years under the Code of Commerce',
      },
      orders: {
        primaryKey: 'id',
        references: [{ column: 'customer_id', table: 'customers' }],
        columns: {
          ordered_on: 'transaction.details',
          description: 'transaction.details',
          amount_cents: 'transaction.details',
          payment_received_on: 'transaction.details',
        },
        // Not `billing.payments`: the seed keeps that category despite erasure for pre-litigation
        // (Art 17(3)(e)), and these rows are no dispute's evidence; unpaid invoices would be.
        description: 'Orders and their payments',
      },
      payment_cards: {
        primaryKey: 'id',
        references: [{ column: 'customer_id', table: 'customers' }],
        columns: {
          masked_number: 'payment.card.number',
          expiry_month: 'payment.card.expiry',
          debit_date: 'payment.card',
          card_type: 'payment.method',
          payment_received_on: 'payment.card',
        },
        description: 'Bank cards on file (masked number and expiry only; never the security code)',
      },
      logins: {
        primaryKey: 'id',
        references: [{ column: 'customer_id', table: 'customers' }],
        columns: {
          at: 'usage.login-history',
          ip_address: 'usage.connection',
          user_agent: 'usage.connection',
          recorded_on: 'usage.logs',
        },
        description: 'Login and traffic logs',
      },
      newsletter_subscriptions: {
        primaryKey: 'id',
        identities: { email: 'email' },
        columns: {
          email: 'contact.email',
          topics: 'marketing.preferences',
          subscribed_on: 'marketing.preferences',
          unsubscribed_on: 'marketing.preferences',
          last_contact: 'marketing.preferences',
        },
        description: 'Newsletter subscriptions (clients and prospects)',
      },
      support_tickets: {
        primaryKey: 'id',
        references: [{ column: 'customer_id', table: 'customers' }],
        columns: {
          opened_on: 'support',
          closed_on: 'support',
          subject: 'support',
          body: 'support',
          rating: 'support.reviews',
        },
        description: 'Help and support requests',
      },
    },
  },
  { policy: seedPolicy },
);
