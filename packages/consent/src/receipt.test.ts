import { definePolicy, fixedClock, isPrivacyKitError, legalBasisArticle } from '@privacykit/core';
import { testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsentLedger } from './ledger.js';
import type { ConsentLedger } from './ledger.js';
import { buildReceipt, verifyReceipt } from './receipt.js';
import { loadSigningKeys } from './signing.js';
import { generateKeyPairSync } from 'node:crypto';
import { migratedDatabase, policyInput, sampleReceipt, testPolicy } from './test-fixtures.js';

// The controller was acquired, and the newsletter is now shared with more recipients.
const acquired = definePolicy({
  ...policyInput,
  version: '2025-06-01',
  controller: { name: 'Acquirer Corp', address: '1 Market Street, San Francisco' },
  dpo: { name: 'DPO', email: 'dpo@acquirer.example' },
  purposes: (policyInput.purposes ?? []).map((purpose) =>
    purpose.id === 'newsletter'
      ? {
          ...purpose,
          description: 'Newsletters, sold to partners.',
          recipients: ['staff', 'emailing', 'cookie-partners'],
        }
      : purpose,
  ),
});

const original = {
  name: 'Send marketing newsletters',
  description: 'Newsletters of a marketing nature offering our latest products.',
  recipients: ['staff', 'emailing'],
};

describe.each(testEngines())('consent receipts on $engine (C01, C10)', (engine) => {
  let database: TestDatabase;
  let ledger: ConsentLedger;
  const clock = fixedClock('2025-03-01T12:00:00Z');

  beforeAll(async () => {
    database = await migratedDatabase(engine);
    ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock, validity: 'P1D' });
  });
  afterAll(async () => {
    await database?.destroy();
  });

  it('describe the notice the subject answered, not the policy published after it', async () => {
    const granted = await ledger.record({
      subjectId: 'u1',
      purpose: 'newsletter',
      state: 'granted',
      source: 'banner',
      method: 'click',
    });
    const before = await ledger.receipt(granted.eventId);
    expect(before.controller).toEqual({
      name: 'OpenDataSoft',
      contact: 'cil@opendatasoft.com',
      address: '130, rue de Lourmel, 75015 PARIS, France',
    });
    expect(before.purpose).toMatchObject({
      name: original.name,
      description: original.description,
      legalBasisArticle: legalBasisArticle.consent,
      dataCategories: ['identity', 'contact.email', 'marketing.preferences'],
    });
    expect(before.purpose.recipients.map((recipient) => recipient.id)).toEqual(original.recipients);

    expect((await ledger.publishNotice(acquired)).changed).toContain('newsletter');
    const after = await ledger.receipt(granted.eventId);
    expect(after).toEqual(before);
    expect(verifyReceipt(after, await ledger.publicKey())).toBe(true);

    // Another instance configured with the new policy issues the same receipt.
    const restarted = createConsentLedger({ db: database.db, policy: acquired, clock, validity: 'P1D' });
    expect(await restarted.receipt(granted.eventId)).toEqual(before);

    // A grant of the new notice quotes the new text.
    const regranted = await ledger.record({
      subjectId: 'u1',
      purpose: 'newsletter',
      state: 'granted',
      source: 'banner',
      method: 'click',
    });
    const next = await ledger.receipt(regranted.eventId);
    expect(next.notice.version).toBe('2025-06-01');
    expect(next.controller).toEqual({
      name: 'Acquirer Corp',
      contact: 'dpo@acquirer.example',
      address: '1 Market Street, San Francisco',
    });
    expect(next.purpose.description).toBe('Newsletters, sold to partners.');
    expect(next.purpose.recipients.map((recipient) => recipient.id)).toContain('cookie-partners');
  });

  it('of an expiry names the notice of the grant it ended', async () => {
    const own = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    try {
      const local = createConsentLedger({ db: own.db, policy: testPolicy, clock, validity: 'P1D' });
      const granted = await local.record({
        subjectId: 'u2',
        purpose: 'newsletter',
        state: 'granted',
        source: 'banner',
        method: 'click',
      });
      await local.publishNotice(acquired);
      clock.advance(2 * 24 * 3600 * 1000);
      expect(await local.expireDue()).toBe(1);
      const expiry = (await local.history('u2')).find((entry) => entry.kind === 'expiry');
      const receipt = await local.receipt(expiry?.eventId as string);
      expect(receipt.state).toBe('expired');
      expect(receipt.notice).toEqual({
        id: granted.notice.id,
        version: granted.notice.version,
        hash: granted.notice.hash,
        language: granted.notice.language,
      });
      expect(receipt.purpose.description).toBe(original.description);
      expect(receipt.controller.name).toBe('OpenDataSoft');
    } finally {
      await own.destroy();
    }
  });

  it('are refused, not misquoted, when the stored notice text was altered', async () => {
    const granted = await ledger.record({
      subjectId: 'u3',
      purpose: 'audience-measurement',
      state: 'refused',
      source: 'banner',
      method: 'click',
    });
    const table = database.db.updateTable('privacykit_consent_notices');
    const where = (query: typeof table) =>
      query.where('purpose', '=', 'audience-measurement').where('version', '=', granted.notice.version);
    const stored = await database.db
      .selectFrom('privacykit_consent_notices')
      .select('content')
      .where('purpose', '=', 'audience-measurement')
      .where('version', '=', granted.notice.version)
      .executeTakeFirstOrThrow();
    await where(table.set({ content: stored.content.replace('Visitor traffic', 'Harmless') })).execute();
    try {
      const error = await ledger.receipt(granted.eventId).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(isPrivacyKitError(error) ? error.code : error).toBe('consent/notice-unavailable');
    } finally {
      await where(
        database.db.updateTable('privacykit_consent_notices').set({ content: stored.content }),
      ).execute();
    }
    expect((await ledger.receipt(granted.eventId)).purpose.description).toContain('Visitor traffic');
  });
});

describe('buildReceipt', () => {
  it('leaves out contact details the notice did not record rather than taking today’s', () => {
    const keys = loadSigningKeys({ privateKey: generateKeyPairSync('ed25519').privateKey });
    // Recorded for another controller name: not this notice's.
    const receipt = sampleReceipt(keys, {
      controller: { name: 'Someone Else', contact: 'x@example.com', address: 'Elsewhere' },
    });
    expect(receipt.controller).toEqual({ name: 'OpenDataSoft' });
    expect(receipt.purpose.retention).toEqual(['unknown-rule']);
    expect(verifyReceipt(receipt, keys.publicKeyPem)).toBe(true);
  });
});
