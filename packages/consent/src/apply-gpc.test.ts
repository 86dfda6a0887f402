import { definePolicy, fixedClock } from '@privacykit/core';
import { sql } from 'kysely';
import { testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsentLedger } from './ledger.js';
import type { ConsentLedger } from './ledger.js';
import { migratedDatabase, policyInput } from './test-fixtures.js';

// The seed policy plus a sale/sharing purpose resting on legitimate interests (G02 cites Art 21(5)).
const policy = definePolicy({
  ...policyInput,
  purposes: [
    ...(policyInput.purposes ?? []),
    {
      id: 'data-broker',
      name: 'Share audience segments with data brokers',
      description: 'We share audience segments with data brokers.',
      legalBases: [{ basis: 'legitimate-interests', legitimateInterest: 'advertising revenue' }],
      categories: ['marketing.interests'],
      recipients: ['cookie-partners'],
      tags: ['sale', 'sharing'],
    },
  ],
});

const ads = 'targeted-advertising';

describe.each(testEngines())('applyGpc on $engine (G02, G03, hostile case 25)', (engine) => {
  let database: TestDatabase;
  let ledger: ConsentLedger;
  const clock = fixedClock('2025-03-01T12:00:00Z');
  const grantAds = (subjectId: string) =>
    ledger.record({ subjectId, purpose: ads, state: 'granted', source: 'banner', method: 'click' });
  const kinds = async (subjectId: string) =>
    (await ledger.history(subjectId)).map((entry) =>
      entry.kind === 'decision' ? `${entry.source}:${entry.state}` : entry.kind,
    );

  beforeAll(async () => {
    database = await migratedDatabase(engine);
    ledger = createConsentLedger({ db: database.db, policy, clock });
  });
  afterAll(async () => {
    await database?.destroy();
  });

  it('processes the signal as an opt-out over a grant given before it, and reports the conflict (§7025(c)(3))', async () => {
    const granted = await grantAds('before');
    const outcome = await ledger.applyGpc('before', '1');
    expect(outcome.refused.map((event) => event.purpose)).toEqual([ads]);
    expect(outcome.conflicts).toEqual([
      {
        purpose: ads,
        grantedEventId: granted.eventId,
        grantedAt: granted.at,
        resolution: 'signal-applied',
        refusedEventId: outcome.refused[0]?.eventId,
      },
    ]);
    expect(await ledger.mayProcess('before', ads)).toBe(false);
    const status = (await ledger.current('before')).purposes[ads];
    expect(status).toMatchObject({ state: 'refused', source: 'gpc', gpcConflict: false });
    expect(await kinds('before')).toEqual(['banner:granted', 'gpc:refused']);

    // The same signal on the next request writes nothing more.
    const again = await ledger.applyGpc('before', '1');
    expect(again).toMatchObject({ refused: [], conflicts: [], unchanged: [ads] });
    expect(await kinds('before')).toEqual(['banner:granted', 'gpc:refused']);
  });

  it('keeps a grant the subject gave after the signal was recorded, reporting it on every signal and logging it once', async () => {
    await ledger.applyGpc('after', '1');
    const granted = await grantAds('after');
    for (let i = 0; i < 3; i++) {
      const outcome = await ledger.applyGpc('after', '1');
      expect(outcome.refused).toEqual([]);
      expect(outcome.conflicts).toEqual([
        { purpose: ads, grantedEventId: granted.eventId, grantedAt: granted.at, resolution: 'grant-kept' },
      ]);
    }
    expect(await ledger.mayProcess('after', ads)).toBe(true);
    expect((await ledger.current('after')).purposes[ads]?.gpcConflict).toBe(true);
    expect(await kinds('after')).toEqual(['gpc:refused', 'banner:granted', 'gpc-conflict']);

    // A renewed grant is a new grant: its conflict is logged once more.
    const renewed = await grantAds('after');
    expect((await ledger.applyGpc('after', '1')).conflicts).toMatchObject([
      { grantedEventId: renewed.eventId, resolution: 'grant-kept' },
    ]);
    expect((await kinds('after')).filter((kind) => kind === 'gpc-conflict')).toHaveLength(2);

    // The host may still decide to let the signal win.
    const overridden = await ledger.applyGpc('after', '1', { override: true });
    expect(overridden.refused).toHaveLength(1);
    expect(overridden.conflicts).toMatchObject([{ purpose: ads, resolution: 'signal-applied' }]);
    expect(await ledger.mayProcess('after', ads)).toBe(false);
  });

  it('counts a GPC refusal recorded through record() (source gpc) as the signal', async () => {
    await ledger.record({
      subjectId: 'portal',
      purpose: ads,
      state: 'refused',
      source: 'gpc',
      method: 'gpc-signal',
    });
    await grantAds('portal');
    expect((await ledger.applyGpc('portal', '1')).conflicts).toMatchObject([{ resolution: 'grant-kept' }]);
    expect(await ledger.mayProcess('portal', ads)).toBe(true);
  });

  it('logs the first signal over a refusal or withdrawal made another way, leaving it in place, so a grant given after it is kept', async () => {
    // Whatever the subject decided before the signal, a grant given after it is their later choice.
    for (const [subjectId, earlier] of [
      ['refused-first', 'refused'],
      ['withdrawn-first', 'withdrawn'],
    ] as const) {
      await grantAds(subjectId);
      await ledger.record({ subjectId, purpose: ads, state: earlier, source: 'banner', method: 'click' });
      const signals = async () =>
        (await ledger.conditionOfServiceSignals()).find((signal) => signal.purpose === ads);
      const counted = await signals();
      const first = await ledger.applyGpc(subjectId, '1');
      expect(first).toMatchObject({ refused: [], conflicts: [], unchanged: [ads] });
      // The banner decision stays the current one (and still counts as a banner refusal, C11).
      expect((await ledger.current(subjectId)).purposes[ads]).toMatchObject({
        state: earlier,
        source: 'banner',
      });
      expect(await signals()).toEqual(counted);
      // Logged once: the next signal writes nothing, here or on another instance.
      expect((await ledger.applyGpc(subjectId, '1')).unchanged).toEqual([ads]);
      const other = createConsentLedger({ db: database.db, policy, clock });
      expect((await other.applyGpc(subjectId, '1')).unchanged).toEqual([ads]);
      expect(await kinds(subjectId)).toEqual(['banner:granted', `banner:${earlier}`, 'gpc-signal']);

      const granted = await grantAds(subjectId);
      const outcome = await ledger.applyGpc(subjectId, '1');
      expect(outcome.refused).toEqual([]);
      expect(outcome.conflicts).toEqual([
        { purpose: ads, grantedEventId: granted.eventId, grantedAt: granted.at, resolution: 'grant-kept' },
      ]);
      expect(await ledger.mayProcess(subjectId, ads)).toBe(true);
    }
    expect(await ledger.verify()).toMatchObject({ ok: true });
  });

  it('refuses once when the subject never decided, and treats an expired grant as no grant', async () => {
    for (let i = 0; i < 3; i++) await ledger.applyGpc('never', '1');
    expect(await kinds('never')).toEqual(['gpc:refused']);

    const own = createConsentLedger({ db: database.db, policy, clock, validity: 'P1D' });
    await own.record({
      subjectId: 'lapsed',
      purpose: ads,
      state: 'granted',
      source: 'banner',
      method: 'click',
    });
    clock.advance(2 * 24 * 3600 * 1000);
    try {
      const outcome = await own.applyGpc('lapsed', '1');
      expect(outcome.refused).toHaveLength(1);
      expect(outcome.conflicts).toEqual([]);
    } finally {
      clock.set('2025-03-01T12:00:00Z');
    }
  });

  it('reports sale/sharing purposes on another legal basis as objections, recording nothing for them (Art 21(5))', async () => {
    const outcome = await ledger.applyGpc('broker', ['0', '1']);
    expect(outcome.objections).toEqual(['data-broker']);
    expect(outcome.refused.map((event) => event.purpose)).toEqual([ads]);
    expect((await ledger.history('broker')).map((entry) => entry.purpose)).toEqual([ads]);
    expect((await ledger.applyGpc('broker', '1')).objections).toEqual(['data-broker']);

    // No signal, no objection — and never consent.
    const none = await ledger.applyGpc('broker-2', undefined);
    expect(none).toEqual({ signal: false, refused: [], conflicts: [], unchanged: [], objections: [] });
    expect(await ledger.history('broker-2')).toEqual([]);
  });
});

