import { generateKeyPairSync } from 'node:crypto';
import { definePolicy, fixedClock } from '@privacykit/core';
import { migrate, openDatabase, writeTransaction } from '@privacykit/core/db';
import { holdSqliteWriteLock, testEngines } from '@privacykit/core/testing';
import { Migrator } from 'kysely';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConsentDecision } from './decision.js';
import { createConsentLedger } from './ledger.js';
import type { ConsentLedger } from './ledger.js';
import { consentMigrations } from './migrations.js';
import { verifyReceipt } from './receipt.js';
import { grant, migratedDatabase, policyInput, testPolicy } from './test-fixtures.js';

// A banner grant (the purpose named every time here).
const decision = grant;

async function seqs(database: TestDatabase): Promise<number[]> {
  const rows = await database.db
    .selectFrom('privacykit_consent_ledger')
    .select('seq')
    .orderBy('seq')
    .execute();
  return rows.map((row) => Number(row.seq));
}

describe.each(testEngines())('fast paths on $engine', (engine) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.destroy();
    database = undefined;
  });

  it('purposes checked once are checked again against a newly published policy', async () => {
    database = await migratedDatabase(engine);
    const ledger = createConsentLedger({ db: database.db, policy: testPolicy });
    await ledger.record(decision('cached', 'newsletter'));
    expect(await ledger.mayProcess('cached', 'newsletter')).toBe(true);
    const withoutNewsletter = definePolicy({
      ...policyInput,
      version: '2025-09-01',
      purposes: (policyInput.purposes ?? []).map((purpose) =>
        purpose.id === 'newsletter'
          ? {
              ...purpose,
              legalBases: [
                {
                  basis: 'legitimate-interests' as const,
                  legitimateInterest: 'Telling customers about our products.',
                },
              ],
            }
          : purpose,
      ),
    });
    await ledger.publishNotice(withoutNewsletter);
    await expect(ledger.record(decision('cached', 'newsletter'))).rejects.toMatchObject({
      code: 'consent/not-consent-purpose',
    });
    await expect(ledger.mayProcess('cached', 'newsletter')).rejects.toMatchObject({
      code: 'consent/not-consent-purpose',
    });
  });

  it('two ledgers on one database take turns without forking (a remembered head gone stale is re-read)', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const first = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    const second = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    const purposes = ['newsletter', 'audience-measurement', 'targeted-advertising'];
    for (let i = 0; i < 12; i++) {
      // Runs of one and two: each ledger's remembered head is sometimes current, sometimes stale.
      const ledger = i % 3 === 0 ? second : first;
      await ledger.record(
        decision(`turns-${i % 4}`, purposes[i % 3] as string, { evidence: { ip: '198.51.100.7' } }),
      );
    }
    await Promise.all([
      first.record(decision('both', 'newsletter')),
      second.record(decision('both', 'audience-measurement')),
      first.withdraw('turns-1', 'audience-measurement'),
    ]);
    const size = (await seqs(database)).length;
    expect(await seqs(database)).toEqual(Array.from({ length: size }, (_, i) => i));
    expect(await first.verify()).toMatchObject({ ok: true, size });
    expect(await second.verify()).toMatchObject({ ok: true, size });
    expect(await first.mayProcess('both', 'audience-measurement')).toBe(true);
    expect(await second.mayProcess('turns-1', 'audience-measurement')).toBe(false);
  });

  it.runIf(engine.engine === 'sqlite')(
    "record() waits for another process's write lock off the thread (timers run meanwhile; before, its synchronous path slept in SQLite's busy handler), then lands",
    { timeout: 30_000 },
    async () => {
      database = await migratedDatabase(engine);
      const ledger = createConsentLedger({
        db: database.db,
        policy: testPolicy,
        clock: fixedClock('2025-03-01T12:00:00Z'),
      });
      // Two decisions first: the next one takes the synchronous path, from the remembered head.
      await ledger.record(decision('lock-0', 'newsletter', { evidence: { ip: '198.51.100.7' } }));
      await ledger.record(decision('lock-1', 'newsletter'));
      const before = (await seqs(database)).length;
      const holder = holdSqliteWriteLock(database.url.replace(/^sqlite:/, ''), 1500);
      await holder.locked;
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      try {
        await ledger.record(decision('lock-2', 'newsletter', { evidence: { ip: '198.51.100.7' } }));
      } finally {
        clearInterval(timer);
      }
      expect(ticks).toBeGreaterThan(5);
      await holder.released;
      expect(await ledger.mayProcess('lock-2', 'newsletter')).toBe(true);
      expect(await seqs(database)).toEqual(Array.from({ length: before + 1 }, (_, i) => i));
      expect(await ledger.verify()).toMatchObject({ ok: true, size: before + 1 });
    },
  );

  it.runIf(engine.engine === 'sqlite')(
    "treeHead() stores its head in turn behind another connection's transaction on the file (before, its lone insert waited in the busy handler on the thread that transaction needed: 10 s, then SQLITE_BUSY)",
    { timeout: 30_000 },
    async () => {
      database = await migratedDatabase(engine);
      const other = await openDatabase(database.url);
      try {
        const ledger = createConsentLedger({
          db: database.db,
          policy: testPolicy,
          clock: fixedClock('2025-03-01T12:00:00Z'),
        });
        await ledger.record(decision('head-0', 'newsletter'));
        const size = (await seqs(database)).length;
        let started!: () => void;
        const holding = new Promise<void>((resolve) => {
          started = resolve;
        });
        // Another connection of this process holds the write lock across an await.
        const holder = writeTransaction(other, async () => {
          started();
          await new Promise((resolve) => setTimeout(resolve, 300));
        });
        await holding;
        const head = await ledger.treeHead();
        await holder;
        expect(head.treeSize).toBe(size);
        expect(await ledger.verify()).toMatchObject({ ok: true, size });
      } finally {
        await other.destroy();
      }
    },
  );

  it('a subject shredded through another ledger gets a new key: nothing is sealed under the destroyed one', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const writer = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    const eraser = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    const keyOf = async () =>
      (
        await database?.db
          .selectFrom('privacykit_consent_state')
          .select('key_material')
          .where('purpose', '=', 'newsletter')
          .where('subject_key', '=', await writer.subjectKey('shreddee'))
          .executeTakeFirst()
      )?.key_material;
    await writer.record(decision('shreddee', 'newsletter', { evidence: { ip: '203.0.113.50' } }));
    const before = await keyOf();
    expect(before).toBeTypeOf('string');
    await eraser.shredSubject('shreddee');
    expect(await keyOf()).toBeUndefined();
    expect(await writer.mayProcess('shreddee', 'newsletter')).toBe(false);
    await writer.record(decision('shreddee', 'newsletter', { evidence: { ip: '203.0.113.51' } }));
    const after = await keyOf();
    expect(after).toBeTypeOf('string');
    expect(after).not.toBe(before);
    const history = await writer.history('shreddee');
    expect(history.map((entry) => entry.evidence)).toEqual(['unavailable', undefined, { ip: '203.0.113.0' }]);
    expect((await writer.verify()).ok).toBe(true);
  });

  it('mayProcess agrees with current() for granted, expired, withdrawn, refused and re-consent cases', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock, validity: 'P1M' });
    await ledger.record(decision('granted', 'newsletter'));
    await ledger.record(decision('withdrawn', 'newsletter'));
    await ledger.withdraw('withdrawn', 'newsletter');
    await ledger.record(decision('refused', 'newsletter', { state: 'refused' }));
    await ledger.import([
      decision('old', 'newsletter', { source: 'import', method: 'import', at: '2024-12-01T00:00:00Z' }),
    ]);
    for (const subject of ['granted', 'withdrawn', 'refused', 'old', 'nobody']) {
      for (const at of [undefined, new Date('2025-05-01T00:00:00Z')]) {
        const options = at ? { at } : {};
        const status = (await ledger.current(subject, options)).purposes.newsletter;
        expect(await ledger.mayProcess(subject, 'newsletter', options)).toBe(Boolean(status?.valid));
      }
    }
    expect(await ledger.mayProcess('granted', 'newsletter')).toBe(true);
    expect(await ledger.mayProcess('old', 'newsletter')).toBe(false);
  });

  it('mayProcess never answers from another operation’s uncommitted transaction on the same connection', async () => {
    database = await migratedDatabase(engine);
    const { db } = database;
    const ledger = createConsentLedger({ db, policy: testPolicy });
    await ledger.record(decision('dirty', 'newsletter', { state: 'refused' }));
    let during: Promise<boolean> | undefined;
    await db
      .transaction()
      .execute(async (trx) => {
        const dirty = await trx
          .updateTable('privacykit_consent_state')
          .set({ state: 'granted' })
          .where('subject_id', '=', 'dirty')
          .executeTakeFirst();
        expect(Number(dirty.numUpdatedRows)).toBe(1); // the uncommitted grant is really there
        // Asked while the grant is written but not committed (then rolled back).
        during = ledger.mayProcess('dirty', 'newsletter');
        await new Promise((resolve) => setTimeout(resolve, 20));
        throw new Error('roll back');
      })
      .catch(() => undefined);
    expect(await during).toBe(false);
    expect(await ledger.mayProcess('dirty', 'newsletter')).toBe(false);
  });

  it('migrations down to 0001 and up again keep the current state, evidence keys, lookups and a verifiable ledger', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    await ledger.record(decision('ann', 'newsletter', { evidence: { ip: '192.0.2.10' } }));
    await ledger.record(decision('bob', 'audience-measurement', { state: 'refused' }));
    // Enough entries that some are indexed behind the appends and some are not yet.
    await ledger.import(
      Array.from({ length: 300 }, (_, i) =>
        decision(`bulk-${i}`, 'newsletter', { source: 'import', method: 'import' }),
      ),
    );
    // (Going down keeps one evidence key per subject: ann's evidence is under one purpose.)
    const ann = await ledger.record(decision('ann', 'audience-measurement'));
    const before = await ledger.current('ann');
    const migrator = new Migrator({
      db: database.db,
      provider: { getMigrations: async () => ({ ...consentMigrations.migrations }) },
      migrationTableName: 'privacykit_consent_migrations',
      migrationLockTableName: 'privacykit_consent_migrations_lock',
    });
    const down = await migrator.migrateTo('0001_init');
    expect(down.error).toBeUndefined();
    expect(down.results?.map((result) => result.migrationName)).toEqual([
      '0005_key_store_marker',
      '0004_binary_keys',
      '0003_lean_appends',
      '0002_state_by_purpose',
    ]);
    await migrate(database.db, [consentMigrations]);
    const after = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    expect(await after.current('ann')).toEqual(before);
    expect((await after.current('bob')).purposes['audience-measurement']?.state).toBe('refused');
    const history = await after.history('ann');
    expect(history.map((entry) => entry.evidence)).toEqual([{ ip: '192.0.2.0' }, undefined]);
    expect((await after.receipt(ann.eventId)).recordId).toBe(ann.eventId);
    const ids: string[] = [];
    for await (const id of after.subjectsWithConsent('newsletter')) ids.push(id);
    expect(ids).toHaveLength(301);
    expect(await after.verify()).toMatchObject({ ok: true, size: ann.seq + 1 });
    const next = await after.record(decision('cy', 'newsletter'));
    expect(next.seq).toBe(ann.seq + 1);
    expect(await after.verify()).toMatchObject({ ok: true, size: ann.seq + 2 });
  });

  it('subjectPagesWithConsent yields the same set as subjectsWithConsent, page by page', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    await ledger.import(
      Array.from({ length: 7 }, (_, i) =>
        decision(`page-${i}`, 'newsletter', {
          state: i === 3 ? 'refused' : 'granted',
          source: 'import',
          method: 'import',
        }),
      ),
    );
    const pages: string[][] = [];
    for await (const page of ledger.subjectPagesWithConsent('newsletter', { pageSize: 2 })) pages.push(page);
    const ids: string[] = [];
    for await (const id of ledger.subjectsWithConsent('newsletter', { pageSize: 4 })) ids.push(id);
    expect(pages.every((page) => page.length > 0 && page.length <= 2)).toBe(true);
    expect(pages.flat()).toEqual(ids);
    expect([...ids].sort()).toEqual(['page-0', 'page-1', 'page-2', 'page-4', 'page-5', 'page-6']);
    expect(() => ledger.subjectPagesWithConsent('newsletter', { pageSize: 0 })).toThrow(
      expect.objectContaining({
        code: 'consent/invalid-options',
        message: expect.stringMatching(/pageSize/),
      }),
    );
  });
});

