import { definePolicy, fixedClock, isPrivacyKitError } from '@privacykit/core';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConsentDecision } from './decision.js';
import { createConsentLedger } from './ledger.js';
import type { ConsentLedger } from './ledger.js';
import { grant, migratedDatabase, policyInput, testPolicy } from './test-fixtures.js';

const sqlite = testEngines().filter((engine) => engine.engine === 'sqlite');
const clock = fixedClock('2025-03-01T12:00:00Z');
const at = (minute: number) => new Date(Date.UTC(2025, 0, 1) + minute * 60_000).toISOString();
const imported = (subjectId: string, extra: Partial<ConsentDecision> = {}) =>
  grant(subjectId, 'newsletter', { source: 'import', method: 'import', ...extra });

/**
 * An import that exercises what the batches and slices do: one subject's 500 decisions span two
 * slices, the last of them live (decided now, no `at`) but followed by older imported ones;
 * another's dated decisions run newest first; refusals, evidence to seal, a second purpose.
 */
function mixedImport(): ConsentDecision[] {
  const input: ConsentDecision[] = [];
  for (let i = 0; i < 500; i++) {
    if (i === 450) input.push(imported('mixer', { at: undefined }));
    else input.push(imported('mixer', { at: at(i), state: i % 2 ? 'refused' : 'granted' }));
  }
  for (let i = 0; i < 450; i++)
    input.push(imported('backwards', { at: at(1000 - i), state: i === 0 ? 'withdrawn' : 'granted' }));
  for (let i = 0; i < 1200; i++) {
    input.push(
      imported(`crowd-${i}`, {
        at: at(i),
        state: i % 5 === 0 ? 'refused' : 'granted',
        ...(i % 7 === 0 ? { evidence: { ip: '198.51.100.23' } } : {}),
      }),
    );
    if (i % 3 === 0) input.push(imported(`crowd-${i}`, { purpose: 'audience-measurement', at: at(i) }));
  }
  return input;
}

async function stateRows(db: Kysely<any>) {
  return db
    .selectFrom('privacykit_consent_state')
    .select(['subject_id', 'purpose', 'state', 'decided_at', 'expires_at', 'source', 'notice_version'])
    .orderBy('subject_id')
    .orderBy('purpose')
    .execute();
}

