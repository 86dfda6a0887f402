import { testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentRecordId } from './consent-record.js';
import { createConsentLedger } from './ledger.js';
import type { ConsentLedger } from './ledger.js';
import { codeOf, editedPolicy, grant, migratedDatabase, policyInput, testPolicy } from './test-fixtures.js';

// C10: a subject's consent exported as ISO/IEC TS 27560-shaped records with DPV statuses.
describe.each(testEngines())('consent records on $engine (C10, Art 15)', (engine) => {
  let database: TestDatabase;
  let ledger: ConsentLedger;
  let now = '2025-03-01T12:00:00.000Z';
  const clock = { now: () => new Date(now) };
  const newsletter = policyInput.purposes?.find((purpose) => purpose.id === 'newsletter');

  beforeAll(async () => {
    database = await migratedDatabase(engine);
    ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock, validity: 'P30D' });
  });
  afterAll(async () => {
    await database?.destroy();
  });

  it('one record per purpose decided on: the status now, the notice in force as shown, every event in order', async () => {
    const first = await ledger.record(grant('ann', 'newsletter', { evidence: { ip: '203.0.113.77' } }));
    now = '2025-03-02T12:00:00.000Z';
    const renewed = await ledger.record(grant('ann'));
    const refused = await ledger.record(grant('ann', 'audience-measurement', { state: 'refused' }));
    now = '2025-03-03T12:00:00.000Z';
    const withdrawn = await ledger.withdraw('ann', 'newsletter');

    const records = await ledger.consentRecords('ann');
    expect(records.map((record) => [record.purpose.id, record.status])).toEqual([
      ['audience-measurement', 'dpv:ConsentRefused'],
      ['newsletter', 'dpv:ConsentWithdrawn'],
    ]);
    const [audience, letters] = records as [(typeof records)[0], (typeof records)[0]];
    const subjectKey = await ledger.subjectKey('ann');
    expect(letters).toMatchObject({
      schemaVersion: 'privacykit-consent-record/1',
      recordId: consentRecordId(testPolicy.tenant, subjectKey, 'newsletter'),
      subject: { id: 'ann', pseudonym: subjectKey },
      controller: { name: 'OpenDataSoft', contact: 'cil@opendatasoft.com' },
      purpose: {
        id: 'newsletter',
        name: newsletter?.name,
        description: newsletter?.description,
        legalBasis: 'consent',
      },
      notice: withdrawn.notice,
      retired: false,
      validity: {},
    });
    expect(letters.consentType).toBeUndefined();
    expect(letters.events).toEqual([
      {
        eventId: first.eventId,
        seq: first.seq,
        time: '2025-03-01T12:00:00.000Z',
        type: 'decision',
        status: 'dpv:ConsentGiven',
        consentType: 'dpv:ExpressedConsent',
        source: 'banner',
        method: 'click',
        jurisdiction: 'EU',
        notice: first.notice,
        expiresAt: '2025-03-31T12:00:00.000Z',
        evidence: { ip: '203.0.113.0' },
      },
      expect.objectContaining({ eventId: renewed.eventId, status: 'dpv:RenewedConsentGiven' }),
      expect.objectContaining({ eventId: withdrawn.eventId, status: 'dpv:ConsentWithdrawn', source: 'api' }),
    ]);
    expect(letters.events[2]?.consentType).toBeUndefined();
    expect(audience.events).toEqual([
      expect.objectContaining({ eventId: refused.eventId, type: 'decision', status: 'dpv:ConsentRefused' }),
    ]);
    // The same record ids in every export: records of one subject and purpose can be matched up.
    expect((await ledger.consentRecords('ann')).map((record) => record.recordId)).toEqual(
      records.map((record) => record.recordId),
    );
    expect(audience.recordId).not.toBe(letters.recordId);
    expect(await ledger.consentRecords('nobody')).toEqual([]);
  });

  it('a grant in force gives its consent type and validity; after it ran out the record says expired', async () => {
    now = '2025-04-01T00:00:00.000Z';
    const given = await ledger.record(grant('bea', 'newsletter'));
    const [record] = await ledger.consentRecords('bea');
    expect(record).toMatchObject({
      status: 'dpv:ConsentGiven',
      consentType: 'dpv:ExpressedConsent',
      validity: { until: '2025-05-01T00:00:00.000Z' },
      notice: given.notice,
    });
    const later = await ledger.consentRecords('bea', { at: new Date('2025-05-02T00:00:00.000Z') });
    // Validity is judged at `at`, as current() judges it; the record keeps when the grant ended.
    expect(later[0]).toMatchObject({
      status: 'dpv:ConsentExpired',
      validity: { until: '2025-05-01T00:00:00.000Z' },
    });
    expect(later[0]?.consentType).toBeUndefined();
    // The same answer once expireDue() logged the expiry, which becomes an event of the record.
    now = '2025-05-02T00:00:00.000Z';
    expect(await ledger.expireDue()).toBeGreaterThanOrEqual(1);
    const expired = await ledger.consentRecords('bea');
    expect(expired[0]).toMatchObject({ status: 'dpv:ConsentExpired', notice: given.notice });
    expect(expired[0]?.events.map((event) => [event.type, event.status])).toEqual([
      ['decision', 'dpv:ConsentGiven'],
      ['expiry', 'dpv:ConsentExpired'],
    ]);
  });

  it('a grant on a notice since changed is invalidated, and the record quotes the text the subject saw; a new grant answers the new text', async () => {
    now = '2025-06-01T00:00:00.000Z';
    const given = await ledger.record(grant('cai', 'newsletter'));
    const other = await ledger.record(grant('cid', 'newsletter'));
    const edited = editedPolicy('2025-06-02');
    const local = createConsentLedger({ db: database.db, policy: edited, clock });
    await local.publishNotice(edited);
    const [record] = await local.consentRecords('cai');
    expect(record).toMatchObject({
      status: 'dpv:ConsentInvalidated',
      notice: given.notice,
      purpose: { description: newsletter?.description },
      validity: { until: given.expiresAt },
    });
    expect(record?.consentType).toBeUndefined();
    // cid grants again on the new text: the record is about that notice, both events keep theirs.
    const again = await local.record(grant('cid', 'newsletter'));
    expect(again.notice.version).not.toBe(other.notice.version);
    const [renewed] = await local.consentRecords('cid');
    expect(renewed).toMatchObject({
      status: 'dpv:RenewedConsentGiven', // a grant over a grant still in force renews it
      notice: again.notice,
      purpose: { description: edited.purposes.find((purpose) => purpose.id === 'newsletter')?.description },
    });
    expect(renewed?.events.map((event) => event.notice?.version)).toEqual([
      other.notice.version,
      again.notice.version,
    ]);
    // An imported refusal dated before the grant in force is logged but does not replace it.
    await local.import([
      grant('cid', 'newsletter', {
        state: 'refused',
        source: 'import',
        method: 'import',
        at: '2025-05-01T00:00:00.000Z',
      }),
    ]);
    const [kept] = await local.consentRecords('cid');
    expect(kept).toMatchObject({ status: 'dpv:RenewedConsentGiven', notice: again.notice });
    expect(kept?.events.map((event) => event.status)).toEqual([
      'dpv:ConsentGiven',
      'dpv:RenewedConsentGiven',
      'dpv:ConsentRefused',
    ]);
  });

  it('after shredding, the events stay with their evidence unavailable and the status is unknown', async () => {
    const given = await ledger.record(grant('dee', 'newsletter', { evidence: { ip: '198.51.100.9' } }));
    const refused = await ledger.record(grant('dee', 'audience-measurement', { state: 'refused' }));
    now = '2025-03-09T08:00:00.000Z';
    await ledger.shredSubject('dee');
    const shredding = (await ledger.history('dee')).find((item) => item.kind === 'subject-shredded');
    expect(shredding).toBeDefined();
    const [audience, record] = await ledger.consentRecords('dee');
    expect(record).toMatchObject({ status: 'dpv:ConsentUnknown', notice: given.notice, validity: {} });
    // Each record lists the shredding, in ledger order after its own events.
    const shredded = {
      eventId: shredding?.eventId,
      seq: shredding?.seq,
      time: '2025-03-09T08:00:00.000Z',
      type: 'subject-shredded',
    };
    expect(record?.events).toEqual([
      expect.objectContaining({
        eventId: given.eventId,
        status: 'dpv:ConsentGiven',
        evidence: 'unavailable',
      }),
      shredded,
    ]);
    expect(audience?.events).toEqual([
      expect.objectContaining({ eventId: refused.eventId, status: 'dpv:ConsentRefused' }),
      shredded,
    ]);

    // Deciding again after it: the shredding stays between the purpose's old and new events, and
    // a purpose first decided after it does not list it (its evidence was never shredded).
    now = '2025-03-10T08:00:00.000Z';
    const again = await ledger.record(grant('dee', 'newsletter', { evidence: { ip: '198.51.100.9' } }));
    const later = await ledger.record(grant('dee', 'targeted-advertising', { state: 'refused' }));
    const byPurpose = new Map((await ledger.consentRecords('dee')).map((item) => [item.purpose.id, item]));
    expect(byPurpose.get('newsletter')?.events.map((event) => [event.eventId, event.type])).toEqual([
      [given.eventId, 'decision'],
      [shredding?.eventId, 'subject-shredded'],
      [again.eventId, 'decision'],
    ]);
    expect(byPurpose.get('newsletter')?.events[2]?.evidence).toEqual({ ip: '198.51.100.0' });
    expect(byPurpose.get('targeted-advertising')?.events.map((event) => [event.eventId, event.type])).toEqual(
      [[later.eventId, 'decision']],
    );
  });

  it('a notice text altered since the decision is named as unavailable in its record alone, which keeps status and events; receipts still refuse', async () => {
    const refused = await ledger.record(grant('eve', 'audience-measurement', { state: 'refused' }));
    const given = await ledger.record(grant('eve', 'newsletter'));
    const notices = () =>
      database.db
        .updateTable('privacykit_consent_notices')
        .where('purpose', '=', 'audience-measurement')
        .where('version', '=', refused.notice.version);
    const { content } = await database.db
      .selectFrom('privacykit_consent_notices')
      .select('content')
      .where('purpose', '=', 'audience-measurement')
      .where('version', '=', refused.notice.version)
      .executeTakeFirstOrThrow();
    await notices()
      .set({ content: content.replace('Visitor traffic', 'Harmless') })
      .execute();
    try {
      const [audience, letters] = await ledger.consentRecords('eve');
      expect(audience).toEqual({
        schemaVersion: 'privacykit-consent-record/1',
        recordId: consentRecordId(testPolicy.tenant, await ledger.subjectKey('eve'), 'audience-measurement'),
        subject: { id: 'eve', pseudonym: await ledger.subjectKey('eve') },
        purpose: { id: 'audience-measurement', legalBasis: 'consent', legalBasisArticle: 'Art. 6(1)(a)' },
        noticeUnavailable: `the text of notice version "${refused.notice.version}" no longer matches the hash the decision recorded`,
        notice: refused.notice,
        status: 'dpv:ConsentRefused',
        retired: false,
        validity: {},
        withdrawalMethod: expect.any(String),
        events: [expect.objectContaining({ eventId: refused.eventId, status: 'dpv:ConsentRefused' })],
      });
      // The other purpose's notice is intact: its record is described in full.
      expect(letters).toMatchObject({
        status: 'dpv:ConsentGiven',
        controller: { name: 'OpenDataSoft' },
        purpose: { id: 'newsletter', name: newsletter?.name },
        notice: given.notice,
      });
      expect(letters?.noticeUnavailable).toBeUndefined();
      expect(await codeOf(ledger.receipt(refused.eventId))).toBe('consent/notice-unavailable');
    } finally {
      await notices().set({ content }).execute();
    }
    const [restored] = await ledger.consentRecords('eve');
    expect(restored?.noticeUnavailable).toBeUndefined();
    expect(restored?.purpose.description).toContain('Visitor traffic');

    // A notice row gone altogether: the record says so, and the export still gets it.
    const row = await database.db
      .selectFrom('privacykit_consent_notices')
      .selectAll()
      .where('purpose', '=', 'audience-measurement')
      .where('version', '=', refused.notice.version)
      .executeTakeFirstOrThrow();
    await database.db
      .deleteFrom('privacykit_consent_notices')
      .where('purpose', '=', 'audience-measurement')
      .where('version', '=', refused.notice.version)
      .execute();
    try {
      const [missing] = await ledger.consentRecords('eve');
      expect(missing).toMatchObject({
        noticeUnavailable: `the text of notice version "${refused.notice.version}" is not stored`,
        status: 'dpv:ConsentRefused',
        notice: refused.notice,
      });
      expect(missing?.controller).toBeUndefined();
    } finally {
      await database.db.insertInto('privacykit_consent_notices').values(row).execute();
    }
  });

  it('refuses a subject id that names nobody, as every method taking one does', async () => {
    expect(await codeOf(ledger.consentRecords(''))).toBe('consent/invalid-subject');
    expect(await codeOf(ledger.consentRecords('x'.repeat(256)))).toBe('consent/invalid-subject');
  });
});