describe.each(testEngines())('lookups behind the appends on $engine', (engine) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.destroy();
    database = undefined;
  });

  async function headOf(db: TestDatabase) {
    const head = await db.db
      .selectFrom('privacykit_consent_head')
      .select(['size', 'indexed_size'])
      .executeTakeFirstOrThrow();
    return { size: Number(head.size), indexed: Number(head.indexed_size) };
  }

  it('history, receipts and replay detection see entries both indexed and not yet indexed', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    const early = await ledger.record(decision('early', 'newsletter', { evidence: { ip: '192.0.2.1' } }));
    await ledger.import(
      Array.from({ length: 1100 }, (_, i) =>
        decision(`bulk-${i}`, 'newsletter', { source: 'import', method: 'import', eventId: `import-${i}` }),
      ),
    );
    await ledger.withdraw('early', 'newsletter');
    const late = await ledger.record(
      decision('late', 'audience-measurement', { evidence: { ip: '192.0.2.2' } }),
    );
    const head = await headOf(database);
    // `early` and the first imports sit below the indexed size, `late` above it.
    expect(head.indexed).toBeGreaterThan(early.seq);
    expect(head.indexed).toBeLessThanOrEqual(late.seq);

    expect((await ledger.history('early')).map((entry) => [entry.state, entry.evidence])).toEqual([
      ['granted', { ip: '192.0.2.0' }],
      ['withdrawn', undefined],
    ]);
    expect((await ledger.history('late'))[0]).toMatchObject({ seq: late.seq, evidence: { ip: '192.0.2.0' } });
    expect((await ledger.history('bulk-1099'))[0]?.eventId).toBe('import-1099');
    expect((await ledger.receipt(early.eventId)).recordId).toBe(early.eventId);
    expect((await ledger.receipt(late.eventId)).recordId).toBe(late.eventId);
    expect((await ledger.receipt('import-3')).recordId).toBe('import-3');
    for (const eventId of ['import-3', 'import-1099', late.eventId]) {
      const error = await ledger
        .import([decision('replay', 'newsletter', { source: 'import', method: 'import', eventId })])
        .catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: 'consent/duplicate-event' });
    }
    await ledger.shredSubject('late');
    expect((await ledger.history('late'))[0]?.evidence).toBe('unavailable');
    expect(await ledger.verify()).toMatchObject({ ok: true });
  });

  it('verify catches a head checkpoint that does not match the entries, or claims more entries than exist', async () => {
    database = await migratedDatabase(engine);
    const clock = fixedClock('2025-03-01T12:00:00Z');
    const ledger = createConsentLedger({
      db: database.db,
      policy: testPolicy,
      clock,
      signEvery: { appends: 2 },
    });
    for (let i = 0; i < 6; i++) await ledger.record(decision(`s${i}`, 'newsletter'));
    expect(await ledger.verify()).toMatchObject({ ok: true });
    const head = await headOf(database);
    expect(head.size).toBeGreaterThan(0);
    const saved = await database.db
      .selectFrom('privacykit_consent_head')
      .select('frontier')
      .executeTakeFirstOrThrow();
    await database.db
      .updateTable('privacykit_consent_head')
      .set({ frontier: JSON.stringify(['00'.repeat(32)]) })
      .execute();
    expect(await ledger.verify()).toMatchObject({ ok: false, reason: expect.stringMatching(/head row/) });
    await database.db
      .updateTable('privacykit_consent_head')
      .set({ frontier: saved.frontier, size: head.size + 50 })
      .execute();
    expect(await ledger.verify()).toMatchObject({ ok: false, reason: expect.stringMatching(/deleted/) });
  });
});

