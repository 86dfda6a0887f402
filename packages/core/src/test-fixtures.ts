import type { PolicyInput } from './policy.js';

/** A small valid policy for tests; tests spread it and break one thing at a time. */
export function samplePolicyInput(): PolicyInput {
  return {
    version: '1',
    effectiveDate: '2024-01-01',
    zone: 'Europe/Paris',
    controller: { name: 'Example SAS', address: '1 rue Exemple, Paris' },
    dpo: { email: 'dpo@example.com' },
    supervisoryAuthority: { name: 'CNIL', website: 'https://www.cnil.fr/' },
    dataSubjects: [{ id: 'customers', label: 'Customers' }],
    prohibitedCategories: ['payment.card.security-code'],
    purposes: [
      {
        id: 'contract',
        name: 'Perform the contract',
        description: 'Deliver what you ordered.',
        legalBases: [{ basis: 'contract' }],
        categories: ['identity.name', 'contact.email', 'billing.invoices'],
        dataSubjects: ['customers'],
        recipients: ['hosting'],
        retention: ['invoices'],
      },
      {
        id: 'newsletter',
        name: 'Newsletter',
        description: 'Send our news.',
        legalBases: [{ basis: 'consent' }],
        categories: ['contact.email'],
        recipients: ['mailer'],
      },
    ],
    recipients: [
      { id: 'hosting', name: 'Hosting Ltd', kind: 'processor', locations: ['EU'] },
      { id: 'mailer', name: 'Mailer Inc', kind: 'processor', locations: ['US'] },
    ],
    transfers: [
      { id: 'us', recipients: ['mailer'], destination: 'US', safeguard: 'standard-contractual-clauses' },
    ],
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
    rights: {
      offered: ['access', 'erasure', 'complaint'],
      channels: [{ kind: 'email', value: 'dpo@example.com' }],
    },
  };
}
