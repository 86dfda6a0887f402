import { describe, expect, it } from 'vitest';
import { PrivacyKitError } from './errors.js';
import { privacyNotice, recordOfProcessing, accessInformation } from './notice.js';
import { consentPurposes, definePolicy } from './policy.js';
import type { PolicyInput } from './policy.js';
import { samplePolicyInput } from './test-fixtures.js';

function errorOf(input: PolicyInput): PrivacyKitError {
  try {
    definePolicy(input);
  } catch (error) {
    if (error instanceof PrivacyKitError) return error;
    throw error;
  }
  throw new Error('definePolicy accepted an invalid policy');
}

describe('definePolicy', () => {
  it('accepts a valid policy, defaults the tenant and resolves built-in categories', () => {
    const policy = definePolicy(samplePolicyInput());
    expect(policy.tenant).toBe('default');
    expect(policy.categoryIndex.get('contact.email')?.label).toBe('Email addresses');
    expect(consentPurposes(policy).map((purpose) => purpose.id)).toEqual(['newsletter']);
  });

  it('names the undeclared category and where it is used', () => {
    const input = samplePolicyInput();
    input.purposes[1]!.categories = ['contact.email', 'contact.fax'];
    const error = errorOf(input);
    expect(error.code).toBe('policy/unknown-reference');
    expect(error.issues).toContainEqual({
      path: 'purposes[1].categories[1]',
      message: expect.stringContaining('"contact.fax"'),
    });
  });

  it('reports every unknown recipient, subject and retention rule at once', () => {
    const input = samplePolicyInput();
    input.purposes[0]!.recipients = ['hosting', 'ghost'];
    input.purposes[0]!.dataSubjects = ['martians'];
    input.purposes[0]!.retention = ['forever'];
    const error = errorOf(input);
    expect(error.issues.map((issue) => issue.path)).toEqual([
      'purposes[0].recipients[1]',
      'purposes[0].dataSubjects[0]',
      'purposes[0].retention[0]',
    ]);
  });

  it('refuses a recipient outside the EEA without a transfer safeguard', () => {
    const input = samplePolicyInput();
    input.transfers = [];
    const error = errorOf(input);
    expect(error.issues[0]?.path).toBe('recipients[1].locations[0]');
    expect(error.issues[0]?.message).toContain('outside the EEA');
  });

  it('requires the legitimate interest to be stated (Art 13(1)(d))', () => {
    const input = samplePolicyInput();
    input.purposes[0]!.legalBases = [{ basis: 'legitimate-interests' }];
    expect(errorOf(input).issues[0]?.path).toBe('purposes[0].legalBases[0].legitimateInterest');
  });

  it('refuses a purpose that processes a prohibited category', () => {
    const input = samplePolicyInput();
    input.purposes[0]!.categories = ['payment.card.security-code'];
    expect(errorOf(input).issues[0]?.message).toContain('prohibited');
  });

  it('refuses a prohibited category however the prohibited list is ordered, an undeclared fact named after Object.prototype, and a date that does not exist', () => {
    for (const prohibited of [
      ['payment.card.security-code', 'payment'],
      ['payment', 'payment.card.security-code'],
    ]) {
      const input = samplePolicyInput();
      (input as { prohibitedCategories?: string[] }).prohibitedCategories = prohibited;
      input.purposes[0]!.categories = ['payment.card'];
      // Before: accepted when the sub-category came first.
      expect(
        errorOf(input).issues.map((issue) => issue.message),
        prohibited.join(', '),
      ).toContainEqual('"payment.card" is a prohibited category');
    }
    const factInput = samplePolicyInput() as { retention?: unknown[] };
    factInput.retention = [
      {
        id: 'contracts',
        title: 'Contracts',
        facts: {},
        phases: [{ action: 'delete', due: { from: 'constructor', after: 'P5Y' } }],
      },
    ];
    expect(errorOf(factInput as never).issues.map((issue) => issue.message)).toContainEqual(
      'fact "constructor" is not declared in facts',
    );
    for (const effectiveDate of ['2024-02-30', '2024-13-45']) {
      const input = { ...samplePolicyInput(), effectiveDate };
      expect(errorOf(input).issues[0]?.path, effectiveDate).toBe('effectiveDate');
    }
  });

  it('refuses a legitimate-interests basis whose interest is blank', () => {
    const input = samplePolicyInput();
    input.purposes[0]!.legalBases = [{ basis: 'legitimate-interests', legitimateInterest: '   ' }];
    expect(errorOf(input).issues.map((issue) => issue.path)).toContain(
      'purposes[0].legalBases[0].legitimateInterest',
    );
  });

  it('requires an Art 10 condition for litigation data', () => {
    const input = samplePolicyInput();
    input.purposes[0]!.categories = ['litigation'];
    expect(errorOf(input).issues[0]?.path).toBe('purposes[0].specialCondition');
  });

  it('finds Art 9/10 data under a parent, a declared child or a re-declared built-in (helper-91: each passed without a condition)', () => {
    const specialPath = (input: PolicyInput) => errorOf(input).issues.map((issue) => issue.path);
    // A parent listed by a purpose covers its Art 9 child.
    const parent = samplePolicyInput();
    parent.categories = [
      ...(parent.categories ?? []),
      { id: 'health', label: 'Health', source: 'provided' },
      { id: 'health.diagnosis', label: 'Diagnoses', source: 'provided', special: 'art9' },
    ];
    parent.purposes[0]!.categories = ['health'];
    expect(specialPath(parent)).toContain('purposes[0].specialCondition');
    // A child the policy declares under an Art 10 built-in is Art 10 data too.
    const child = samplePolicyInput();
    child.categories = [
      ...(child.categories ?? []),
      { id: 'litigation.case', label: 'Cases', source: 'derived' },
    ];
    child.purposes[0]!.categories = ['litigation.case'];
    expect(specialPath(child)).toContain('purposes[0].specialCondition');
    // The built-in declared again without its flag is refused, not made ordinary data.
    const redeclared = samplePolicyInput();
    redeclared.categories = [
      ...(redeclared.categories ?? []),
      { id: 'litigation', label: 'Litigation', source: 'provided' },
    ];
    expect(specialPath(redeclared).some((path) => /^categories\[\d+\]\.special$/.test(path))).toBe(true);
    // With the condition stated, the parent is accepted.
    parent.purposes[0]!.specialCondition = 'health-care';
    expect(() => definePolicy(parent)).not.toThrow();
  });

  it('refuses a retention phase reading an undeclared fact, and duplicate ids', () => {
    const input = samplePolicyInput();
    input.retention![0]!.phases = [{ action: 'delete', due: { from: 'paidAt', after: 'P1Y' } }];
    expect(errorOf(input).issues[0]?.message).toContain('fact "paidAt"');
    const dup = samplePolicyInput();
    dup.purposes.push({ ...dup.purposes[1]! });
    expect(errorOf(dup).code).toBe('policy/duplicate-id');
  });

  it('reports shape errors with their paths', () => {
    const input = samplePolicyInput() as unknown as Record<string, unknown>;
    input.dpo = { email: 'not-an-email' };
    input.retention = [
      { ...samplePolicyInput().retention![0]!, phases: [{ action: 'shred', due: { from: 'invoiceDate' } }] },
    ];
    const error = errorOf(input as unknown as PolicyInput);
    expect(error.code).toBe('policy/invalid');
    expect(error.issues.map((issue) => issue.path)).toEqual(expect.arrayContaining(['dpo.email']));
    expect(error.issues.some((issue) => issue.path.startsWith('retention[0].phases[0]'))).toBe(true);
  });

  it('refuses a time zone the runtime does not know, for the controller and for a retention rule', () => {
    const input = samplePolicyInput();
    input.zone = 'Europe/Pariss';
    input.retention![0]!.zone = 'America/New_Yrok';
    const error = errorOf(input);
    expect(error.code).toBe('policy/invalid');
    expect(error.issues).toEqual([
      { path: 'zone', message: expect.stringContaining('unknown time zone "Europe/Pariss"') },
      { path: 'retention[0].zone', message: expect.stringContaining('unknown time zone "America/New_Yrok"') },
    ]);
    const valid = samplePolicyInput();
    valid.retention![0]!.zone = 'America/New_York';
    expect(definePolicy(valid).retention[0]?.zone).toBe('America/New_York');
    expect(definePolicy({ ...samplePolicyInput(), zone: undefined }).zone).toBe('UTC');
  });

  it('refuses a non-exempt cookie whose purpose has no consent basis', () => {
    const input = samplePolicyInput();
    input.cookies = [
      {
        name: '_ga',
        provider: 'Google',
        category: 'analytics',
        purpose: 'contract',
        description: 'x',
        duration: 'P13M',
      },
    ];
    expect(errorOf(input).issues[0]?.path).toBe('cookies[0]');
  });
});