describe.each(testEngines())('import batches on $engine', (engine) => {
  /** A fresh ledger on a migrated database, destroyed after `check`. */
  async function withLedger(check: (ledger: ConsentLedger) => Promise<void>): Promise<void> {
    const database = await migratedDatabase(engine);
    try {
      const clock = fixedClock('2025-03-01T12:00:00Z');
      await check(createConsentLedger({ db: database.db, policy: testPolicy, clock }));
    } finally {
      await database.destroy();
    }
  }

  it('groups batches by subject yet keeps each subject’s decisions in input order, the last one current', () =>
    withLedger(async (ledger) => {
      const input: ConsentDecision[] = [];
      for (let i = 0; i < 12; i++) {
        input.push(decision(`other-${i}`, 'newsletter', { source: 'import', method: 'import' }));
        if (i % 4 === 0) {
          input.push(
            decision('mover', 'newsletter', {
              state: i === 8 ? 'withdrawn' : 'granted',
              source: 'import',
              method: 'import',
              at: '2025-01-01T00:00:00Z',
              eventId: `mover-${i}`,
            }),
          );
        }
      }
      expect(await ledger.import(input, { batchSize: 4 })).toEqual({ imported: 15 });
      const history = await ledger.history('mover');
      expect(history.map((entry) => entry.eventId)).toEqual(['mover-0', 'mover-4', 'mover-8']);
      expect(history.map((entry) => entry.seq)).toEqual(
        [...history.map((entry) => entry.seq)].sort((a, b) => a - b),
      );
      expect((await ledger.current('mover')).purposes.newsletter?.state).toBe('withdrawn');
      expect(await ledger.mayProcess('other-11', 'newsletter')).toBe(true);
      expect(await ledger.verify()).toMatchObject({ ok: true });
    }));

  it('keeps a subject’s evidence key, order and lookups across a 1,300-decision batch', () =>
    withLedger(async (ledger) => {
      const input: ConsentDecision[] = [];
      const at = (i: number) => new Date(Date.UTC(2025, 1, 1) + i * 60_000).toISOString();
      // 700 decisions of one subject × purpose: adjacent once sorted by pseudonym, so they span
      // every split of the batch. Only the first carries evidence; the last is current.
      for (let i = 0; i < 700; i++) {
        input.push(
          decision('hoarder', 'newsletter', {
            source: 'import',
            method: 'import',
            at: at(i),
            state: i === 699 ? 'withdrawn' : 'granted',
            ...(i === 0 ? { evidence: { ip: '192.0.2.77' } } : {}),
          }),
        );
      }
      for (let i = 0; i < 600; i++) {
        input.push(decision(`crowd-${i}`, 'newsletter', { source: 'import', method: 'import', at: at(i) }));
      }
      expect(await ledger.import(input, { batchSize: 5000 })).toEqual({ imported: 1300 });
      const history = await ledger.history('hoarder');
      expect(history).toHaveLength(700);
      expect(history[0]?.evidence).toEqual({ ip: '192.0.2.0' });
      expect(history.slice(1).every((entry) => entry.evidence === undefined)).toBe(true);
      expect(history.map((entry) => entry.at)).toEqual(input.slice(0, 700).map((d) => d.at));
      expect((await ledger.current('hoarder')).purposes.newsletter?.state).toBe('withdrawn');
      expect(await ledger.mayProcess('crowd-599', 'newsletter')).toBe(true);
      expect(await ledger.verify()).toMatchObject({ ok: true });
    }));
});

