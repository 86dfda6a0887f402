import { categoryCovers, parsePeriod, privacyNotice } from '@privacykit/core';
import type { DueExpression } from '@privacykit/core';
import { describe, expect, it } from 'vitest';
import { seedPolicy } from './policy.js';

/** Every (trigger fact, period) pair a due expression contains, conditions aside. */
function periods(expression: DueExpression): string[] {
  if ('from' in expression)
    return [`${expression.from}+${expression.after ?? (expression.endOfMonth ? 'end-of-month' : '0')}`];
  if ('earliest' in expression) return expression.earliest.flatMap(periods);
  if ('latest' in expression) return expression.latest.flatMap(periods);
  return [
    ...expression.when.flatMap((branch) => periods(branch.then)),
    ...(expression.otherwise ? periods(expression.otherwise) : []),
  ];
}

function rule(id: string) {
  const found = seedPolicy.retention.find((candidate) => candidate.id === id);
  if (!found) throw new Error(`seed policy lacks retention rule ${id}`);
  return found.phases.map((phase) => ({ action: phase.action, periods: periods(phase.due) }));
}

describe('the seed policy as code', () => {
  it('declares every Article 10 period with its duration and trigger', () => {
    expect(rule('customer-relationship')).toEqual([
      { action: 'restrict', periods: ['contractEnd+0'] },
      { action: 'delete', periods: ['contractEnd+P5Y'] },
    ]);
    expect(rule('invoices')).toEqual([{ action: 'delete', periods: ['invoiceDate+P10Y'] }]);
    expect(rule('prospects')).toEqual([
      { action: 'delete', periods: ['collectedAt+P3Y', 'lastContact+P3Y'] },
    ]);
    expect(rule('bank-card')).toEqual([
      { action: 'restrict', periods: ['paymentReceived+0'] },
      { action: 'delete', periods: ['debitDate+P15M', 'debitDate+P13M', 'cardExpiry+end-of-month'] },
    ]);
    expect(rule('marketing-clients')).toEqual([{ action: 'delete', periods: ['relationshipEnd+P3Y'] }]);
    expect(rule('marketing-non-clients')).toEqual([{ action: 'delete', periods: ['lastContact+P3Y'] }]);
    expect(rule('marketing-inactive')).toEqual([
      { action: 'restrict', periods: ['lastPurchase+P27M', 'lastAccountUse+P27M'] },
      // 27 months, then five years of archive: 7 years 3 months from the same trigger.
      { action: 'delete', periods: ['lastPurchase+P7Y3M', 'lastAccountUse+P7Y3M'] },
    ]);
    expect(rule('id-documents')).toEqual([
      { action: 'delete', periods: ['requestClosed+P1Y', 'requestClosed+P3Y'] },
    ]);
    expect(rule('visitor-statistics')).toEqual([{ action: 'anonymise', periods: ['collectedAt+P26M'] }]);
    expect(rule('traffic-data')).toEqual([{ action: 'anonymise', periods: ['recordedAt+P13M'] }]);
    expect(rule('pre-litigation')).toEqual([
      { action: 'delete', periods: ['settledAt+0', 'limitationDate+0'] },
    ]);
    expect(rule('litigation')).toEqual([{ action: 'delete', periods: ['appealsExhausted+0'] }]);
    expect(seedPolicy.retention).toHaveLength(12);
  });

  it('keeps invoices and litigation data through an erasure request (Art 17(3))', () => {
    const grounds = Object.fromEntries(seedPolicy.retention.map((r) => [r.id, r.keepDespiteErasure]));
    expect(grounds).toMatchObject({
      invoices: 'legal-obligation',
      litigation: 'legal-claims',
      'pre-litigation': 'legal-claims',
    });
    expect(parsePeriod('P7Y3M')).toEqual({ years: 7, months: 3, weeks: 0, days: 0 });
  });

  it('never stores card security codes, and asks consent only where the seed does', () => {
    expect(seedPolicy.prohibitedCategories).toEqual(['payment.card.security-code']);
    const consent = seedPolicy.purposes
      .filter((p) => p.legalBases.some((b) => b.basis === 'consent'))
      .map((p) => p.id);
    expect(consent).toEqual(['newsletter', 'audience-measurement', 'targeted-advertising']);
    const exempt = seedPolicy.cookies.filter((c) => c.exempt).map((c) => c.name);
    expect(exempt).toEqual(['pk_session', 'pk_consent']);
  });

  it('offers every right of Article 11, directives after death included', () => {
    expect(seedPolicy.rights.offered).toEqual(
      expect.arrayContaining([
        'access',
        'rectification',
        'erasure',
        'restriction',
        'portability',
        'objection',
        'withdraw-consent',
        'post-mortem-directives',
      ]),
    );
    expect(seedPolicy.dpo.email).toBe('cil@opendatasoft.com');
  });

  it('processes the whole Article 7 identity block for every purpose Article 7 lists it under', () => {
    // "Information about your identity: title, last and first names, address, telephone number,
    // email addresses, customer number, date of birth."
    const identityBlock = [
      'identity.title',
      'identity.name',
      'contact.postal-address',
      'contact.phone',
      'contact.email',
      'identity.customer-number',
      'identity.date-of-birth',
    ];
    for (const id of [
      'service',
      'payments',
      'newsletter',
      'service-messages',
      'customer-relations',
      'rights-requests',
      'litigation',
    ]) {
      const purpose = seedPolicy.purposes.find((candidate) => candidate.id === id);
      expect(purpose, id).toBeDefined();
      for (const category of identityBlock) {
        expect(
          purpose!.categories.some((declared) => categoryCovers(declared, category)),
          `${id} lacks ${category}`,
        ).toBe(true);
      }
    }
  });

  it('names every Article 8 recipient, other USERS the subject selects included', () => {
    const recipient = seedPolicy.recipients.find((candidate) => candidate.id === 'other-users');
    expect(recipient?.name).toBe('Other USERS on the PLATFORM that you select');
    expect(recipient?.description).toMatch(/email address/);
    expect(recipient?.description).toMatch(/telephone numbers/);
    const notice = privacyNotice(seedPolicy);
    expect(notice.recipients.map((r) => r.name)).toContain('Other USERS on the PLATFORM that you select');
    expect(notice.purposes.find((p) => p.id === 'service')?.recipients.map((r) => r.id)).toContain(
      'other-users',
    );
  });

  it('says that managing CLIENTS asks consent where regulations require it, for marketing and cookies', () => {
    const purpose = seedPolicy.purposes.find((candidate) => candidate.id === 'customer-relations');
    expect(purpose?.description).toMatch(/require your consent, specifically for marketing and cookies/);
  });
});
