import { fileURLToPath } from 'node:url';
import { definePolicy, isPrivacyKitError } from '@privacykit/core';
import type { Policy, PolicyInput } from '@privacykit/core';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, runScript } from '@privacykit/core/testing';
import type { ScriptRun, TestDatabase, TestEngine } from '@privacykit/core/testing';
import { afterAll, beforeAll } from 'vitest';
import type { ConsentDecision } from './decision.js';
import { createConsentLedger } from './ledger.js';
import type { ConsentLedger, ConsentLedgerOptions } from './ledger.js';
import { consentMigrations } from './migrations.js';
import { buildReceipt } from './receipt.js';
import type { ConsentReceipt, ReceiptNotice } from './receipt.js';
import type { SigningKeys } from './signing.js';

/** A trimmed copy of the seed policy (examples/portal/src/policy.ts): its three consent purposes and a contract one. */
export const policyInput: PolicyInput = {
  version: '2018-05-07',
  effectiveDate: '2018-05-07',
  language: 'en',
  controller: { name: 'OpenDataSoft', address: '130, rue de Lourmel, 75015 PARIS, France' },
  dpo: { name: 'Data Protection Officer', email: 'cil@opendatasoft.com' },
  supervisoryAuthority: { name: 'CNIL' },
  recipients: [
    { id: 'staff', name: 'Authorized personnel', kind: 'internal', locations: ['FR'] },
    { id: 'emailing', name: 'Emailing solutions', kind: 'processor', locations: ['EU'] },
    { id: 'tracking', name: 'Tracking solutions', kind: 'processor', locations: ['EU'] },
    {
      id: 'cookie-partners',
      name: 'Third parties installing cookies',
      kind: 'controller',
      locations: ['EU'],
    },
  ],
  purposes: [
    {
      id: 'service',
      name: 'Provide the service',
      description: 'Run the platform you subscribed to.',
      legalBases: [{ basis: 'contract' }],
      categories: ['identity', 'account'],
    },
    {
      id: 'newsletter',
      name: 'Send marketing newsletters',
      description: 'Newsletters of a marketing nature offering our latest products.',
      legalBases: [{ basis: 'consent' }],
      categories: ['identity', 'contact.email', 'marketing.preferences'],
      recipients: ['staff', 'emailing'],
      tags: ['direct-marketing'],
    },
    {
      id: 'audience-measurement',
      name: 'Measure the audience of the WEBSITE with cookies',
      description: 'Visitor traffic analytics and statistics for the WEBSITE.',
      legalBases: [{ basis: 'consent' }],
      categories: ['device.cookies', 'usage.statistics'],
      recipients: ['tracking'],
      tags: ['analytics'],
    },
    {
      id: 'targeted-advertising',
      name: 'Show interest-based marketing and advertising',
      description: 'Let third parties install cookies to target our advertising.',
      legalBases: [{ basis: 'consent' }],
      categories: ['device.cookies', 'marketing.interests'],
      recipients: ['tracking', 'cookie-partners'],
      tags: ['cross-context-advertising', 'sharing', 'profiling'],
    },
  ],
  rights: {
    offered: ['access', 'erasure', 'withdraw-consent'],
    channels: [{ kind: 'web', value: '/privacy/consent' }],
  },
};

export const testPolicy: Policy = definePolicy(policyInput);

/** The policy with the newsletter purpose's text changed (and nothing else). */
export function editedPolicy(version = '2024-01-01'): Policy {
  return definePolicy({
    ...policyInput,
    version,
    purposes: (policyInput.purposes ?? []).map((purpose) =>
      purpose.id === 'newsletter'
        ? { ...purpose, description: `${purpose.description} And those of our partners.` }
        : purpose,
    ),
  });
}

/**
 * A describe block's own migrated database and a ready ledger on it: made before its tests,
 * destroyed after them. Read `database` and `ledger` inside the tests.
 */
export function ledgerPerBlock(
  engine: TestEngine,
  options: Omit<ConsentLedgerOptions, 'db'>,
): { database: TestDatabase; ledger: ConsentLedger } {
  const fixture = {} as { database: TestDatabase; ledger: ConsentLedger };
  beforeAll(async () => {
    fixture.database = await migratedDatabase(engine);
    fixture.ledger = createConsentLedger({ ...options, db: fixture.database.db });
    await fixture.ledger.publicKey();
  });
  afterAll(async () => {
    await fixture.database?.destroy();
  });
  return fixture;
}

export async function migratedDatabase(engine: TestEngine): Promise<TestDatabase> {
  const database = await createTestDatabase(engine);
  await migrate(database.db, [consentMigrations]);
  return database;
}

/** A banner click granting `purpose` (default `newsletter`), with `extra` on top. */
export const grant = (
  subjectId: string,
  purpose = 'newsletter',
  extra: Partial<ConsentDecision> = {},
): ConsentDecision => ({
  subjectId,
  purpose,
  state: 'granted',
  source: 'banner',
  method: 'click',
  ...extra,
});

/** The code of the PrivacyKitError a promise rejects with (the error itself if untyped; undefined if it resolves). */
export async function codeOf(promise: Promise<unknown>): Promise<unknown> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  return isPrivacyKitError(error) ? error.code : error;
}

/** A receipt for a banner grant of `newsletter`, built from facts and a stored notice written out by hand. */
export function sampleReceipt(
  keys: SigningKeys,
  options: { leafHash?: string; controller?: ReceiptNotice['controller'] } = {},
): ConsentReceipt {
  return buildReceipt(
    {
      eventId: 'e1',
      tenant: 'default',
      seq: 0,
      leafHash: options.leafHash ?? '00',
      subjectKey: 's',
      purposeId: 'newsletter',
      notice: { id: 'default/consent/newsletter', version: 'v1', hash: 'h', language: 'en' },
      jurisdiction: 'EU',
      source: 'banner',
      method: 'click',
      at: '2025-03-01T12:00:00.000Z',
      state: 'given',
    },
    {
      content: {
        controller: 'OpenDataSoft',
        purpose: 'newsletter',
        name: 'Newsletters',
        description: 'Newsletters.',
        categories: [{ id: 'contact.email' }],
        recipients: [{ id: 'emailing', name: 'Emailing solutions' }],
        retention: [{ id: 'unknown-rule', summary: '' }],
      },
      ...(options.controller ? { controller: options.controller } : {}),
    },
    keys,
    'Withdraw at /privacy/consent',
  );
}

/**
 * Runs a script of this package's test/ folder in a process of its own (`node --import tsx`)
 * to its end, with what it wrote and how it ended.
 */
export function runTestScript(name: string, args: readonly string[]): Promise<ScriptRun> {
  return runScript(fileURLToPath(new URL(`../test/${name}`, import.meta.url)), args);
}