describe.each(testEngines())('tenants on one database on $engine', (engine) => {
  it('eight tenants starting at once on their own connections all record; no raw deadlock reaches them', async () => {
    const database = await migratedDatabase(engine);
    const pools = await Promise.all(
      Array.from({ length: engine.engine === 'sqlite' ? 1 : 8 }, () => openDatabase(database.url)),
    );
    try {
      const clock = fixedClock('2025-03-01T12:00:00Z');
      const tenants = Array.from({ length: 8 }, (_, i) => `tenant-${i}`);
      const ledgers = tenants.map((tenant, i) =>
        createConsentLedger({
          db: pools[i % pools.length] as (typeof pools)[number],
          policy: definePolicy({ ...policyInput, tenant }),
          clock,
        }),
      );
      for (let round = 0; round < 2; round++) {
        const outcomes = await Promise.allSettled(
          ledgers.map((ledger) => ledger.record(decision(`p-${round}`, 'newsletter'))),
        );
        expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
      }
      for (const ledger of ledgers) {
        expect(await ledger.mayProcess('p-1', 'newsletter')).toBe(true);
        expect((await ledger.verify()).ok).toBe(true);
      }
    } finally {
      await Promise.all(pools.map((pool) => pool.destroy()));
      await database.destroy();
    }
  }, 60_000);

  it('keeps each tenant’s ledger, lookups and state apart while they append in turn', async () => {
    const database = await migratedDatabase(engine);
    try {
      const clock = fixedClock('2025-03-01T12:00:00Z');
      const acme = createConsentLedger({
        db: database.db,
        policy: definePolicy({ ...policyInput, tenant: 'acme' }),
        clock,
      });
      const globex = createConsentLedger({
        db: database.db,
        policy: definePolicy({ ...policyInput, tenant: 'globex' }),
        clock,
      });
      const events: string[] = [];
      for (let i = 0; i < 6; i++) {
        const ledger = i % 2 === 0 ? acme : globex;
        events.push(
          (await ledger.record(decision('same-person', 'newsletter', { evidence: { ip: '192.0.2.9' } })))
            .eventId,
        );
      }
      await globex.withdraw('same-person', 'newsletter');
      expect(await acme.mayProcess('same-person', 'newsletter')).toBe(true);
      expect(await globex.mayProcess('same-person', 'newsletter')).toBe(false);
      expect((await acme.history('same-person')).map((entry) => entry.eventId)).toEqual([
        events[0],
        events[2],
        events[4],
      ]);
      expect(await globex.history('same-person')).toHaveLength(4);
      await expect(acme.receipt(events[1] as string)).rejects.toMatchObject({
        code: 'consent/unknown-event',
      });
      expect((await globex.receipt(events[1] as string)).recordId).toBe(events[1]);
      const [a, g] = [await acme.verify(), await globex.verify()];
      expect(a).toMatchObject({ ok: true });
      expect(g).toMatchObject({ ok: true });
      expect((await acme.treeHead()).treeSize).toBe(a.size);
      expect((await globex.treeHead()).treeSize).toBe(g.size);
    } finally {
      await database.destroy();
    }
  });
});

