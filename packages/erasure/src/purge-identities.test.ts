import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import type { FixedClock } from '@privacykit/core';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executeErasure } from './execute.js';
import { deliverPending, listNotifications } from './outbox.js';
import { getErasureRecord, planErasure } from './plan.js';
import type { ErasurePlan } from './plan.js';
import { purgeErasureIdentities } from './purge-identities.js';
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
      .select(['plan', 'identities_purged_at'])
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
});
