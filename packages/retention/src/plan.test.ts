import { retentionRuleSchema } from '@privacykit/core';
import type { RetentionRule } from '@privacykit/core';
import { describe, expect, it } from 'vitest';
import { seedRetentionRules } from './fixtures/seed-retention.js';
import { currentPhase, planRetention } from './plan.js';
import type { RetentionFacts } from './plan.js';

const rules = new Map<string, RetentionRule>(
  seedRetentionRules.map((input) => {
    const rule = retentionRuleSchema.parse(input);
    return [rule.id, rule];
  }),
);
const paris = { zone: 'Europe/Paris' };

function dues(id: string, facts: RetentionFacts, options = paris): (string | null)[] {
  const rule = rules.get(id);
  if (!rule) throw new Error(`no rule ${id}`);
  return planRetention(rule, facts, options).phases.map((phase) => phase.due);
}

describe('the seed’s Article 10, planned with worked dates', () => {
  it('customer relationship: restricted at the end of the contract, deleted 5 years later', () => {
    expect(dues('customer-relationship', { contractEnd: '2024-01-31' })).toEqual([
      '2024-01-31',
      '2029-01-31',
    ]);
    expect(dues('customer-relationship', { contractEnd: '2024-02-29' })).toEqual([
      '2024-02-29',
      '2029-02-28',
    ]);
    // A contract still running has no end: never due.
    expect(dues('customer-relationship', { contractEnd: null })).toEqual([null, null]);
    const plan = planRetention(
      rules.get('customer-relationship') as RetentionRule,
      { contractEnd: '2024-01-31' },
      paris,
    );
    expect(plan.phases.map((p) => p.action)).toEqual(['restrict', 'delete']);
    expect(currentPhase(plan, '2024-01-30')).toBeNull();
    expect(currentPhase(plan, '2028-12-31')?.action).toBe('restrict');
    expect(currentPhase(plan, '2029-01-31')?.action).toBe('delete');
  });

  it('invoices: 10 years, Feb 29 clamps to Feb 28', () => {
    expect(dues('invoices', { invoiceDate: '2016-02-29' })).toEqual(['2026-02-28']);
    expect(dues('invoices', { invoiceDate: '2015-03-31' })).toEqual(['2025-03-31']);
  });

  it('prospects: the later of collection and last contact + 3 years; a missing last contact is ignored', () => {
    expect(dues('prospects', { collectedAt: '2023-01-31', lastContact: '2024-02-29' })).toEqual([
      '2027-02-28',
    ]);
    expect(dues('prospects', { collectedAt: '2023-01-31', lastContact: null })).toEqual(['2026-01-31']);
    expect(dues('prospects', { collectedAt: '2024-02-29', lastContact: '2023-06-01' })).toEqual([
      '2027-02-28',
    ]);
    expect(dues('prospects', {})).toEqual([null]);
  });

  it('bank card: 13 months after debit (15 deferred), never past the expiry month', () => {
    const base = { paymentReceived: '2024-01-30', debitDate: '2024-01-31', cardExpiry: '2026-12' };
    expect(dues('bank-card', { ...base, cardType: 'immediate' })).toEqual(['2024-01-30', '2025-02-28']);
    expect(dues('bank-card', { ...base, cardType: 'deferred' })).toEqual(['2024-01-30', '2025-04-30']);
    // A card expiring "12/24" caps the proof period at 2024-12-31.
    expect(dues('bank-card', { ...base, cardType: 'deferred', cardExpiry: '2024-12' })).toEqual([
      '2024-01-30',
      '2024-12-31',
    ]);
    // Expiry in February of a leap year ends on the 29th.
    expect(dues('bank-card', { ...base, cardType: 'immediate', cardExpiry: '2024-02' })).toEqual([
      '2024-01-30',
      '2024-02-29',
    ]);
    // Missing debit date: the expiry alone still bounds it.
    expect(dues('bank-card', { cardExpiry: '2025-06' })).toEqual([null, '2025-06-30']);
  });

  it('marketing data of clients and non-clients: 3 years', () => {
    expect(dues('marketing-clients', { relationshipEnd: '2021-02-28' })).toEqual(['2024-02-28']);
    expect(dues('marketing-non-clients', { lastContact: '2024-02-29' })).toEqual(['2027-02-28']);
  });

  it('marketing after inactivity: restricted 27 months after the later activity, deleted 5 years on; subscribers never', () => {
    const facts = { lastPurchase: '2022-11-30', lastAccountUse: '2023-01-31' };
    expect(dues('marketing-inactive', { ...facts, subscribed: false })).toEqual(['2025-04-30', '2030-04-30']);
    expect(dues('marketing-inactive', { ...facts, subscribed: 0 })).toEqual(['2025-04-30', '2030-04-30']);
    expect(dues('marketing-inactive', { ...facts })).toEqual(['2025-04-30', '2030-04-30']);
    expect(dues('marketing-inactive', { ...facts, subscribed: true })).toEqual([null, null]);
    expect(dues('marketing-inactive', { ...facts, subscribed: 1 })).toEqual([null, null]);
  });

  it('ID documents: 1 year for access or rectification, 3 years for objection, by request type', () => {
    expect(dues('id-documents', { requestClosed: '2024-02-29', requestType: 'access' })).toEqual([
      '2025-02-28',
    ]);
    expect(dues('id-documents', { requestClosed: '2024-02-29', requestType: 'rectification' })).toEqual([
      '2025-02-28',
    ]);
    expect(dues('id-documents', { requestClosed: '2024-02-29', requestType: 'objection' })).toEqual([
      '2027-02-28',
    ]);
    expect(dues('id-documents', { requestClosed: '2024-02-29', requestType: 'erasure' })).toEqual([null]);
  });

  it('visitor statistics (26 months) and traffic data (13 months), instants dated in the rule’s zone', () => {
    expect(dues('visitor-statistics', { collectedAt: '2023-12-31' })).toEqual(['2026-02-28']);
    // 23:30 UTC on Jan 31 is already Feb 1 in Paris.
    expect(dues('traffic-data', { recordedAt: '2024-01-31T23:30:00Z' })).toEqual(['2025-03-01']);
    expect(dues('traffic-data', { recordedAt: '2024-01-31T23:30:00Z' }, { zone: 'UTC' })).toEqual([
      '2025-02-28',
    ]);
  });

  it('pre-litigation: at settlement, else at the limitation date; litigation: when appeals are exhausted', () => {
    expect(dues('pre-litigation', { settledAt: '2024-03-31', limitationDate: '2029-05-31' })).toEqual([
      '2024-03-31',
    ]);
    expect(dues('pre-litigation', { settledAt: null, limitationDate: '2029-05-31' })).toEqual(['2029-05-31']);
    expect(dues('litigation', {})).toEqual([null]);
    expect(dues('litigation', { appealsExhausted: '2027-01-31' })).toEqual(['2027-01-31']);
  });

  it('a rule’s own zone wins over the default', () => {
    const rule = { ...(rules.get('traffic-data') as RetentionRule), zone: 'America/New_York' };
    expect(planRetention(rule, { recordedAt: '2024-02-01T03:00:00Z' }, paris).phases[0]?.due).toBe(
      '2025-02-28',
    );
  });

  it('rejects malformed dates and unknown zones with typed errors', () => {
    expect(() => dues('invoices', { invoiceDate: '2024-02-30' })).toThrow(
      expect.objectContaining({ code: 'retention/invalid-fact' }),
    );
    expect(() => dues('invoices', { invoiceDate: 20240101 })).toThrow(
      expect.objectContaining({ code: 'retention/invalid-fact' }),
    );
    expect(() => dues('invoices', { invoiceDate: '2024-01-01' }, { zone: 'Mars/Olympus' })).toThrow(
      expect.objectContaining({ code: 'retention/invalid-zone' }),
    );
  });

  it('refuses an instant without a zone, whose date JavaScript would take in the process zone', () => {
    const rule = rules.get('traffic-data') as RetentionRule;
    const due = (recordedAt: string) => planRetention(rule, { recordedAt }, paris).phases[0]?.due;
    const zone = process.env.TZ;
    try {
      // Before: 2025-02-28 under TZ=Europe/Paris, 2025-03-01 under UTC, for the same row.
      for (const tz of ['UTC', 'Asia/Tokyo', 'America/New_York']) {
        process.env.TZ = tz;
        expect(() => due('2024-01-31T23:30:00')).toThrow(
          expect.objectContaining({ code: 'retention/invalid-fact' }),
        );
        expect(() => due('2024-01-31T23:30')).toThrow(
          expect.objectContaining({ code: 'retention/invalid-fact' }),
        );
        expect(due('2024-01-31T23:30:00Z')).toBe(due('2024-02-01T00:30:00+01:00'));
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });
});