describe.each(testEngines())('condition-of-service signals on $engine', (engine) => {
  it('flags a purpose nobody refused over enough banner decisions, and not one with refusals or too few (C11)', async () => {
    const database = await migratedDatabase(engine);
    try {
      const clock = fixedClock('2025-03-01T12:00:00Z');
      const ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock });
      for (let i = 0; i < 12; i++) {
        await ledger.record(decision(`walled-${i}`, 'audience-measurement'));
        await ledger.record(
          decision(`free-${i}`, 'newsletter', { state: i % 4 === 0 ? 'refused' : 'granted', source: 'form' }),
        );
      }
      // Imported and GPC decisions say nothing about how the banner asks.
      await ledger.import([decision('old', 'targeted-advertising', { source: 'import', method: 'import' })]);
      const signals = await ledger.conditionOfServiceSignals({ minDecisions: 10 });
      expect(signals).toEqual([
        { purpose: 'newsletter', decisions: 12, refusals: 3, suspected: false },
        { purpose: 'audience-measurement', decisions: 12, refusals: 0, suspected: true },
        { purpose: 'targeted-advertising', decisions: 0, refusals: 0, suspected: false },
      ]);
      expect((await ledger.conditionOfServiceSignals()).every((signal) => !signal.suspected)).toBe(true);
      await ledger.withdraw('walled-3', 'audience-measurement');
      const after = await ledger.conditionOfServiceSignals({ minDecisions: 10 });
      expect(after.find((signal) => signal.purpose === 'audience-measurement')).toMatchObject({
        refusals: 1,
        suspected: false,
      });
      await expect(ledger.conditionOfServiceSignals({ minDecisions: 0 })).rejects.toMatchObject({
        code: 'consent/invalid-options',
      });
    } finally {
      await database.destroy();
    }
  });
});