// PostgreSQL and MySQL roll a transaction back whole to break a deadlock or a serialisation
// conflict, and the ledger runs it again: the outcome must report what the run that committed
// did, once. A trigger makes the engine refuse the first ledger row written after `armFailure()`
// with such an error (a sequence counts the rows: it is not rolled back with the transaction).
// PostgreSQL's fires at commit, after everything else in the transaction ran.
describe.each(testEngines().filter(({ engine }) => engine !== 'sqlite'))(
  'applyGpc on $engine when the engine rolls its transaction back once',
  (engine) => {
    let database: TestDatabase;
    let ledger: ConsentLedger;
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const armFailure = () => sql`alter sequence pk_fail_once restart with 1`.execute(database.db);
    // How many ledger rows the trigger saw since it was armed (the first one was refused).
    const fired = async () => {
      if (database.engine === 'postgres') {
        const { rows } = await sql<{ last_value: string; is_called: boolean }>`
          select last_value, is_called from pk_fail_once`.execute(database.db);
        return rows[0]?.is_called ? Number(rows[0].last_value) : 0;
      }
      const { rows } = await sql<{ next_not_cached_value: string }>`
        select next_not_cached_value from pk_fail_once`.execute(database.db);
      return Number(rows[0]?.next_not_cached_value) - 1;
    };

    beforeAll(async () => {
      database = await migratedDatabase(engine);
      ledger = createConsentLedger({ db: database.db, policy, clock });
      await ledger.verify(); // the head row exists before the trigger does
      if (database.engine === 'postgres') {
        await sql`create sequence pk_fail_once start with 2`.execute(database.db);
        await sql`create function pk_fail_once() returns trigger language plpgsql as $$
          begin
            if nextval('pk_fail_once') = 1 then
              raise exception 'forced serialization failure' using errcode = '40001';
            end if;
            return null;
          end $$`.execute(database.db);
        await sql`create constraint trigger pk_fail_once after insert on privacykit_consent_ledger
          deferrable initially deferred for each row execute function pk_fail_once()`.execute(database.db);
      } else {
        await sql`create sequence pk_fail_once start with 2 nocache`.execute(database.db);
        await sql`create trigger pk_fail_once before insert on privacykit_consent_ledger for each row
          begin
            if nextval(pk_fail_once) = 1 then
              signal sqlstate '40001' set mysql_errno = 1213, message_text = 'forced deadlock';
            end if;
          end`.execute(database.db);
      }
    });
    afterAll(async () => {
      await database?.destroy();
    });

    it('reports a refusal over a grant, an unchanged refusal and a kept grant once each', async () => {
      const granted = await ledger.record({
        subjectId: 'over-grant',
        purpose: ads,
        state: 'granted',
        source: 'banner',
        method: 'click',
      });
      await armFailure();
      const applied = await ledger.applyGpc('over-grant', '1');
      expect(await fired()).toBe(2);
      expect(applied.refused.map((event) => event.purpose)).toEqual([ads]);
      expect(applied.conflicts).toEqual([
        {
          purpose: ads,
          grantedEventId: granted.eventId,
          grantedAt: granted.at,
          resolution: 'signal-applied',
          refusedEventId: applied.refused[0]?.eventId,
        },
      ]);

      // Over a banner refusal: the first signal is logged as a gpc-signal event.
      await ledger.record({
        subjectId: 'refused',
        purpose: ads,
        state: 'refused',
        source: 'banner',
        method: 'click',
      });
      await armFailure();
      const unchanged = await ledger.applyGpc('refused', '1');
      expect(await fired()).toBe(2);
      expect(unchanged).toMatchObject({ refused: [], conflicts: [], unchanged: [ads] });

      // A grant given after the signal: kept, and the conflict logged once.
      await ledger.applyGpc('later', '1');
      const later = await ledger.record({
        subjectId: 'later',
        purpose: ads,
        state: 'granted',
        source: 'banner',
        method: 'click',
      });
      await armFailure();
      const kept = await ledger.applyGpc('later', '1');
      expect(await fired()).toBe(2);
      expect(kept.conflicts).toEqual([
        { purpose: ads, grantedEventId: later.eventId, grantedAt: later.at, resolution: 'grant-kept' },
      ]);

      const kinds = async (subjectId: string) =>
        (await ledger.history(subjectId)).map((entry) =>
          entry.kind === 'decision' ? `${entry.source}:${entry.state}` : entry.kind,
        );
      expect(await kinds('over-grant')).toEqual(['banner:granted', 'gpc:refused']);
      expect(await kinds('refused')).toEqual(['banner:refused', 'gpc-signal']);
      expect(await kinds('later')).toEqual(['gpc:refused', 'banner:granted', 'gpc-conflict']);
      expect(await ledger.verify()).toMatchObject({ ok: true });
    });
  },
);
