import { definePolicy, fixedClock, isPrivacyKitError } from '@privacykit/core';
import { testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createConsentLedger } from './ledger.js';
import type { ConsentLedger } from './ledger.js';
import { codeOf, editedPolicy, grant, migratedDatabase, policyInput, testPolicy } from './test-fixtures.js';

async function consenting(ledger: ConsentLedger, purpose: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of ledger.subjectsWithConsent(purpose)) ids.push(id);
  return ids.sort();
}

/** The policy with the newsletter purpose on legitimate interests, or without it. */
function withoutNewsletterConsent(version: string, drop: boolean) {
  return definePolicy({
    ...policyInput,
    version,
    purposes: (policyInput.purposes ?? []).flatMap((purpose) => {
      if (purpose.id !== 'newsletter') return [purpose];
      if (drop) return [];
      return [
        {
          ...purpose,
          legalBases: [
            {
              basis: 'legitimate-interests' as const,
              legitimateInterest: 'Telling customers about our products.',
            },
          ],
        },
      ];
    }),
  });
}

describe.each(testEngines())('decision order and notice deployment on $engine', (engine) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.destroy();
    database = undefined;
  });

  it('a withdrawal wins over the grant before it, whatever the writers’ clocks say (Art 7(3), hostile case 4)', async () => {
    database = await migratedDatabase(engine);
    // Instance A's clock runs two seconds ahead of instance B's.
    const ahead = createConsentLedger({
      db: database.db,
      policy: testPolicy,
      clock: fixedClock('2025-03-01T12:00:02Z'),
    });
    const behind = createConsentLedger({
      db: database.db,
      policy: testPolicy,
      clock: fixedClock('2025-03-01T12:00:01Z'),
    });
    await ahead.record(grant('u1'));
    await ahead.record(grant('u2'));
    // The withdrawal names the processors to tell (C06): not the controller's own staff.
    expect((await behind.withdraw('u1', 'newsletter')).notify).toEqual([
      { id: 'emailing', name: 'Emailing solutions', kind: 'processor' },
    ]);
    for (const ledger of [ahead, behind]) {
      expect(await ledger.mayProcess('u1', 'newsletter')).toBe(false);
      expect((await ledger.current('u1')).purposes.newsletter?.state).toBe('withdrawn');
      expect(await consenting(ledger, 'newsletter')).toEqual(['u2']);
    }
    // Several purposes at once through import() without `at` (a banner's choice) are live too.
    await ahead.record(grant('u4'));
    await behind.import([
      grant('u4', 'newsletter', { state: 'withdrawn' }),
      grant('u4', 'audience-measurement', { state: 'refused' }),
    ]);
    expect(await ahead.mayProcess('u4', 'newsletter')).toBe(false);
    expect((await ahead.current('u4')).purposes.newsletter?.state).toBe('withdrawn');
    // And the other way round: a grant after a refusal from a clock behind is the current state.
    await ahead.record(grant('u3', 'newsletter', { state: 'refused' }));
    await behind.record(grant('u3'));
    expect(await ahead.mayProcess('u3', 'newsletter')).toBe(true);
    expect((await behind.verify()).ok).toBe(true);
  });

  it('import() refuses a decision dated after now and writes nothing of the batch; older imports never undo a later choice', async () => {
    database = await migratedDatabase(engine);
    const ledger = createConsentLedger({
      db: database.db,
      policy: testPolicy,
      clock: fixedClock('2025-03-01T12:00:00Z'),
    });
    await ledger.withdraw('w', 'newsletter');
    const sizeBefore = (await ledger.treeHead()).treeSize;
    const error = await ledger
      .import([
        grant('x', 'newsletter', { source: 'import', method: 'import', at: '2025-02-01T00:00:00Z' }),
        grant('w', 'newsletter', { source: 'import', method: 'import', at: '2025-12-03T00:00:00Z' }),
      ])
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    expect(isPrivacyKitError(error, 'consent/invalid-decision')).toBe(true);
    expect(isPrivacyKitError(error) && error.details.index).toBe(1);
    expect(isPrivacyKitError(error) && error.issues[0]?.path).toBe('[1].at');
    expect((await ledger.treeHead()).treeSize).toBe(sizeBefore);
    expect(await ledger.mayProcess('x', 'newsletter')).toBe(false);
    expect(await ledger.mayProcess('w', 'newsletter')).toBe(false);
    // A decision imported as made before the withdrawal stays history; one made after it (and
    // before now) is the subject's current choice.
    await ledger.import([
      grant('w', 'newsletter', { source: 'import', method: 'import', at: '2025-02-01T00:00:00Z' }),
    ]);
    expect((await ledger.current('w')).purposes.newsletter?.state).toBe('withdrawn');
    await ledger.import([
      grant('w', 'newsletter', { source: 'import', method: 'import', at: '2025-03-01T12:00:00Z' }),
    ]);
    expect((await ledger.current('w')).purposes.newsletter?.state).toBe('granted');
  });

  it('withdrawing a grant given on an older notice also names the processors only that notice listed (C06, Art 19)', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    await ledger.record(grant('kim'));
    await ledger.record(grant('lea'));
    // The newsletter moves from the emailing processor to the tracking one.
    const moved = definePolicy({
      ...policyInput,
      version: '2025-04-01',
      purposes: (policyInput.purposes ?? []).map((purpose) =>
        purpose.id === 'newsletter' ? { ...purpose, recipients: ['staff', 'tracking'] } : purpose,
      ),
    });
    const next = createConsentLedger({ db: database.db, policy: moved, clock });
    // kim's grant was given when emailing received the data: emailing must hear of it too.
    expect(
      (await next.withdraw('kim', 'newsletter')).notify?.map((recipient) => recipient.id).sort(),
    ).toEqual(['emailing', 'tracking']);
    // lea renewed on the new text first: only its processors received data under that grant.
    await next.record(grant('lea'));
    expect((await next.withdraw('lea', 'newsletter')).notify?.map((recipient) => recipient.id)).toEqual([
      'tracking',
    ]);
    // Withdrawing what is already withdrawn tells nobody: the first withdrawal did.
    expect((await next.withdraw('kim', 'newsletter')).notify).toEqual([]);
    // Nor does withdrawing what was never granted, or only refused (helper-89: processors were
    // asked to act on consent that never existed).
    expect(await next.withdraw('nobody', 'newsletter')).toMatchObject({ state: 'withdrawn', notify: [] });
    await next.record({ ...grant('ron'), state: 'refused' });
    expect((await next.withdraw('ron', 'newsletter')).notify).toEqual([]);
  });

  it('current().valid is what mayProcess answers: a grant on a changed notice is not valid (C07)', async () => {
    database = await migratedDatabase(engine);
    const ledger = createConsentLedger({
      db: database.db,
      policy: testPolicy,
      clock: fixedClock('2025-03-01T12:00:00Z'),
    });
    await ledger.record(grant('erin'));
    expect((await ledger.current('erin')).purposes.newsletter?.valid).toBe(true);
    await ledger.publishNotice(editedPolicy());
    const status = (await ledger.current('erin')).purposes.newsletter;
    expect(status).toMatchObject({ state: 'granted', reconsentRequired: true, valid: false });
    expect(await ledger.mayProcess('erin', 'newsletter')).toBe(false);
  });

  it.each([
    ['moved to legitimate interests', false],
    ['removed from the policy', true],
  ])(
    'a purpose %s is reported retired and stays withdrawable, also after a restart (C05)',
    async (_, drop) => {
      database = await migratedDatabase(engine);
      const clock = fixedClock('2025-03-01T12:00:00Z');
      const ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock });
      await ledger.record(grant('gina'));
      await ledger.record(grant('hal'));
      const next = withoutNewsletterConsent('2025-04-01', drop);
      const result = await ledger.publishNotice(next);
      expect(result.retired).toEqual(['newsletter']);
      // Its consent records say so: hal's grant no longer allows processing.
      const [hal] = await ledger.consentRecords('hal');
      expect(hal).toMatchObject({
        purpose: { id: 'newsletter' },
        status: 'dpv:ConsentInvalidated',
        retired: true,
      });
      expect(hal?.consentType).toBeUndefined();
      expect(await codeOf(ledger.record(grant('ivy')))).toBe(
        drop ? 'consent/unknown-purpose' : 'consent/not-consent-purpose',
      );
      const withdrawn = await ledger.withdraw('gina', 'newsletter');
      expect(withdrawn).toMatchObject({ state: 'withdrawn', purpose: 'newsletter' });
      // Moved to another basis or removed, the purpose still names the processors its notice
      // told the subjects of (C06, Art 19): from the policy, or from the stored notice.
      expect(withdrawn.notify).toEqual([{ id: 'emailing', name: 'Emailing solutions', kind: 'processor' }]);
      const restarted = createConsentLedger({ db: database.db, policy: next, clock });
      expect(
        (await restarted.withdraw('hal', 'newsletter')).notify?.map((recipient) => recipient.id),
      ).toEqual(['emailing']);
      const rows = await database.db
        .selectFrom('privacykit_consent_state')
        .select(['subject_id', 'state'])
        .where('purpose', '=', 'newsletter')
        .orderBy('subject_id')
        .execute();
      expect(rows).toEqual([
        { subject_id: 'gina', state: 'withdrawn' },
        { subject_id: 'hal', state: 'withdrawn' },
      ]);
      expect((await restarted.history('hal')).map((entry) => entry.state)).toEqual(['granted', 'withdrawn']);
      // A purpose that never rested on consent is still not withdrawable.
      expect(await codeOf(restarted.withdraw('hal', 'service'))).toBe('consent/not-consent-purpose');
      expect(await codeOf(restarted.withdraw('hal', 'no-such-purpose'))).toBe('consent/unknown-purpose');
      expect((await restarted.verify()).ok).toBe(true);
    },
  );

  it('an instance restarting on a superseded policy does not move the notice back, and refuses grants on its old text (C07, hostile case 3)', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const old = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    await old.record(grant('erin'));
    const current = createConsentLedger({ db: database.db, policy: editedPolicy('2025-04-01'), clock });
    await current.record(grant('frank'));
    // The old build is restarted (a rollback of one node, a slow rolling deploy).
    const stale = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    await stale.publicKey();
    for (const ledger of [
      current,
      stale,
      createConsentLedger({ db: database.db, policy: testPolicy, clock }),
    ]) {
      expect((await ledger.current('frank')).purposes.newsletter).toMatchObject({
        valid: true,
        currentNoticeVersion: '2025-04-01',
      });
      expect((await ledger.current('erin')).purposes.newsletter?.reconsentRequired).toBe(true);
      expect(await ledger.mayProcess('frank', 'newsletter')).toBe(true);
    }
    // The stale instance shows the old text: a grant there would be given on a notice that is
    // no longer current. Everything else still works.
    expect(await codeOf(stale.record(grant('gus')))).toBe('consent/notice-outdated');
    await stale.record(grant('gus', 'newsletter', { state: 'refused' }));
    await stale.record(grant('gus', 'audience-measurement'));
    await stale.withdraw('frank', 'newsletter');
    expect(await current.mayProcess('frank', 'newsletter')).toBe(false);
    // Explicitly publishing the superseded version again is refused too.
    expect(await codeOf(stale.publishNotice(testPolicy))).toBe('consent/notice-version-conflict');
    expect((await current.verify()).ok).toBe(true);
  });

  it('an instance still running the old policy when another publishes a new one refuses grants within seconds, never recording one against text it does not show', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const running = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    await running.record(grant('hal'));
    // Another instance is deployed with the new text and publishes it.
    const deployed = createConsentLedger({ db: database.db, policy: editedPolicy('2025-04-01'), clock });
    await deployed.publicKey();
    clock.advance(6_000);
    // The running instance still shows the old text: its grant is refused, whatever it reloaded.
    expect(await codeOf(running.record(grant('ida')))).toBe('consent/notice-outdated');
    expect(await codeOf(running.record(grant('ida')))).toBe('consent/notice-outdated');
    // It can still record refusals, other purposes and withdrawals.
    await running.record(grant('ida', 'newsletter', { state: 'refused' }));
    await running.record(grant('ida', 'audience-measurement'));
    await running.withdraw('hal', 'newsletter');
    const history = await deployed.history('ida');
    expect(history.filter((event) => event.state === 'granted').map((event) => event.purpose)).toEqual([
      'audience-measurement',
    ]);
    expect((await deployed.verify()).ok).toBe(true);
  });

  it('an instance still running the old policy answers lookups, the set query and imports from the newly published notice within seconds, without recording anything first', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const running = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    await running.record(grant('hal'));
    await running.record(grant('hal', 'audience-measurement'));
    expect(await running.mayProcess('hal', 'newsletter')).toBe(true);
    const deployed = createConsentLedger({ db: database.db, policy: editedPolicy('2025-04-01'), clock });
    await deployed.publicKey();
    clock.advance(6_000);
    // hal agreed to the old newsletter text only: no instance may still send on that grant.
    expect(await running.mayProcess('hal', 'newsletter')).toBe(false);
    expect((await running.current('hal')).purposes.newsletter).toMatchObject({
      valid: false,
      reconsentRequired: true,
      currentNoticeVersion: '2025-04-01',
    });
    expect(await consenting(running, 'newsletter')).toEqual([]);
    expect((await running.stats()).find((row) => row.purpose === 'newsletter')).toMatchObject({
      reconsentRequired: true,
    });
    // The purpose whose text did not change is untouched.
    expect(await running.mayProcess('hal', 'audience-measurement')).toBe(true);
    // An imported grant that names no notice would be filed under text this instance never had.
    const implicit = {
      subjectId: 'ivy',
      purpose: 'newsletter',
      state: 'granted' as const,
      source: 'import' as const,
      method: 'import' as const,
    };
    expect(await codeOf(running.import([implicit]))).toBe('consent/notice-outdated');
    expect(await deployed.history('ivy')).toEqual([]);
    // Naming the current notice works from any instance.
    await running.import([{ ...implicit, notice: { version: '2025-04-01' } }]);
    expect(await deployed.mayProcess('ivy', 'newsletter')).toBe(true);
    expect((await deployed.verify()).ok).toBe(true);
  });

  it('a notice edited without a new version refuses grants of that purpose, not withdrawals (Art 7(3))', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    await createConsentLedger({ db: database.db, policy: testPolicy, clock }).record(grant('u1'));
    const edited = createConsentLedger({ db: database.db, policy: editedPolicy(testPolicy.version), clock });
    expect(await edited.mayProcess('u1', 'newsletter')).toBe(true);
    expect(await codeOf(edited.record(grant('u2')))).toBe('consent/notice-version-conflict');
    await edited.withdraw('u1', 'newsletter');
    expect(await edited.mayProcess('u1', 'newsletter')).toBe(false);
    await edited.record(grant('u2', 'audience-measurement'));
    expect(await edited.mayProcess('u2', 'audience-measurement')).toBe(true);
  });

  it('proofs for a tree larger than the ledger, or of a size that is not a count, are typed errors', async () => {
    database = await migratedDatabase(engine);
    const ledger = createConsentLedger({
      db: database.db,
      policy: testPolicy,
      clock: fixedClock('2025-03-01T12:00:00Z'),
    });
    const { seq } = await ledger.record(grant('p1'));
    const { treeSize } = await ledger.treeHead();
    expect((await ledger.inclusionProof(seq, treeSize)).treeSize).toBe(treeSize);
    expect(await codeOf(ledger.inclusionProof(seq, treeSize + 1000))).toBe('consent/unknown-event');
    expect(await codeOf(ledger.consistencyProof(1, treeSize + 1000))).toBe('consent/unknown-event');
    expect(await codeOf(ledger.consistencyProof(1.5))).toBe('consent/unknown-event');
    expect(await codeOf(ledger.inclusionProof(seq, 0.5))).toBe('consent/unknown-event');
  });

  it('takes the age of digital consent from a table by the decision’s jurisdiction (C09, Art 8(1))', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const ledger = createConsentLedger({
      db: database.db,
      policy: testPolicy,
      clock,
      ageOfConsent: { default: 16, BE: 13, FR: 15 },
    });
    // 14 is old enough in Belgium, not in France, nor where the table has no entry.
    await ledger.record(grant('be-kid', 'newsletter', { age: 14, jurisdiction: 'BE' }));
    expect(await codeOf(ledger.record(grant('fr-kid', 'newsletter', { age: 14, jurisdiction: 'FR' })))).toBe(
      'consent/parental-authorisation-required',
    );
    expect(await codeOf(ledger.record(grant('de-kid', 'newsletter', { age: 15, jurisdiction: 'DE' })))).toBe(
      'consent/parental-authorisation-required',
    );
    // A subdivision falls back to its country; the threshold applied is in the hashed entry.
    await ledger.record(grant('fr-teen', 'newsletter', { age: 15, jurisdiction: 'FR-75' }));
    const entries = await database.db
      .selectFrom('privacykit_consent_ledger')
      .select('entry')
      .where('kind', '=', 'decision')
      .orderBy('id')
      .execute();
    expect(entries.map((row) => JSON.parse(row.entry as string).age)).toEqual([
      { threshold: 13, belowThreshold: false },
      { threshold: 15, belowThreshold: false },
    ]);
    // Keys in any case; anything but "default" or a country code is refused.
    const lower = createConsentLedger({
      db: database.db,
      policy: testPolicy,
      clock,
      ageOfConsent: { default: 13, de: 16 },
    });
    expect(await codeOf(lower.record(grant('de-kid-2', 'newsletter', { age: 14, jurisdiction: 'DE' })))).toBe(
      'consent/parental-authorisation-required',
    );
    expect(() =>
      createConsentLedger({ db: database?.db as never, policy: testPolicy, ageOfConsent: { Germany: 16 } }),
    ).toThrow(
      expect.objectContaining({
        code: 'consent/invalid-options',
        message: expect.stringMatching(/ISO 3166/),
      }),
    );
    expect(() =>
      createConsentLedger({
        db: database?.db as never,
        policy: testPolicy,
        ageOfConsent: { default: 16, XX: 12 },
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'consent/invalid-options',
        message: expect.stringMatching(/13 to 16.*XX/),
      }),
    );
  });

  it('an instance whose remembered tail was rolled back (a restored backup) appends after the real last entry, leaving no gap', async () => {
    database = await migratedDatabase(engine);
    const ledger = createConsentLedger({
      db: database.db,
      policy: testPolicy,
      clock: fixedClock('2025-03-01T12:00:00Z'),
    });
    for (const subject of ['r1', 'r2', 'r3'])
      await ledger.record(grant(subject, 'newsletter', { evidence: { ip: '198.51.100.7' } }));
    const last = await database.db
      .selectFrom('privacykit_consent_ledger')
      .select(['id', 'seq'])
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    await database.db.deleteFrom('privacykit_consent_ledger').where('id', '=', last.id).execute();
    // Both shapes of the fast path: one reading the prior state (a grant), one not (a refusal).
    const granted = await ledger.record(grant('r4', 'newsletter', { evidence: { ip: '198.51.100.7' } }));
    expect(granted.seq).toBe(Number(last.seq));
    await database.db.deleteFrom('privacykit_consent_ledger').where('seq', '=', granted.seq).execute();
    const refused = await ledger.record(grant('r5', 'newsletter', { state: 'refused' }));
    expect(refused.seq).toBe(Number(last.seq));
  });

  it('a grant given after a GPC refusal is kept on the next signal even when the refusing instance’s clock ran ahead (§7025(c)(3))', async () => {
    database = await migratedDatabase(engine);
    const ahead = createConsentLedger({
      db: database.db,
      policy: testPolicy,
      clock: fixedClock('2025-01-01T00:10:00Z'),
    });
    const behind = createConsentLedger({
      db: database.db,
      policy: testPolicy,
      clock: fixedClock('2025-01-01T00:01:00Z'),
    });
    await ahead.applyGpc('g1', '1');
    expect(await behind.mayProcess('g1', 'targeted-advertising')).toBe(false);
    // The subject, told of the conflict, opts back in on the other instance.
    await behind.record(grant('g1', 'targeted-advertising'));
    const outcome = await ahead.applyGpc('g1', '1');
    expect(outcome.conflicts.map((conflict) => conflict.resolution)).toEqual(['grant-kept']);
    expect(await ahead.mayProcess('g1', 'targeted-advertising')).toBe(true);
    expect((await ahead.verify()).ok).toBe(true);
  });
});