describe('derived information', () => {
  const policy = definePolicy(samplePolicyInput());

  it('the Art 13 notice carries bases with their article, recipients, transfers and retention in words', () => {
    const notice = privacyNotice(policy);
    const contract = notice.purposes.find((purpose) => purpose.id === 'contract')!;
    expect(contract.legalBases[0]).toMatchObject({ basis: 'contract', article: 'Art. 6(1)(b)' });
    expect(contract.recipients.map((recipient) => recipient.name)).toEqual(['Hosting Ltd']);
    expect(notice.retention[0]?.text).toBe('Invoices: deleted 10 years after the invoice date.');
    expect(notice.transfers[0]?.recipientNames).toEqual(['Mailer Inc']);
    expect(notice.transfers[0]?.safeguardLabel).toContain('standard data protection clauses');
    expect(notice.complaint.text).toContain('CNIL');
  });

  it('Art 15 information is limited to the categories found, naming recipients', () => {
    const info = accessInformation(policy, { categories: ['billing.invoices'] });
    expect(info.purposes.map((purpose) => purpose.id)).toEqual(['contract']);
    expect(info.recipients.map((recipient) => recipient.name)).toEqual(['Hosting Ltd']);
    expect(info.retention.map((rule) => rule.id)).toEqual(['invoices']);
    expect(info.transfers).toEqual([]);
    const all = accessInformation(policy);
    expect(all.recipients.map((recipient) => recipient.name)).toEqual(['Hosting Ltd', 'Mailer Inc']);
  });

  it('a retention rule naming its purposes gives them its period in the notice, Art 15 information and Art 30 record (helper-91: they had none)', () => {
    const input = samplePolicyInput();
    input.retention = [
      ...(input.retention ?? []),
      {
        id: 'newsletter-contacts',
        title: 'Newsletter contacts',
        categories: ['contact.email'],
        purposes: ['newsletter'],
        facts: { lastContact: { label: 'the last contact' } },
        phases: [{ action: 'delete', due: { from: 'lastContact', after: 'P3Y' } }],
      },
    ];
    const linked = definePolicy(input);
    const newsletter = privacyNotice(linked).purposes.find((purpose) => purpose.id === 'newsletter')!;
    expect(newsletter.retention.map((rule) => rule.id)).toEqual(['newsletter-contacts']);
    expect(recordOfProcessing(linked).activities[1]?.retention).toEqual([
      'Newsletter contacts: deleted 3 years after the last contact.',
    ]);
    expect(
      accessInformation(linked, { categories: ['contact.email'] }).retention.map((rule) => rule.id),
    ).toContain('newsletter-contacts');
  });

  it('tells a conditional date among the earliest of several branch by branch, each with the other dates (helper-93: the expiry read as capping one branch)', () => {
    const input = samplePolicyInput();
    input.retention = [
      {
        id: 'bank-card',
        title: 'Bank card',
        categories: ['billing.invoices'],
        facts: {
          debitDate: { label: 'the debit date', type: 'date' },
          cardType: { label: 'the card type', type: 'value' },
          cardExpiry: { label: 'the card expiry date', type: 'month' },
        },
        phases: [
          {
            action: 'delete',
            due: {
              earliest: [
                {
                  when: [
                    {
                      if: { fact: 'cardType', equals: 'deferred' },
                      then: { from: 'debitDate', after: 'P15M' },
                    },
                  ],
                  otherwise: { from: 'debitDate', after: 'P13M' },
                },
                { from: 'cardExpiry', endOfMonth: true },
              ],
            },
          },
        ],
      },
    ];
    input.purposes[0]!.retention = ['bank-card'];
    const text = privacyNotice(definePolicy(input)).retention[0]!.text;
    expect(text).toBe(
      'Bank card: deleted when the card type is deferred, 15 months after the debit date, or at the end of the month of the card expiry date, whichever comes first; otherwise 13 months after the debit date, or at the end of the month of the card expiry date, whichever comes first.',
    );
  });

  it('the Art 30 record lists one activity per purpose with transfers', () => {
    const record = recordOfProcessing(policy);
    expect(record.activities.map((activity) => activity.purpose)).toEqual(['contract', 'newsletter']);
    expect(record.activities[1]?.transfers[0]).toMatchObject({
      destination: 'US',
      recipients: ['Mailer Inc'],
    });
    expect(record.activities[0]?.dataSubjects).toEqual(['Customers']);
  });
});