describe.each(testEngines())('signing-key rotation on $engine', (engine) => {
  it('heads signed by a previous key still verify after rotation; without that key they do not', async () => {
    const database = await migratedDatabase(engine);
    try {
      const clock = fixedClock('2025-03-01T12:00:00Z');
      const old = generateKeyPairSync('ed25519');
      const next = generateKeyPairSync('ed25519');
      const before = createConsentLedger({
        db: database.db,
        policy: testPolicy,
        clock,
        keys: { privateKey: old.privateKey },
      });
      for (let i = 0; i < 3; i++) await before.record(decision(`r${i}`, 'newsletter'));
      const oldHead = await before.treeHead();

      const rotated = createConsentLedger({
        db: database.db,
        policy: testPolicy,
        clock,
        keys: {
          privateKey: next.privateKey,
          previousPublicKeys: [old.publicKey.export({ type: 'spki', format: 'pem' }).toString()],
        },
      });
      const receipt = await rotated.receipt((await rotated.record(decision('r9', 'newsletter'))).eventId);
      const newHead = await rotated.treeHead();
      expect(newHead.keyId).not.toBe(oldHead.keyId);
      expect(verifyReceipt(receipt, await rotated.publicKey())).toBe(true);
      expect(await rotated.verify()).toMatchObject({ ok: true, signedHeads: expect.any(Number) });
      expect((await rotated.verify({ head: oldHead })).ok).toBe(true);

      // A verifier that does not know the old key cannot accept the heads it signed.
      const forgetful = createConsentLedger({
        db: database.db,
        policy: testPolicy,
        clock,
        keys: { privateKey: next.privateKey },
      });
      expect(await forgetful.verify()).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/signature/),
      });
      expect((await rotated.verify({ publicKeys: [next.publicKey, old.publicKey] })).ok).toBe(true);
      expect((await rotated.verify({ publicKeys: [old.publicKey] })).ok).toBe(false);
      expect(() =>
        createConsentLedger({
          db: database.db,
          policy: testPolicy,
          keys: { privateKey: next.privateKey, previousPublicKeys: ['not a key'] },
        }),
      ).toThrow(expect.objectContaining({ code: 'consent/invalid-options' }));
    } finally {
      await database.destroy();
    }
  });
});
