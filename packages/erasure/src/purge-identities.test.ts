import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import type { FixedClock } from '@privacykit/core';
import { openDatabase, writeTransaction } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executeErasure } from './execute.js';
import type { ErasureReport } from './execute.js';
import { deliverPending, listNotifications } from './outbox.js';
import { getErasureRecord, planErasure } from './plan.js';
import type { ErasurePlan } from './plan.js';
import { purgeErasureIdentities } from './purge-identities.js';
import { maskValue } from './strategy.js';
import type { ErasureSecrets } from './strategy.js';
import { ada, dataMap, facts, policy, seedHost, strategies } from './testing-fixtures.js';
import { verifyErasure } from './verify.js';

const adaEmail = /ada@example\.com/i;
const erasureTables = [
  'privacykit_erasure_plans',
  'privacykit_erasure_retained',
  'privacykit_erasure_progress',
  'privacykit_erasure_restrictions',
  'privacykit_erasure_outbox',
];

/** The error a call throws (or `undefined`), to assert on its code. */
async function failure(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe.each(testEngines())('purging identities on $engine', (engine) => {
  let t: TestDatabase;
  let plan: ErasurePlan;
  let clock: FixedClock;
  const storedPlan = async () =>
    t.db
      .selectFrom('privacykit_erasure_plans')
      .select(['plan', 'identities_purged_at', 'hmac_key', 'seed'])
      .where('id', '=', plan.id)
      .executeTakeFirstOrThrow();
  const deliverAll = () => deliverPending({ db: t.db, clock, send: async () => ({ received: true }) });

  beforeEach(async () => {
    t = await createTestDatabase(engine);
    await seedHost(t.db);
    clock = fixedClock('2025-06-01T12:00:00.000Z');
    plan = await planErasure({
      db: t.db,
      dataMap,
      policy,
      identities: ada,
      clock,
      strategies,
      facts,
      requestId: 'req-1',
      subjectId: 'subj-ada',
    });
  });
  afterEach(async () => {
    await t.destroy();
  });

  it('removes the identities from the plan record and the delivered notices, keeping the proof of the erasure', async () => {
    await executeErasure(plan, { db: t.db, clock });
    expect(await deliverAll()).toMatchObject({ delivered: 3 });
    const verification = await verifyErasure({ db: t.db, plan, clock });
    expect(verification.ok).toBe(true);
    const before = await getErasureRecord({ db: t.db, planId: plan.id });
    expect(JSON.stringify((await storedPlan()).plan)).toMatch(adaEmail);

    clock.advance(1000);
    const record = await purgeErasureIdentities({ db: t.db, planId: plan.id, clock });
    expect(record.identitiesPurgedAt).toBe('2025-06-01T12:00:01.000Z');

    // The stored row: no identities left, in the plan or anywhere in the package's tables.
    const stored = await storedPlan();
    expect(JSON.parse(String(stored.plan)).identities).toEqual({});
    expect(stored.identities_purged_at).toBe('2025-06-01T12:00:01.000Z');
    for (const table of erasureTables) {
      const rows = await t.db.selectFrom(table).selectAll().execute();
      expect(JSON.stringify(rows), table).not.toMatch(adaEmail);
    }
    const notices = await listNotifications({ db: t.db, planId: plan.id });
    expect(notices.map((n) => n.notification.identities)).toEqual([{}, {}, {}]);
    expect(notices.every((n) => n.status === 'delivered' && n.receipt !== undefined)).toBe(true);

    // What proves the erasure is still there: plan summary, report, verification, timestamps.
    expect(record.plan.summary).toEqual(before.plan.summary);
    expect(record.plan.tables).toEqual(before.plan.tables);
    expect(record.plan.requestId).toBe('req-1');
    expect(record.status).toBe('partial');
    expect(record.completedAt).toBe(before.completedAt);
    expect(record.report).toEqual(before.report);
    expect(record.verification).toEqual(verification);
    const restrictions = await t.db.selectFrom('privacykit_erasure_restrictions').select('row_key').execute();
    expect(restrictions).toHaveLength(3);

    // Purging again changes nothing.
    clock.advance(1000);
    expect(await purgeErasureIdentities({ db: t.db, planId: plan.id, clock })).toEqual(record);
  });

  it('two erasures of the same person, one after the other: both verify and both purge, whichever restricted the rows both keep', async () => {
    await executeErasure(plan, { db: t.db, clock });
    // A second request of the same person, planned and executed after the first: it restricts
    // the kept invoices under its own id. The first could then never verify ("kept but not
    // restricted") nor purge its identities and key.
    const second = await planErasure({
      db: t.db,
      dataMap,
      policy,
      identities: { email: ['ada@example.com'] },
      clock,
      strategies,
      facts,
      requestId: 'req-2',
    });
    await executeErasure(second, { db: t.db, clock });
    await deliverAll();
    for (const each of [plan, second]) {
      const verification = await verifyErasure({ db: t.db, plan: each, clock });
      expect(verification.leftovers, each.requestId).toEqual([]);
      expect(verification.ok).toBe(true);
    }
    for (const each of [plan, second]) {
      const purged = await purgeErasureIdentities({ db: t.db, planId: each.id, clock });
      expect(purged.plan.identities).toEqual({});
    }
  });

  it("destroys the plan's HMAC key and seed (a guessed identity can no longer be turned into the pseudonym left in the kept rows) and drops the consent subject id", async () => {
    const shredded: string[] = [];
    const report = await executeErasure(plan, {
      db: t.db,
      clock,
      keyShredder: { shredSubject: async (subjectId) => void shredded.push(subjectId) },
    });
    expect(report.shredding).toMatchObject({ subjectId: 'subj-ada', status: 'shredded' });
    await deliverAll();
    expect((await verifyErasure({ db: t.db, plan, clock })).ok).toBe(true);
    const secretsOf = async () =>
      t.db
        .selectFrom('privacykit_erasure_plans')
        .select(['hmac_key', 'seed'])
        .where('id', '=', plan.id)
        .executeTakeFirstOrThrow();
    const pseudonyms = async () =>
      (
        await t.db.selectFrom('logs').select('email').where('id', '>=', 5000).where('id', '<', 6000).execute()
      ).map((row) => String(row.email));
    const pseudonymOf = (secrets: ErasureSecrets, email: string) =>
      maskValue(email, { strategy: 'hmac' }, { secrets, table: 'logs', column: 'email', key: '5000' });

    // Before the purge, anyone reading the plan's record can test a guess against the kept logs.
    const before = await secretsOf();
    const kept = await pseudonyms();
    expect(kept).toHaveLength(5);
    expect(kept).not.toContain('ada@example.com');
    expect(kept).toContain(pseudonymOf({ hmacKey: before.hmac_key, seed: before.seed }, 'ada@example.com'));

    await purgeErasureIdentities({ db: t.db, planId: plan.id, clock });
    const after = await secretsOf();
    expect(after).toEqual({ hmac_key: '', seed: '' });
    expect(kept).not.toContain(pseudonymOf({ hmacKey: after.hmac_key, seed: after.seed }, 'ada@example.com'));
    for (const table of erasureTables) {
      const rows = JSON.stringify(await t.db.selectFrom(table).selectAll().execute());
      expect(rows, table).not.toContain(before.hmac_key);
      expect(rows, table).not.toContain(before.seed);
    }
    // The kept rows themselves are untouched: still masked, still restricted.
    expect(await pseudonyms()).toEqual(kept);

    // The consent-ledger subject id (often derived from an email) goes too; the shredding's proof stays.
    expect(shredded).toEqual(['subj-ada']);
    const record = await getErasureRecord({ db: t.db, planId: plan.id });
    expect(record.plan.subjectId).toBeUndefined();
    expect(record.shreddedAt).toBe('2025-06-01T12:00:00.000Z');
    expect((record.report as ErasureReport).shredding).toEqual({
      status: 'shredded',
      at: '2025-06-01T12:00:00.000Z',
    });
    for (const table of erasureTables) {
      const rows = JSON.stringify(await t.db.selectFrom(table).selectAll().execute());
      expect(rows, table).not.toContain('subj-ada');
    }
  });

  it('is refused until the plan is executed, verified clean and its notices delivered, and writes nothing', async () => {
    const code = async () =>
      (
        (await failure(() => purgeErasureIdentities({ db: t.db, planId: plan.id, clock }))) as {
          code?: string;
        }
      )?.code;
    const unpurged = async () => {
      const stored = await storedPlan();
      expect(stored.identities_purged_at).toBeNull();
      expect(JSON.parse(String(stored.plan)).identities).toEqual(plan.identities);
      // A refused purge keeps the secrets a resumed execution or a new verification needs.
      expect(stored.hmac_key).toHaveLength(43);
      expect(stored.seed).toHaveLength(43);
    };

    expect(await code()).toBe('erasure/not-verified'); // only planned
    await unpurged();
    await executeErasure(plan, { db: t.db, clock });
    expect(await code()).toBe('erasure/not-verified'); // executed, never verified
    await unpurged();

    // A verification that found leftovers does not count.
    await t.db
      .insertInto('orders')
      .values({ id: 13, customer_id: 1, total: '1.00', placed_at: '2025-05-31T10:00:00.000Z' })
      .execute();
    expect((await verifyErasure({ db: t.db, plan, clock })).ok).toBe(false);
    expect(await code()).toBe('erasure/not-verified');
    await unpurged();
    await t.db.deleteFrom('orders').where('id', '=', 13).execute();
    expect((await verifyErasure({ db: t.db, plan, clock })).ok).toBe(true);

    // The recipients still need the identities to find the subject's data (Art 19).
    const pending = await failure(() => purgeErasureIdentities({ db: t.db, planId: plan.id, clock }));
    expect(isPrivacyKitError(pending, 'erasure/notifications-pending')).toBe(true);
    expect((pending as { details: { notifications: unknown[] } }).details.notifications).toHaveLength(3);
    await unpurged();
    expect((await listNotifications({ db: t.db, planId: plan.id }))[0]!.notification.identities).toEqual(
      plan.identities,
    );

    await deliverAll();
    const record = await purgeErasureIdentities({ db: t.db, planId: plan.id, clock });
    expect(record.plan.identities).toEqual({});
    expect(await code()).toBeUndefined();
  });

  it('after the purge, verification and execution fail with erasure/identities-purged instead of finding nothing', async () => {
    await executeErasure(plan, { db: t.db, clock });
    await deliverAll();
    await verifyErasure({ db: t.db, plan, clock });
    const record = await purgeErasureIdentities({ db: t.db, planId: plan.id, clock });

    // Whether the caller still holds the plan with its identities or reads the purged one.
    for (const candidate of [plan, record.plan]) {
      const verify = await failure(() => verifyErasure({ db: t.db, plan: candidate, clock }));
      expect(isPrivacyKitError(verify, 'erasure/identities-purged')).toBe(true);
      const execute = await failure(() => executeErasure(candidate, { db: t.db, clock }));
      expect(isPrivacyKitError(execute, 'erasure/identities-purged')).toBe(true);
    }
    // The stored proof is untouched by the refused calls.
    expect(await getErasureRecord({ db: t.db, planId: plan.id })).toEqual(record);
  });

  // SQLite only: better-sqlite3 waits for a lock on the thread (the other engines' drivers do not).
  it.runIf(engine.engine === 'sqlite')(
    'waits for a write transaction another connection of the same process holds across an await, then purges, without waiting out the busy timeout',
    async () => {
      await executeErasure(plan, { db: t.db, clock });
      await deliverAll();
      expect((await verifyErasure({ db: t.db, plan, clock })).ok).toBe(true);
      // The application's own connection to the same file.
      const other = await openDatabase(t.url);
      try {
        let holding!: () => void;
        const held = new Promise<void>((resolve) => {
          holding = resolve;
        });
        const order: string[] = [];
        const write = writeTransaction(other, async (trx) => {
          await trx
            .insertInto('audit_trail')
            .values({ email: 'bob@example.com', action: 'settings-changed' })
            .execute();
          holding();
          await new Promise((resolve) => setTimeout(resolve, 300));
        }).then(
          () => void order.push('application committed'),
          (error: unknown) => error,
        );
        await held;
        clock.advance(1000);
        const start = performance.now();
        const purge = purgeErasureIdentities({ db: t.db, planId: plan.id, clock }).then(
          (record) => {
            order.push('purged');
            return { record, error: undefined };
          },
          (error: unknown) => ({ record: undefined, error }),
        );
        const [written, { record, error }] = await Promise.all([write, purge]);
        const waited = performance.now() - start;
        expect(written).toBeUndefined();
        expect(error).toBeUndefined();
        // Before, the purge slept in SQLite's busy handler on the thread while the other
        // connection waited for that thread to commit: 10 s, then "database is locked".
        expect(waited).toBeLessThan(5000);
        expect(order).toEqual(['application committed', 'purged']);

        expect(record?.identitiesPurgedAt).toBe('2025-06-01T12:00:01.000Z');
        const stored = await storedPlan();
        expect(JSON.parse(String(stored.plan)).identities).toEqual({});
        expect(stored).toMatchObject({ hmac_key: '', seed: '' });
        const notices = await listNotifications({ db: t.db, planId: plan.id });
        expect(notices.map((n) => n.notification.identities)).toEqual([{}, {}, {}]);
        expect(
          await t.db.selectFrom('audit_trail').selectAll().where('action', '=', 'settings-changed').execute(),
        ).toEqual([{ email: 'bob@example.com', action: 'settings-changed' }]);
      } finally {
        await other.destroy();
      }
    },
  );
});
