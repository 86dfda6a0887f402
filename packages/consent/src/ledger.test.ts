import { definePolicy, fixedClock, isPrivacyKitError } from '@privacykit/core';
import type { PolicyInput } from '@privacykit/core';
import { testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  editedPolicy,
  grant,
  ledgerPerBlock,
  migratedDatabase,
  policyInput,
  testPolicy,
} from './test-fixtures.js';
import { createConsentLedger } from './ledger.js';
import type { ConsentLedger } from './ledger.js';
import { verifyInclusionProof } from './proofs.js';
import { verifyReceipt } from './receipt.js';
import { verifyTreeHead } from './signing.js';

async function rejects(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isPrivacyKitError(error) ? error.code : error).toBe(code);
}

async function ledgerSize(database: TestDatabase): Promise<number> {
  const row = await database.db
    .selectFrom('privacykit_consent_ledger')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

describe.each(testEngines())('consent ledger on $engine', (engine) => {
  let database: TestDatabase;
  let ledger: ConsentLedger;
  const clock = fixedClock('2025-03-01T12:00:00Z');

  beforeAll(async () => {
    database = await migratedDatabase(engine);
    ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    await ledger.publicKey();
  });
  afterAll(async () => {
    await database?.destroy();
  });

  describe('rejects what is not consent, writing nothing (C02, C03, hostile cases 1–3)', () => {
    it.each([
      ['default', 'consent/default-not-consent'],
      ['pre-ticked', 'consent/pre-ticked-not-consent'],
      ['scroll', 'consent/scroll-not-consent'],
      ['implied', 'consent/implied-not-consent'],
      ['continued-browsing', 'consent/continued-browsing-not-consent'],
      ['wink', 'consent/invalid-decision'],
    ])('method %s → %s', async (method, code) => {
      const before = await ledgerSize(database);
      await rejects(ledger.record(grant('reject-1', 'newsletter', { method })), code);
      expect(await ledgerSize(database)).toBe(before);
    });

    it('refuses a pre-ticked control whatever the method', async () => {
      const before = await ledgerSize(database);
      for (const method of ['click', 'toggle', 'form-submit', 'api-call', 'written', 'verbal-recorded']) {
        await rejects(
          ledger.record(grant('reject-1', 'newsletter', { method, preTicked: true })),
          'consent/pre-ticked-not-consent',
        );
      }
      expect(await ledgerSize(database)).toBe(before);
    });

    it('records a withdrawal from a box ticked because consent exists, and a refusal by silence (C05, C06)', async () => {
      await ledger.record(grant('ticked-1', 'newsletter'));
      expect(await ledger.mayProcess('ticked-1', 'newsletter')).toBe(true);
      const withdrawn = await ledger.record(
        grant('ticked-1', 'newsletter', { state: 'withdrawn', method: 'toggle', preTicked: true }),
      );
      expect(withdrawn.state).toBe('withdrawn');
      expect(await ledger.mayProcess('ticked-1', 'newsletter')).toBe(false);
      // A banner closed without a choice: a refusal, recorded as such, never a grant.
      const silent = await ledger.record(
        grant('silent-1', 'newsletter', { state: 'refused', method: 'default' }),
      );
      expect(silent.state).toBe('refused');
      expect((await ledger.history('silent-1')).map((entry) => [entry.state, entry.method])).toEqual([
        ['refused', 'default'],
      ]);
    });

    it('refuses a grant the service was made conditional on, but records a refusal given so (C11, Art 7(4))', async () => {
      const before = await ledgerSize(database);
      for (const input of [
        grant('wall-1', 'audience-measurement', { conditionOfService: true }),
        // Through zod too (the lean parser hands anything unusual over).
        grant('wall-1', 'audience-measurement', {
          conditionOfService: true,
          parentalAuthorisation: { method: 'card-check' },
        }),
      ]) {
        await rejects(ledger.record(input), 'consent/condition-of-service');
      }
      expect(await ledgerSize(database)).toBe(before);
      expect((await ledger.current('wall-1')).purposes['audience-measurement']?.state).toBe('none');
      const refusal = await ledger.record(
        grant('wall-1', 'audience-measurement', { state: 'refused', conditionOfService: true }),
      );
      expect(refusal.state).toBe('refused');
      expect(await ledgerSize(database)).toBe(before + 1);
    });

    it('refuses one toggle covering several purposes', async () => {
      const before = await ledgerSize(database);
      await rejects(
        ledger.record({
          subjectId: 'reject-2',
          purposes: ['newsletter', 'targeted-advertising'],
          state: 'granted',
          source: 'banner',
          method: 'toggle',
        }),
        'consent/bundled-purposes',
      );
      // A purpose named beside a list is two purposes too, even when the list holds one.
      await rejects(
        ledger.record({
          subjectId: 'reject-2',
          purpose: 'newsletter',
          purposes: ['targeted-advertising'],
          state: 'granted',
          source: 'banner',
          method: 'toggle',
        }),
        'consent/bundled-purposes',
      );
      expect(await ledgerSize(database)).toBe(before);
      expect((await ledger.current('reject-2')).purposes.newsletter?.state).toBe('none');
      expect((await ledger.current('reject-2')).purposes['targeted-advertising']?.state).toBe('none');
      // A list of one is that one purpose.
      const single = await ledger.record({
        subjectId: 'reject-2',
        purposes: ['newsletter'],
        state: 'granted',
        source: 'banner',
        method: 'toggle',
      });
      expect(single.purpose).toBe('newsletter');
      expect(await ledgerSize(database)).toBe(before + 1);
    });

    it('refuses an unknown purpose and a purpose that does not rest on consent', async () => {
      const before = await ledgerSize(database);
      await rejects(ledger.record(grant('reject-3', 'telepathy')), 'consent/unknown-purpose');
      await rejects(ledger.record(grant('reject-3', 'service')), 'consent/not-consent-purpose');
      expect(await ledgerSize(database)).toBe(before);
      expect(await ledger.history('reject-3')).toEqual([]);
    });

    it('takes the time and event id from the server, refusing a client-chosen or backdated one (C01)', async () => {
      const before = await ledgerSize(database);
      for (const extra of [
        { at: '2020-01-01T00:00:00.000Z' },
        { eventId: '0190f1a2-0000-7000-8000-000000000001' },
      ]) {
        await rejects(ledger.record(grant('reject-6', 'newsletter', extra)), 'consent/invalid-decision');
      }
      expect(await ledgerSize(database)).toBe(before);
      const recorded = await ledger.record(grant('reject-6', 'newsletter'));
      expect(recorded.at).toBe(clock.now().toISOString());
    });

    it('refuses a notice language the notice was not published in, and records the published tag (C01)', async () => {
      await rejects(
        ledger.record(grant('reject-5', 'newsletter', { notice: { language: 'fr' } })),
        'consent/unknown-notice-language',
      );
      const recorded = await ledger.record(grant('reject-5', 'newsletter', { notice: { language: 'EN' } }));
      expect(recorded.notice.language).toBe('en');
    });

    it('refuses text that is not well-formed (lone surrogates, NUL) everywhere, writing nothing; two ids never share a pseudonym', async () => {
      const before = await ledgerSize(database);
      for (const bad of ['user\ud800', 'user\udfff', 'nul\u0000id']) {
        await rejects(ledger.record(grant(bad, 'newsletter')), 'consent/invalid-decision');
        await rejects(ledger.mayProcess(bad, 'newsletter'), 'consent/invalid-subject');
        await rejects(ledger.current(bad), 'consent/invalid-subject');
        await rejects(ledger.history(bad), 'consent/invalid-subject');
        await rejects(ledger.shredSubject(bad), 'consent/invalid-subject');
        await rejects(
          ledger.record(grant('well-formed', 'newsletter', { evidence: { userAgent: `UA ${bad}` } })),
          'consent/invalid-decision',
        );
      }
      await rejects(ledger.shredSubject(undefined as unknown as string), 'consent/invalid-subject');
      await rejects(ledger.shredSubject(5 as unknown as string), 'consent/invalid-subject');
      // Validated up front: one bad decision among many, in a later batch, and nothing is imported.
      await rejects(
        ledger.import(
          Array.from({ length: 30 }, (_, i) =>
            grant(`bulk-${i}`, 'newsletter', {
              source: 'import',
              method: 'import',
              eventId: i === 25 ? 'evt\u0000x' : `bulk-evt-${i}`,
            }),
          ),
          { batchSize: 10 },
        ),
        'consent/invalid-decision',
      );
      expect(await ledgerSize(database)).toBe(before);
      // A surrogate pair (an emoji) is well-formed text.
      await ledger.record(grant('emoji-\u{1F600}', 'newsletter'));
      expect(await ledger.mayProcess('emoji-\u{1F600}', 'newsletter')).toBe(true);
      expect(await ledger.mayProcess('emoji-\ufffd', 'newsletter')).toBe(false);
    });

    it('refuses malformed options and arguments with a typed error, never hanging or writing', async () => {
      const before = await ledgerSize(database);
      const one = [grant('opt-1', 'newsletter', { source: 'import' })];
      for (const batchSize of [0, -1, Number.NaN, 0.5, '5', Number.POSITIVE_INFINITY]) {
        await rejects(ledger.import(one, { batchSize: batchSize as number }), 'consent/invalid-options');
        await rejects(ledger.expireDue({ batchSize: batchSize as number }), 'consent/invalid-options');
      }
      await rejects(ledger.import(null as never), 'consent/invalid-decision');
      await rejects(ledger.import('x' as never), 'consent/invalid-decision');
      // An item that is not an object: typed, with its index, nothing written.
      for (const item of [null, 7, 'x', []]) {
        await expect(ledger.import([one[0], item] as never)).rejects.toThrow(
          expect.objectContaining({
            code: 'consent/invalid-decision',
            details: expect.objectContaining({ index: 1 }),
          }),
        );
      }
      // Surrounding spaces, which MySQL's PAD SPACE collations would ignore, are refused everywhere.
      await rejects(
        ledger.import([grant('opt-1', 'newsletter', { source: 'import', eventId: 'imp-1 ' })]),
        'consent/invalid-decision',
      );
      await rejects(ledger.publishNotice(testPolicy, { version: '2024-01-01 ' }), 'consent/invalid-options');
      await rejects(ledger.current('opt-1', { at: '2020' as never }), 'consent/invalid-options');
      await rejects(
        ledger.mayProcess('opt-1', 'newsletter', { at: new Date(Number.NaN) }),
        'consent/invalid-options',
      );
      await rejects(ledger.stats({ at: new Date(Number.NaN) }), 'consent/invalid-options');
      await rejects(ledger.receipt({} as never), 'consent/unknown-event');
      await rejects(ledger.publishNotice(null as never), 'consent/invalid-options');
      await rejects(
        ledger.publishNotice(testPolicy, { version: 'v'.repeat(101) }),
        'consent/invalid-options',
      );
      await rejects(ledger.verify(7 as never), 'consent/invalid-options');
      // A yes/no option must be a boolean: the string "false" is truthy, and applyGpc would
      // override the subject's later choice, the set query take re-consent cases in.
      await rejects(ledger.applyGpc('opt-1', '1', { override: 'false' as never }), 'consent/invalid-options');
      expect(() =>
        ledger.subjectPagesWithConsent('newsletter', { includeReconsentRequired: 'false' as never }),
      ).toThrow(expect.objectContaining({ code: 'consent/invalid-options' }));
      // A purpose that is not text, even one String() cannot convert, is a typed refusal.
      for (const purpose of [Object.create(null), { toString: 1, valueOf: 1 }, 7]) {
        await rejects(ledger.withdraw('opt-1', purpose as never), 'consent/invalid-decision');
      }
      // The subject is checked whether or not a signal came.
      await rejects(ledger.applyGpc('', undefined), 'consent/invalid-subject');
      // A validity of zero expired every grant at once; past a century expiry left four-digit years.
      for (const validity of ['P0D', 'P0Y0M', 'P101Y', 'P8000Y', 'P300000Y', 'P99999999999999999999D']) {
        expect(() => createConsentLedger({ db: database.db, policy: testPolicy, validity })).toThrow(
          expect.objectContaining({ code: 'consent/invalid-options' }),
        );
      }
      expect(() =>
        createConsentLedger({ db: database.db, policy: testPolicy, validity: 'P100Y' }),
      ).not.toThrow();
      // A NaN (an unset environment variable through Number) compared false for ever: no tree
      // head was signed, whatever the ledger's size.
      for (const signEvery of [
        { appends: Number.NaN },
        { milliseconds: Number.NaN },
        { appends: 0 },
        { appends: 'often' as never },
        { milliseconds: -1 },
      ]) {
        expect(
          () => createConsentLedger({ db: database.db, policy: testPolicy, signEvery }),
          JSON.stringify(signEvery),
        ).toThrow(expect.objectContaining({ code: 'consent/invalid-options' }));
      }
      expect(await ledgerSize(database)).toBe(before);
      // null options mean none; a header that is not text is no GPC signal.
      expect(await ledger.mayProcess('opt-1', 'newsletter', null as never)).toBe(false);
      expect((await ledger.applyGpc('opt-1', 1 as never)).signal).toBe(false);
      expect((await ledger.verify(null as never)).ok).toBe(true);
    });

    it('tells apart notice versions and event ids that differ only in case, on every engine', async () => {
      const policyOf = (version: string, description?: string) =>
        definePolicy({
          ...policyInput,
          tenant: 'case-twins',
          version,
          purposes: (policyInput.purposes ?? []).map((purpose) =>
            purpose.id === 'newsletter' && description ? { ...purpose, description } : purpose,
          ),
        });
      const twins = createConsentLedger({ db: database.db, policy: policyOf('spring') });
      await twins.publicKey();
      // A new text published as "Spring": MySQL's default collation must not take it for "spring".
      const published = await twins.publishNotice(policyOf('Spring', 'Newsletters, now weekly.'));
      expect(published.changed).toEqual(['newsletter']);
      const granted = await twins.record(grant('case-1', 'newsletter'));
      expect(granted.notice.version).toBe('Spring');
      expect((await twins.receipt(granted.eventId)).purpose.description).toBe('Newsletters, now weekly.');
      const notices = await database.db
        .selectFrom('privacykit_consent_notices')
        .select(['version', 'hash'])
        .where('tenant', '=', 'case-twins')
        .where('purpose', '=', 'newsletter')
        .orderBy('seq')
        .execute();
      expect(notices.map((row) => row.version)).toEqual(['spring', 'Spring']);
      expect(notices[0]?.hash).not.toBe(notices[1]?.hash);
      // Two source-system ids that differ only in case are two events, each with its own receipt.
      await twins.import([
        grant('case-2', 'newsletter', { source: 'import', eventId: 'crm-A' }),
        grant('case-3', 'newsletter', { source: 'import', eventId: 'crm-a', state: 'refused' }),
      ]);
      expect((await twins.receipt('crm-A')).state).toBe('given');
      expect((await twins.receipt('crm-a')).state).toBe('refused');
      await rejects(
        twins.import([grant('case-2', 'newsletter', { source: 'import', eventId: 'crm-A' })]),
        'consent/duplicate-event',
      );
      expect((await twins.verify()).ok).toBe(true);
    });

    it('keeps names and addresses out of hashed entries: jurisdictions are codes, event ids and parental methods tokens (S11)', async () => {
      const before = await ledgerSize(database);
      // What a caller might put there, which erasing the subject could then never remove.
      for (const eventId of ['alice@example.com', 'Alice Martin 2024', 'crm/alice']) {
        await rejects(
          ledger.import([grant('s11-a', 'newsletter', { source: 'import', eventId })]),
          'consent/invalid-decision',
        );
      }
      for (const jurisdiction of ['Alice Martin', 'France', 'FR-Paris', 'alice@x.fr']) {
        await rejects(
          ledger.record(grant('s11-b', 'newsletter', { jurisdiction })),
          'consent/invalid-decision',
        );
      }
      await rejects(
        ledger.record(
          grant('s11-c', 'newsletter', {
            age: 12,
            parentalAuthorisation: { method: 'checked by phone with Bob Martin, father' },
          }),
        ),
        'consent/invalid-decision',
      );
      expect(() =>
        createConsentLedger({ db: database.db, policy: testPolicy, jurisdiction: 'Paris' }),
      ).toThrow(expect.objectContaining({ code: 'consent/invalid-options' }));
      expect(await ledgerSize(database)).toBe(before);

      // Codes and tokens pass; a code is recorded in capitals, with its own age of consent.
      const imported = await ledger.import([
        grant('s11-d', 'newsletter', { source: 'import', eventId: 'crm:2024.01_a-7~x' }),
      ]);
      expect(imported.imported).toBe(1);
      const kid = await ledger.record(
        grant('s11-e', 'newsletter', {
          age: 14,
          jurisdiction: 'fr-75',
          parentalAuthorisation: { method: 'signed-form', reference: 'Form signed by Bob Martin' },
        }),
      );
      const entry = (await ledger.history('s11-e')).find((item) => item.eventId === kid.eventId);
      expect(entry).toMatchObject({ jurisdiction: 'FR-75' });
      // The free-text reference is personal data: sealed under the subject's key, not in the entry.
      const stored = await database.db
        .selectFrom('privacykit_consent_ledger')
        .select('entry')
        .where('event_id', '=', kid.eventId)
        .executeTakeFirstOrThrow();
      expect(stored.entry).toContain('"parentalAuthorisation":"signed-form"');
      expect(stored.entry).not.toContain('Bob');
    });

    it('refuses an unknown notice version or hash', async () => {
      const before = await ledgerSize(database);
      await rejects(
        ledger.record(grant('reject-4', 'newsletter', { notice: { version: '1999-01-01' } })),
        'consent/unknown-notice-version',
      );
      await rejects(
        ledger.record(grant('reject-4', 'newsletter', { notice: { hash: 'a'.repeat(64) } })),
        'consent/unknown-notice-hash',
      );
      expect(await ledgerSize(database)).toBe(before);
    });

    it('refuses GPC as a grant and mismatched sources', async () => {
      await rejects(
        ledger.record(grant('reject-5', 'newsletter', { source: 'gpc', method: 'gpc-signal' })),
        'consent/method-source-mismatch',
      );
      await rejects(
        ledger.record(grant('reject-5', 'newsletter', { method: 'import' })),
        'consent/method-source-mismatch',
      );
    });

    it('refuses malformed input with issues', async () => {
      const error = await ledger.record({ subjectId: '', state: 'maybe' } as never).catch((e: unknown) => e);
      expect(isPrivacyKitError(error, 'consent/invalid-decision')).toBe(true);
      expect((error as { issues: unknown[] }).issues.length).toBeGreaterThan(0);
    });
  });

  it('records grants and refusals with notice, source, method, jurisdiction and truncated IP (C01, C12)', async () => {
    const granted = await ledger.record(
      grant('alice', 'newsletter', {
        jurisdiction: 'FR',
        evidence: { ip: '203.0.113.77', userAgent: 'Firefox' },
      }),
    );
    const refused = await ledger.record({ ...grant('alice', 'targeted-advertising'), state: 'refused' });
    expect(granted.notice.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(granted.expiresAt).toBe('2025-09-01T12:00:00.000Z');
    const history = await ledger.history('alice');
    expect(history.map((entry) => [entry.purpose, entry.state, entry.source, entry.method])).toEqual([
      ['newsletter', 'granted', 'banner', 'click'],
      ['targeted-advertising', 'refused', 'banner', 'click'],
    ]);
    expect(history[0]?.jurisdiction).toBe('FR');
    // The user agent is off by default; the IP keeps its /24 only.
    expect(history[0]?.evidence).toEqual({ ip: '203.0.113.0' });
    const current = await ledger.current('alice');
    expect(current.purposes.newsletter?.valid).toBe(true);
    expect(current.purposes['targeted-advertising']?.state).toBe('refused');
    expect(refused.state).toBe('refused');
  });

  it('keeps no raw subject id or IP inside hashed entries (S11)', async () => {
    await ledger.record(grant('bob@example.com', 'newsletter', { evidence: { ip: '198.51.100.23' } }));
    const rows = await database.db.selectFrom('privacykit_consent_ledger').select('entry').execute();
    const text = rows.map((row) => row.entry).join('\n');
    expect(text).not.toContain('bob@example.com');
    expect(text).not.toContain('198.51.100');
  });

  it('withdraws in one call, effective at once; a replayed receipt re-grants nothing (C05, C06, hostile case 4)', async () => {
    const granted = await ledger.record(grant('carol', 'audience-measurement'));
    expect(await ledger.mayProcess('carol', 'audience-measurement')).toBe(true);
    const receipt = await ledger.receipt(granted.eventId);
    await ledger.withdraw('carol', 'audience-measurement');
    expect(await ledger.mayProcess('carol', 'audience-measurement')).toBe(false);
    // Replaying the old grant (same event id, original time) is refused.
    await rejects(
      ledger.import([
        {
          ...grant('carol', 'audience-measurement', { source: 'import' }),
          eventId: receipt.recordId,
          at: receipt.eventTime,
        },
      ]),
      'consent/duplicate-event',
    );
    // An old decision imported under a new id does not override the later withdrawal.
    await ledger.import([
      { ...grant('carol', 'audience-measurement', { source: 'import' }), at: '2025-01-01T00:00:00Z' },
    ]);
    expect(await ledger.mayProcess('carol', 'audience-measurement')).toBe(false);
    expect((await ledger.current('carol')).purposes['audience-measurement']?.state).toBe('withdrawn');
    expect((await ledger.history('carol')).map((entry) => entry.state)).toEqual([
      'granted',
      'withdrawn',
      'granted',
    ]);
  });

  it('names each state as DPV does; only given and renewed consent allow processing (C10)', async () => {
    const dpv = async (purpose: string) => (await ledger.current('gus')).purposes[purpose]?.dpvStatus;
    expect(await dpv('newsletter')).toBe('dpv:ConsentUnknown');
    await ledger.record(grant('gus', 'newsletter'));
    expect(await dpv('newsletter')).toBe('dpv:ConsentGiven');
    await ledger.record(grant('gus', 'newsletter'));
    expect(await dpv('newsletter')).toBe('dpv:RenewedConsentGiven');
    expect(await ledger.mayProcess('gus', 'newsletter')).toBe(true);
    await ledger.withdraw('gus', 'newsletter');
    expect(await dpv('newsletter')).toBe('dpv:ConsentWithdrawn');
    await ledger.record(grant('gus', 'audience-measurement', { state: 'refused' }));
    expect(await dpv('audience-measurement')).toBe('dpv:ConsentRefused');
    const statuses = Object.values((await ledger.current('gus')).purposes);
    for (const status of statuses) {
      expect(status.valid).toBe(['dpv:ConsentGiven', 'dpv:RenewedConsentGiven'].includes(status.dpvStatus));
    }
  });

  it('signs receipts anyone can verify; a tampered receipt fails (C10)', async () => {
    const granted = await ledger.record(grant('dave', 'newsletter'));
    const receipt = await ledger.receipt(granted.eventId);
    const publicKey = await ledger.publicKey();
    expect(receipt.state).toBe('given');
    expect(receipt.purpose.legalBasis).toBe('consent');
    expect(receipt.notice.hash).toBe(granted.notice.hash);
    expect(receipt.subject.id).toBe(await ledger.subjectKey('dave'));
    expect(verifyReceipt(receipt, publicKey)).toBe(true);
    expect(verifyReceipt({ ...receipt, state: 'withdrawn' }, publicKey)).toBe(false);
    expect(
      verifyReceipt({ ...receipt, purpose: { ...receipt.purpose, id: 'targeted-advertising' } }, publicKey),
    ).toBe(false);
    const renewed = await ledger.receipt((await ledger.record(grant('dave', 'newsletter'))).eventId);
    expect(renewed.state).toBe('renewed');
    await rejects(ledger.receipt('no-such-event'), 'consent/unknown-event');
  });

  it('a notice change flags exactly the changed purposes for re-consent (C07, hostile case 3)', async () => {
    const own = await migratedDatabase(engine);
    try {
      const local = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      await local.record(grant('erin', 'newsletter'));
      await local.record(grant('erin', 'audience-measurement'));
      const oldHash = (await local.current('erin')).purposes.newsletter;
      const result = await local.publishNotice(editedPolicy());
      expect(result.changed).toEqual(['newsletter']);
      expect(result.unchanged.sort()).toEqual(['audience-measurement', 'targeted-advertising']);
      const current = await local.current('erin');
      expect(current.purposes.newsletter?.reconsentRequired).toBe(true);
      expect(current.purposes.newsletter?.dpvStatus).toBe('dpv:ConsentInvalidated');
      expect(current.purposes['audience-measurement']?.reconsentRequired).toBe(false);
      expect(current.purposes['audience-measurement']?.dpvStatus).toBe('dpv:ConsentGiven');
      expect(await local.mayProcess('erin', 'newsletter')).toBe(false);
      // A grant citing the superseded notice is refused; a fresh one clears the flag.
      await rejects(
        local.record(grant('erin', 'newsletter', { notice: { version: oldHash?.noticeVersion as string } })),
        'consent/notice-outdated',
      );
      await local.record(grant('erin', 'newsletter'));
      expect((await local.current('erin')).purposes.newsletter?.reconsentRequired).toBe(false);
      // Re-publishing the same content changes nothing; new content under a used version is refused.
      expect((await local.publishNotice(editedPolicy())).changed).toEqual([]);
      await rejects(
        local.publishNotice(testPolicy, { version: '2024-01-01' }),
        'consent/notice-version-conflict',
      );
      expect((await local.verify()).ok).toBe(true);
    } finally {
      await own?.destroy();
    }
  });

  it('a text published again after another is current under its new version: a grant or import naming it by hash is taken', async () => {
    const own = await migratedDatabase(engine);
    try {
      const local = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      const first = await local.record(grant('gia', 'newsletter'));
      await local.publishNotice(editedPolicy());
      await local.publishNotice(testPolicy, { version: '2024-06-01' });
      // Before, the hash found the first version with it, superseded: consent/notice-outdated.
      const again = await local.record(grant('gia', 'newsletter', { notice: { hash: first.notice.hash } }));
      expect(again.notice).toMatchObject({ version: '2024-06-01', hash: first.notice.hash });
      await local.import([
        grant('hal', 'newsletter', {
          source: 'import',
          method: 'import',
          notice: { hash: first.notice.hash },
        }),
      ]);
      expect(await local.mayProcess('hal', 'newsletter')).toBe(true);
      // A refusal may still name the older version it answered.
      await local.record({
        ...grant('ivy', 'newsletter', { notice: { version: first.notice.version } }),
        state: 'refused',
      });
      expect((await local.verify()).ok).toBe(true);
    } finally {
      await own?.destroy();
    }
  });

  it('a dated import may name the superseded notice the subject answered then: recorded truthfully, and the subject is asked again', async () => {
    const own = await migratedDatabase(engine);
    try {
      const local = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      const before = await local.record(grant('jay', 'newsletter'));
      await local.publishNotice(editedPolicy());
      const old = { version: before.notice.version };
      const dated = (subjectId: string, notice: { version?: string; hash?: string }) =>
        grant(subjectId, 'newsletter', {
          source: 'import',
          method: 'import',
          at: '2025-02-15T00:00:00.000Z',
          notice,
        });
      // Before, only the current notice could be named: the true record could not be imported.
      await local.import([dated('kim', old), dated('lee', { hash: before.notice.hash })]);
      for (const subjectId of ['kim', 'lee']) {
        const [entry] = await local.history(subjectId);
        expect(entry?.notice).toMatchObject({ version: before.notice.version, hash: before.notice.hash });
        expect((await local.current(subjectId)).purposes.newsletter).toMatchObject({
          state: 'granted',
          reconsentRequired: true,
        });
        expect(await local.mayProcess(subjectId, 'newsletter')).toBe(false);
      }
      // Undated (decided now) it is refused, as a live grant on a superseded notice is.
      await rejects(
        local.import([grant('mo', 'newsletter', { source: 'import', method: 'import', notice: old })]),
        'consent/notice-outdated',
      );
      await rejects(local.record(grant('mo', 'newsletter', { notice: old })), 'consent/notice-outdated');
      expect((await local.verify()).ok).toBe(true);
    } finally {
      await own?.destroy();
    }
  });

  it('a new transfer outside the EEA asks again only for the purposes whose recipients it concerns (C04, C07)', async () => {
    const own = await migratedDatabase(engine);
    try {
      const local = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      await local.record(grant('fay', 'newsletter'));
      await local.record(grant('fay', 'audience-measurement'));
      const transferred = definePolicy({
        ...policyInput,
        version: '2024-02-01',
        transfers: [
          {
            id: 'tracking-us',
            recipients: ['tracking'],
            destination: 'US',
            safeguard: 'standard-contractual-clauses',
          },
        ],
      });
      const result = await local.publishNotice(transferred);
      expect(result.changed.sort()).toEqual(['audience-measurement', 'targeted-advertising']);
      expect(result.unchanged).toEqual(['newsletter']);
      expect(await local.mayProcess('fay', 'audience-measurement')).toBe(false);
      expect((await local.current('fay')).purposes['audience-measurement']?.reconsentRequired).toBe(true);
      expect(await local.mayProcess('fay', 'newsletter')).toBe(true);
      expect((await local.verify()).ok).toBe(true);
    } finally {
      await own?.destroy();
    }
  });

  it('grants expire after the validity period; expireDue writes expired events (C08)', async () => {
    const own = await migratedDatabase(engine);
    try {
      const localClock = fixedClock('2025-01-31T00:00:00Z');
      const local = createConsentLedger({
        db: own.db,
        policy: testPolicy,
        clock: localClock,
        validity: 'P1M',
      });
      const granted = await local.record(grant('frank', 'newsletter'));
      expect(granted.expiresAt).toBe('2025-02-28T00:00:00.000Z');
      localClock.set('2025-02-28T00:00:01Z');
      const status = (await local.current('frank')).purposes.newsletter;
      expect(status?.state).toBe('expired');
      expect(status?.valid).toBe(false);
      expect(status?.dpvStatus).toBe('dpv:ConsentExpired');
      expect(await local.expireDue()).toBe(1);
      expect(await local.expireDue()).toBe(0);
      expect((await local.history('frank')).map((entry) => entry.state)).toEqual(['granted', 'expired']);
      expect((await local.stats()).find((row) => row.purpose === 'newsletter')?.state).toBe('expired');
      expect((await local.verify()).ok).toBe(true);
      // The expired row keeps the grant's time; a row from before that kept the run's, and
      // verifies too; any other time is an edit.
      const decidedAt = async (value?: string) => {
        const where = own.db.updateTable('privacykit_consent_state').where('purpose', '=', 'newsletter');
        if (value) await where.set({ decided_at: value }).execute();
        const row = await own.db
          .selectFrom('privacykit_consent_state')
          .select('decided_at')
          .where('purpose', '=', 'newsletter')
          .executeTakeFirstOrThrow();
        return row.decided_at;
      };
      expect(await decidedAt()).toBe('2025-01-31T00:00:00.000Z');
      expect(await decidedAt('2025-02-28T00:00:01.000Z')).toBe('2025-02-28T00:00:01.000Z');
      expect((await local.verify()).ok).toBe(true);
      await decidedAt('2025-02-27T00:00:00.000Z');
      expect((await local.verify()).ok).toBe(false);
    } finally {
      await own?.destroy();
    }
  });

  it('an expireDue run changes no answer: a grant imported afterwards, dated after the expiry, is current either way', async () => {
    const own = await migratedDatabase(engine);
    try {
      const localClock = fixedClock('2025-01-01T00:00:00Z');
      const local = createConsentLedger({ db: own.db, policy: testPolicy, clock: localClock });
      await local.record(grant('gus', 'newsletter'));
      await local.record(grant('hana', 'newsletter'));
      localClock.set('2025-09-01T00:00:00Z');
      // The same late grant for both; the expiry job ran before it for one of them only.
      const late = (subjectId: string) =>
        grant(subjectId, 'newsletter', {
          source: 'import',
          method: 'import',
          at: '2025-08-01T00:00:00.000Z',
        });
      await local.import([late('gus')]);
      expect(await local.expireDue()).toBe(1);
      await local.import([late('hana')]);
      for (const subjectId of ['gus', 'hana']) {
        // Before, hana's state row kept the run's time (2025-09-01) and outranked the grant of 2025-08-01.
        expect(await local.mayProcess(subjectId, 'newsletter')).toBe(true);
        expect((await local.current(subjectId)).purposes.newsletter).toMatchObject({
          state: 'granted',
          expiresAt: '2026-02-01T00:00:00.000Z',
        });
      }
      const consenting: string[] = [];
      for await (const subjectId of local.subjectsWithConsent('newsletter')) consenting.push(subjectId);
      expect(consenting.sort()).toEqual(['gus', 'hana']);
      expect((await local.history('hana')).map((entry) => entry.state)).toEqual([
        'granted',
        'expired',
        'granted',
      ]);
      expect((await local.verify()).ok).toBe(true);
    } finally {
      await own?.destroy();
    }
  });

  it('an expireDue run changes no answer for a grant kept over a GPC signal: conflict and renewal end with the grant', async () => {
    const own = await migratedDatabase(engine);
    try {
      const localClock = fixedClock('2025-01-01T10:00:00Z');
      const local = createConsentLedger({ db: own.db, policy: testPolicy, clock: localClock });
      // The signal, then the subject's own grant (kept, explicit and later), renewed, then the
      // signal again: the grant stands, in conflict with it.
      await local.applyGpc('ines', '1');
      localClock.set('2025-01-01T10:00:01Z');
      await local.record(grant('ines', 'targeted-advertising'));
      localClock.set('2025-01-01T10:00:02Z');
      await local.record(grant('ines', 'targeted-advertising'));
      localClock.set('2025-01-01T10:00:03Z');
      await local.applyGpc('ines', '1');
      const answer = async () => {
        const { eventId: _eventId, ...rest } = (await local.current('ines')).purposes[
          'targeted-advertising'
        ]!;
        return rest;
      };
      expect(await answer()).toMatchObject({ state: 'granted', gpcConflict: true, renewal: true });
      localClock.set('2026-01-01T00:00:00Z');
      const before = await answer();
      // Before: gpcConflict and renewal true until the run wrote the expiry, false after.
      expect(before).toMatchObject({ state: 'expired', valid: false, gpcConflict: false, renewal: false });
      expect(await local.expireDue()).toBe(1);
      expect(await answer()).toEqual(before);
      expect((await local.verify()).ok).toBe(true);
    } finally {
      await own?.destroy();
    }
  });

  it('asks a 14-year-old for parental authorisation at 16 but not at 13 (C09, hostile case 5)', async () => {
    await rejects(
      ledger.record(grant('kid', 'newsletter', { age: 14 })),
      'consent/parental-authorisation-required',
    );
    const withParent = await ledger.record(
      grant('kid', 'newsletter', {
        age: 14,
        parentalAuthorisation: { method: 'signed-form', reference: 'F-1' },
      }),
    );
    expect(withParent.state).toBe('granted');
    const lenient = createConsentLedger({ db: database.db, policy: testPolicy, clock, ageOfConsent: 13 });
    expect((await lenient.record(grant('kid-2', 'newsletter', { age: 14 }))).state).toBe('granted');
    expect(() => createConsentLedger({ db: database.db, policy: testPolicy, ageOfConsent: 12 })).toThrow(
      expect.objectContaining({
        code: 'consent/invalid-options',
        message: expect.stringMatching(/13 to 16/),
      }),
    );
    const history = await ledger.history('kid');
    expect(history.at(-1)?.evidence).toEqual({
      age: 14,
      parentalAuthorisation: { method: 'signed-form', reference: 'F-1' },
    });
  });

  it('GPC refuses sale/sharing/ads purposes, and follows the conflict path after an explicit opt-in (G02, G03, hostile case 25)', async () => {
    const none = await ledger.applyGpc('gina', undefined);
    expect(none.signal).toBe(false);
    expect((await ledger.current('gina')).purposes['targeted-advertising']?.state).toBe('none');
    const outcome = await ledger.applyGpc('gina', '0, 1');
    expect(outcome.refused.map((event) => event.purpose)).toEqual(['targeted-advertising']);
    const history = await ledger.history('gina');
    expect(history.at(-1)).toMatchObject({ source: 'gpc', method: 'gpc-signal', state: 'refused' });
    expect((await ledger.applyGpc('gina', '1')).unchanged).toEqual(['targeted-advertising']);

    // An explicit later grant wins; a GPC signal afterwards is reported and logged once, not applied.
    await ledger.record(grant('gina', 'targeted-advertising'));
    const conflict = await ledger.applyGpc('gina', '1');
    expect(conflict.conflicts.map((c) => c.purpose)).toEqual(['targeted-advertising']);
    expect(conflict.refused).toEqual([]);
    await ledger.applyGpc('gina', '1');
    const status = (await ledger.current('gina')).purposes['targeted-advertising'];
    expect(status?.valid).toBe(true);
    expect(status?.gpcConflict).toBe(true);
    expect((await ledger.history('gina')).filter((entry) => entry.kind === 'gpc-conflict')).toHaveLength(1);
    // The caller may choose to honour GPC over the grant.
    const overridden = await ledger.applyGpc('gina', '1', { override: true });
    expect(overridden.refused).toHaveLength(1);
    expect(await ledger.mayProcess('gina', 'targeted-advertising')).toBe(false);
  });

  it('answers "who may I process for P now" as one set query, honouring expiry and re-consent', async () => {
    const own = await migratedDatabase(engine);
    try {
      const local = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      await local.import(
        Array.from({ length: 25 }, (_, i) =>
          grant(`s${String(i).padStart(2, '0')}`, 'newsletter', { source: 'import', method: 'import' }),
        ),
      );
      await local.withdraw('s03', 'newsletter');
      await local.record({ ...grant('s04', 'newsletter'), state: 'refused' });
      const ids: string[] = [];
      for await (const id of local.subjectsWithConsent('newsletter', { pageSize: 7 })) ids.push(id);
      expect(ids).toHaveLength(23);
      expect(ids).not.toContain('s03');
      expect(ids).not.toContain('s04');
      const later: string[] = [];
      for await (const id of local.subjectsWithConsent('newsletter', {
        at: new Date('2026-01-01T00:00:00Z'),
      }))
        later.push(id);
      expect(later).toEqual([]);
      await local.publishNotice(editedPolicy());
      const afterChange: string[] = [];
      for await (const id of local.subjectsWithConsent('newsletter')) afterChange.push(id);
      expect(afterChange).toEqual([]);
      const stats = await local.stats();
      expect(stats.find((row) => row.state === 'granted')).toMatchObject({
        count: 23,
        reconsentRequired: true,
      });
    } finally {
      await own?.destroy();
    }
  });

  it('crypto-shredding destroys the key and evidence, logs the shredding, and the ledger still verifies (S11, hostile case 21)', async () => {
    await ledger.record(grant('henry', 'newsletter', { evidence: { ip: '192.0.2.44' } }));
    expect((await ledger.history('henry'))[0]?.evidence).toEqual({ ip: '192.0.2.0' });
    const subjectKey = await ledger.subjectKey('henry');
    await ledger.shredSubject('henry');
    const keys = await database.db
      .selectFrom('privacykit_consent_state')
      .select('key_material')
      .where('subject_key', '=', subjectKey)
      .execute();
    expect(keys).toEqual([]);
    const history = await ledger.history('henry');
    expect(history[0]?.evidence).toBe('unavailable');
    expect(history.at(-1)?.kind).toBe('subject-shredded');
    expect(await ledger.mayProcess('henry', 'newsletter')).toBe(false);
    expect(await ledger.verify()).toMatchObject({ ok: true });
  });

  it('proves inclusion against a signed tree head', async () => {
    const event = await ledger.record(grant('ivy', 'newsletter'));
    const head = await ledger.treeHead();
    expect(verifyTreeHead(head, await ledger.publicKey())).toBe(true);
    const proof = await ledger.inclusionProof(event.seq, head.treeSize);
    expect(verifyInclusionProof(proof, head)).toBe(true);
    expect(verifyInclusionProof({ ...proof, seq: event.seq - 1 }, head)).toBe(false);
  });

  it('imports in bulk and rejects the whole import when one decision is bad', async () => {
    const before = await ledgerSize(database);
    await rejects(
      ledger.import([
        grant('imp-1', 'newsletter', { source: 'import' }),
        grant('imp-2', 'newsletter', { method: 'default' }),
      ]),
      'consent/default-not-consent',
    );
    expect(await ledgerSize(database)).toBe(before);
    const result = await ledger.import(
      Array.from({ length: 1200 }, (_, i) =>
        grant(`imp-${i}`, i % 2 ? 'newsletter' : 'audience-measurement', { source: 'import' }),
      ),
      { batchSize: 500 },
    );
    expect(result.imported).toBe(1200);
    expect(await ledger.mayProcess('imp-7', 'newsletter')).toBe(true);
    expect(await ledger.verify()).toMatchObject({ ok: true });
  });

  it('two imports of one event id at once record it once; the other is refused as a replay and appends go on', async () => {
    const own = await migratedDatabase(engine);
    try {
      const local = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      const legacy = (subjectId: string) =>
        grant(subjectId, 'newsletter', { source: 'import', method: 'import', eventId: 'legacy-evt-1' });
      const outcomes = await Promise.allSettled([
        local.import([legacy('ivy')]),
        local.import([legacy('ivy')]),
      ]);
      expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
      const refused = outcomes.find((outcome) => outcome.status === 'rejected') as PromiseRejectedResult;
      // Refused up front, or — when both passed that check at once — under the append lock.
      expect(refused.reason).toMatchObject({ code: 'consent/duplicate-event' });
      expect((await local.history('ivy')).map((event) => event.eventId)).toEqual(['legacy-evt-1']);
      // Past the next lookup indexing (every 1,000 entries), writes still work and the ledger verifies.
      await local.import(
        Array.from({ length: 1100 }, (_, i) => grant(`after-${i}`, 'newsletter', { source: 'import' })),
      );
      await local.withdraw('ivy', 'newsletter');
      expect(await local.mayProcess('ivy', 'newsletter')).toBe(false);
      expect(await local.verify()).toMatchObject({ ok: true });
    } finally {
      await own?.destroy();
    }
  });
});

// A purpose processing special-category data on consent: Art 9(2)(a) asks for explicit consent.
const explicitPolicyInput: PolicyInput = {
  ...policyInput,
  categories: [{ id: 'health.wellbeing', label: 'Sleep and stress scores', special: 'art9' }],
  purposes: [
    ...(policyInput.purposes ?? []),
    {
      id: 'wellbeing-coaching',
      name: 'Coach you on sleep and stress',
      description: 'We use your sleep and stress scores to suggest routines.',
      legalBases: [{ basis: 'consent' }],
      categories: ['health.wellbeing'],
      specialCondition: 'explicit-consent',
    },
  ],
};
const explicitPolicy = definePolicy(explicitPolicyInput);

describe.each(testEngines())('explicit consent on $engine (C10, Art 9(2)(a))', (engine) => {
  const clock = fixedClock('2025-03-01T12:00:00Z');
  const fixture = ledgerPerBlock(engine, { policy: explicitPolicy, clock });
  const coaching = 'wellbeing-coaching';

  it('refuses a grant of special-category processing that is not explicit, writing nothing', async () => {
    const before = await ledgerSize(fixture.database);
    for (const extra of [{}, { explicit: false }]) {
      await rejects(
        fixture.ledger.record(grant('erin', coaching, extra)),
        'consent/explicit-consent-required',
      );
      await rejects(
        fixture.ledger.import([grant('erin', coaching, { ...extra, source: 'import', method: 'import' })]),
        'consent/explicit-consent-required',
      );
    }
    expect(await ledgerSize(fixture.database)).toBe(before);
    expect(await fixture.ledger.mayProcess('erin', coaching)).toBe(false);
    // Refusing and withdrawing need no express statement.
    await fixture.ledger.record(grant('erin', coaching, { state: 'refused' }));
    expect(await ledgerSize(fixture.database)).toBe(before + 1);
  });

  it('records an explicit grant in the hashed entry, the history and the receipt; other grants read as expressed', async () => {
    const explicit = await fixture.ledger.record(
      grant('frank', coaching, { method: 'form-submit', explicit: true }),
    );
    expect(await fixture.ledger.mayProcess('frank', coaching)).toBe(true);
    const stored = await fixture.database.db
      .selectFrom('privacykit_consent_ledger')
      .select('entry')
      .where('event_id', '=', explicit.eventId)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(stored.entry)).toMatchObject({ explicit: true, purpose: coaching, state: 'granted' });
    expect((await fixture.ledger.history('frank')).at(-1)).toMatchObject({
      state: 'granted',
      explicit: true,
    });

    const receipt = await fixture.ledger.receipt(explicit.eventId);
    expect(receipt.consentType).toBe('dpv:ExplicitlyExpressedConsent');
    expect(verifyReceipt(receipt, await fixture.ledger.publicKey())).toBe(true);
    expect(
      verifyReceipt({ ...receipt, consentType: 'dpv:ExpressedConsent' }, await fixture.ledger.publicKey()),
    ).toBe(false);

    // An ordinary grant: expressed, not explicit; a refusal's receipt claims no consent type.
    const ordinary = await fixture.ledger.record(grant('frank', 'newsletter'));
    expect((await fixture.ledger.history('frank')).at(-1)).not.toHaveProperty('explicit');
    expect((await fixture.ledger.receipt(ordinary.eventId)).consentType).toBe('dpv:ExpressedConsent');
    // The consent records say the same of the grants in force.
    const records = await fixture.ledger.consentRecords('frank');
    expect(records.map((record) => [record.purpose.id, record.status, record.consentType])).toEqual([
      ['newsletter', 'dpv:ConsentGiven', 'dpv:ExpressedConsent'],
      [coaching, 'dpv:ConsentGiven', 'dpv:ExplicitlyExpressedConsent'],
    ]);
    const withdrawn = await fixture.ledger.withdraw('frank', coaching);
    expect(await fixture.ledger.receipt(withdrawn.eventId)).not.toHaveProperty('consentType');
    expect(await fixture.ledger.verify()).toMatchObject({ ok: true });
  });

  it('asks for explicit consent whenever the notice a grant answers says so, whatever policy the recording instance runs', async () => {
    const own = await migratedDatabase(engine);
    try {
      const plainCoaching = definePolicy({
        ...policyInput,
        version: '2025-01-01',
        purposes: [
          ...(policyInput.purposes ?? []),
          {
            id: coaching,
            name: 'Coach you on sleep and stress',
            description: 'We suggest routines.',
            legalBases: [{ basis: 'consent' }],
            categories: ['identity'],
          },
        ],
      });
      // An instance still on the old policy, then one publishing the explicit-consent notice.
      const stale = createConsentLedger({ db: own.db, policy: plainCoaching, clock });
      await stale.publicKey();
      const current = createConsentLedger({
        db: own.db,
        policy: definePolicy({ ...explicitPolicyInput, version: '2025-02-01' }),
        clock,
      });
      await current.publicKey();
      const answering = { notice: { version: '2025-02-01' } };
      await rejects(stale.record(grant('hal', coaching, answering)), 'consent/explicit-consent-required');
      await rejects(
        stale.import([grant('hal', coaching, { ...answering, source: 'import', method: 'import' })]),
        'consent/explicit-consent-required',
      );
      expect(await current.mayProcess('hal', coaching)).toBe(false);
      const explicit = await stale.record(grant('hal', coaching, { ...answering, explicit: true }));
      expect((await current.receipt(explicit.eventId)).consentType).toBe('dpv:ExplicitlyExpressedConsent');
    } finally {
      await own?.destroy();
    }
  });
});