describe.each(sqlite)('import on a writer thread on $engine', (engine) => {
  const databases: TestDatabase[] = [];
  afterEach(async () => {
    for (const database of databases.splice(0)) await database.destroy();
  });

  /** A fresh ledger, and its size before any decision (its published notices). */
  async function fresh(): Promise<{ database: TestDatabase; ledger: ConsentLedger; notices: number }> {
    const database = await migratedDatabase(engine);
    databases.push(database);
    const ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock });
    const { size } = (await ledger.verify()) as { size: number };
    return { database, ledger, notices: size };
  }

  it('leaves the same ledger and state as an import on the calling thread', async () => {
    const input = mixedImport();
    const results = [];
    for (const writerThread of [false, true]) {
      const { database, ledger, notices } = await fresh();
      expect(await ledger.import(input, { batchSize: 900, writerThread })).toEqual({
        imported: input.length,
      });
      expect(await ledger.verify()).toMatchObject({ ok: true, size: notices + input.length });
      results.push({
        states: await stateRows(database.db),
        mixer: (await ledger.history('mixer')).map((entry) => [entry.state, entry.at]),
        backwards: (await ledger.current('backwards')).purposes.newsletter?.state,
        sealed: (await ledger.history('crowd-7')).map((entry) => entry.evidence),
      });
    }
    const [calling, threaded] = results;
    expect(threaded).toEqual(calling);
    // The live decision is newer than every imported one: it stays current across the slices.
    expect(calling?.states.find((row) => row.subject_id === 'mixer')).toMatchObject({
      state: 'granted',
      decided_at: '2025-03-01T12:00:00.000Z',
    });
    expect(calling?.backwards).toBe('withdrawn');
    expect(calling?.sealed).toEqual([{ ip: '198.51.100.0' }]);
    expect(calling?.states).toHaveLength(2 + 1200 + 400);
  });

  it('a batch that fails on the thread is rolled back whole; the batches before it stay, and the ledger goes on', async () => {
    const { database, ledger, notices } = await fresh();
    const input = Array.from({ length: 3000 }, (_, i) => imported(`subject-${i}`, { at: at(i) }));
    // One state row the database refuses, in whichever batch its subject key sorts into.
    await sql`create trigger refuse_poison before insert on privacykit_consent_state
      when new.subject_id = 'subject-1234' begin select raise(abort, 'poison refused'); end`.execute(
      database.db,
    );
    const error = await ledger
      .import(input, { batchSize: 500, writerThread: true })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message)).toMatch(/poison refused/);
    const states = await stateRows(database.db);
    const entries = await database.db
      .selectFrom('privacykit_consent_ledger')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    // Whole batches only: each entry has its state row, and the poisoned one's batch is absent.
    expect(states.length % 500).toBe(0);
    expect(states.length).toBeLessThan(3000);
    expect(Number(entries.n)).toBe(notices + states.length);
    expect(states.some((row) => row.subject_id === 'subject-1234')).toBe(false);
    expect(await ledger.verify()).toMatchObject({ ok: true, size: notices + states.length });
    // The lock and the thread are gone: the ledger records on the calling connection and imports again.
    await sql`drop trigger refuse_poison`.execute(database.db);
    await ledger.record(grant('after'));
    expect(await ledger.import([imported('subject-1234')], { writerThread: true })).toEqual({ imported: 1 });
    expect(await ledger.mayProcess('subject-1234', 'newsletter')).toBe(true);
    expect(await ledger.verify()).toMatchObject({ ok: true, size: notices + states.length + 2 });
  });

  it('decisions recorded while an import runs on the thread land between its batches, unforked', async () => {
    const { ledger, notices } = await fresh();
    const input = Array.from({ length: 4000 }, (_, i) => imported(`bulk-${i}`, { at: at(i) }));
    const importing = ledger.import(input, { batchSize: 400, writerThread: true });
    const recorded = [];
    for (let i = 0; i < 20; i++) recorded.push(await ledger.record(grant(`live-${i}`)));
    expect(await importing).toEqual({ imported: 4000 });
    expect(new Set(recorded.map((event) => event.seq)).size).toBe(20);
    expect(await ledger.verify()).toMatchObject({ ok: true, size: notices + 4020 });
    expect(await ledger.mayProcess('live-19', 'newsletter')).toBe(true);
    expect(await ledger.mayProcess('bulk-3999', 'newsletter')).toBe(true);
  });

  it('another tenant’s ledger starting up and a plain write of the host’s, while an import runs on the thread, both go through', async () => {
    const { database, ledger } = await fresh();
    await sql`create table host_audit (id integer primary key, note text not null)`.execute(database.db);
    const input = Array.from({ length: 3000 }, (_, i) => imported(`bulk-${i}`, { at: at(i) }));
    const importing = ledger.import(input, { batchSize: 300, writerThread: true });
    // Once the import is writing (its first batch committed): the next batches hold the lock.
    while (
      !(await database.db.selectFrom('privacykit_consent_state').select('seq').limit(1).executeTakeFirst())
    ) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    // Both write on the main connection outside writeTransaction: a new tenant's head row, and
    // a plain INSERT. Waiting for the thread's lock on this thread would fail after 10 s.
    const other = createConsentLedger({
      db: database.db,
      policy: definePolicy({ ...policyInput, tenant: 'tenant-b' }),
      clock,
    });
    const [started, audited] = await Promise.all([
      other.publicKey().then(
        () => 'started',
        (error: unknown) => error,
      ),
      database.db
        .insertInto('host_audit')
        .values({ id: 1, note: 'import begun' })
        .execute()
        .then(
          () => 'written',
          (error: unknown) => error,
        ),
    ]);
    expect([started, audited]).toEqual(['started', 'written']);
    expect(await importing).toEqual({ imported: 3000 });
    await other.record(grant('b-subject'));
    expect(await other.verify()).toMatchObject({ ok: true });
    expect(await ledger.verify()).toMatchObject({ ok: true });
  });

  it('refuses a writerThread that is not a boolean, before anything is written', async () => {
    const { ledger } = await fresh();
    const error = await ledger
      .import([imported('someone')], { writerThread: 'yes' as unknown as boolean })
      .catch((caught: unknown) => caught);
    expect(isPrivacyKitError(error) && error.code).toBe('consent/invalid-options');
    expect(await ledger.mayProcess('someone', 'newsletter')).toBe(false);
  });
});
