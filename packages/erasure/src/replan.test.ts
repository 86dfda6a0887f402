import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executeErasure } from './execute.js';
import type { HoldLookup } from './hold-source.js';
import { getErasureRecord, planErasure } from './plan.js';
import type { ErasurePlan } from './plan.js';
import { ada, dumpBob, dumpHost, planFixtureErasure } from './testing-fixtures.js';
import { seedHost } from './testing-fixtures.js';
import { verifyErasure } from './verify.js';

const start = '2025-06-01T12:00:00.000Z';
const clock = fixedClock(start);
const later = (ms: number) => fixedClock(new Date(Date.parse(start) + ms).toISOString());

/** The error a call failed with (or `undefined` when it did not fail). */
async function failure(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => undefined,
    (error: unknown) => error,
  );
}

function codeOf(error: unknown): string | undefined {
  return isPrivacyKitError(error) ? error.code : undefined;
}

/** The request's stored plans, oldest first, with their status and replacement. */
function plansOf(db: Kysely<any>, requestId: string) {
  return db
    .selectFrom('privacykit_erasure_plans')
    .select(['id', 'status', 'superseded_by'])
    .where('request_id', '=', requestId)
    .orderBy('id')
    .execute();
}

function progressOf(db: Kysely<any>, planId: string) {
  return db.selectFrom('privacykit_erasure_progress').selectAll().where('plan_id', '=', planId).execute();
}

describe.each(testEngines())('re-planning a request on $engine', (engine) => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await createTestDatabase(engine);
    await seedHost(t.db);
  });
  afterEach(async () => {
    await t.destroy();
  });

  /** Holds on Ada's orders, placed by adding their keys. */
  function orderHolds(): { held: Set<string>; holds: HoldLookup } {
    const held = new Set<string>();
    const holds: HoldLookup = async (table, keys) =>
      table === 'orders'
        ? keys.filter((key) => held.has(key)).map((key) => ({ key, reason: 'dispute #43' }))
        : [];
    return { held, holds };
  }

  it('after a hold placed since planning refused the plan, replacing it keeps the held rows and erases the rest; the old plan is superseded and refused with nothing written', async () => {
    const { held, holds } = orderHolds();
    const first = await planFixtureErasure(t.db, { requestId: 'req-1', subjectId: 'subj-ada', holds });
    held.add('11');
    const refused = await failure(executeErasure(first, { db: t.db, clock, holds }));
    expect(codeOf(refused)).toBe('erasure/held-since-planning');
    // Without `replace`, the request's plan is still the first one.
    expect((await planFixtureErasure(t.db, { requestId: 'req-1', holds })).id).toBe(first.id);

    const second = await planFixtureErasure(t.db, {
      requestId: 'req-1',
      subjectId: 'subj-ada',
      holds,
      replace: true,
      clock: later(60_000),
    });
    expect(second.id).not.toBe(first.id);
    expect(second.tables.find((table) => table.table === 'orders')?.retained).toEqual([
      expect.objectContaining({ source: 'hold', ground: 'legal-claims', rows: 1, sampleKeys: ['11'] }),
    ]);
    const old = await getErasureRecord({ db: t.db, planId: first.id });
    expect(old).toMatchObject({ status: 'superseded', supersededBy: second.id });
    // Never run, so it need not remember who it was about: the new plan does.
    expect(old.plan.identities).toEqual({});
    expect(old.plan.subjectId).toBeUndefined();
    expect((await getErasureRecord({ db: t.db, planId: second.id })).status).toBe('planned');
    // The request's plan is now the new one, with or without `replace`.
    expect((await planFixtureErasure(t.db, { requestId: 'req-1', holds })).id).toBe(second.id);

    // A worker (or a page) still holding the old plan object cannot run or verify it.
    const before = await dumpHost(t.db);
    // One at a time: each call is started only when awaited (no rejection left unhandled meanwhile).
    for (const call of [
      () => executeErasure(first, { db: t.db, clock: later(120_000), holds }),
      () => executeErasure(first, { db: t.db, clock: later(120_000) }),
      () => verifyErasure({ db: t.db, plan: first, clock: later(120_000) }),
    ]) {
      const error = await failure(call());
      expect(codeOf(error)).toBe('erasure/plan-superseded');
      expect((error as { details?: unknown }).details).toMatchObject({ supersededBy: second.id });
    }
    expect(await dumpHost(t.db)).toEqual(before);
    expect(await progressOf(t.db, first.id)).toEqual([]);
    expect(await getErasureRecord({ db: t.db, planId: first.id })).toMatchObject({ status: 'superseded' });
    expect((await getErasureRecord({ db: t.db, planId: first.id })).lease).toBeUndefined();

    const bob = await dumpBob(t.db);
    const report = await executeErasure(second, { db: t.db, clock: later(120_000), holds });
    expect(report.status).toBe('partial');
    const orders = await t.db.selectFrom('orders').select('id').where('customer_id', '=', 1).execute();
    expect(orders.map((row) => Number(row.id))).toEqual([11]);
    const lines = await t.db
      .selectFrom('order_lines')
      .select('id')
      .where('order_id', 'in', [10, 12])
      .execute();
    expect(lines).toEqual([]);
    const logs = await t.db
      .selectFrom('logs')
      .select('ip')
      .where('id', '>=', 5000)
      .where('id', '<', 6000)
      .execute();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.every((row) => !String(row.ip).startsWith('192.0.2.'))).toBe(true);
    expect(await dumpBob(t.db)).toEqual(bob);
    expect((await verifyErasure({ db: t.db, plan: second, clock: later(180_000) })).ok).toBe(true);
  });

  it('a plan that has started, is running or has finished is not replaced: erasure/plan-already-run (or plan-locked while it runs), nothing changed', async () => {
    // Crashed part-way: status `executing`, progress stored, lease released.
    const crashed = await planFixtureErasure(t.db, { requestId: 'req-crashed' });
    let batches = 0;
    await expect(
      executeErasure(crashed, {
        db: t.db,
        clock,
        batchSize: 1,
        setBasedBatchSize: 1,
        onBatch: () => {
          if (++batches === 1) throw new Error('power cut');
        },
      }),
    ).rejects.toThrow('power cut');
    const error = await failure(planFixtureErasure(t.db, { requestId: 'req-crashed', replace: true }));
    expect(codeOf(error)).toBe('erasure/plan-already-run');
    expect(await plansOf(t.db, 'req-crashed')).toEqual([
      { id: crashed.id, status: 'executing', superseded_by: null },
    ]);

    // Finished.
    const bobPlan = await planFixtureErasure(t.db, {
      requestId: 'req-bob',
      identities: { email: ['bob@example.com'] },
    });
    await executeErasure(bobPlan, { db: t.db, clock });
    const finished = await failure(
      planFixtureErasure(t.db, {
        requestId: 'req-bob',
        identities: { email: ['bob@example.com'] },
        replace: true,
      }),
    );
    expect(codeOf(finished)).toBe('erasure/plan-already-run');
    expect(await plansOf(t.db, 'req-bob')).toEqual([
      { id: bobPlan.id, status: 'partial', superseded_by: null },
    ]);

    // Running: asked while the execution holds its lease, from inside its first batch.
    const running = await planFixtureErasure(t.db, { requestId: 'req-running', identities: ada });
    let during: unknown;
    let asked = false;
    await executeErasure(running, {
      db: t.db,
      clock,
      batchSize: 1,
      setBasedBatchSize: 1,
      onBatch: async () => {
        if (asked) return;
        asked = true;
        during = await failure(planFixtureErasure(t.db, { requestId: 'req-running', replace: true }));
      },
    });
    expect(['erasure/plan-locked', 'erasure/plan-already-run']).toContain(codeOf(during));
    expect(await plansOf(t.db, 'req-running')).toEqual([
      { id: running.id, status: 'partial', superseded_by: null },
    ]);
  });

  it('replace without a requestId is refused as invalid input, storing nothing', async () => {
    const error = await failure(planFixtureErasure(t.db, { replace: true }));
    expect(codeOf(error)).toBe('erasure/invalid-input');
    expect((error as Error).message).toContain('replace');
    expect(await t.db.selectFrom('privacykit_erasure_plans').selectAll().execute()).toEqual([]);
  });

  it('a worker whose lease expired before it wrote anything finds its plan replaced and stops with erasure/plan-superseded, writing nothing', async () => {
    const first = await planFixtureErasure(t.db, { requestId: 'req-stall' });
    const before = await dumpHost(t.db);
    let replacement: ErasurePlan | undefined;
    // The execution has its lease (1 s) and checks the holds; meanwhile, 5 s later by the
    // replacing caller's clock, its lease has expired and the plan, never started, is replaced.
    const stalled = await failure(
      executeErasure(first, {
        db: t.db,
        clock,
        leaseMs: 1000,
        holds: async () => {
          replacement ??= await planFixtureErasure(t.db, {
            requestId: 'req-stall',
            replace: true,
            clock: later(5000),
          });
          return [];
        },
      }),
    );
    expect(codeOf(stalled)).toBe('erasure/plan-superseded');
    expect(replacement).toBeDefined();
    expect(await dumpHost(t.db)).toEqual(before);
    expect(await progressOf(t.db, first.id)).toEqual([]);
    expect(await plansOf(t.db, 'req-stall')).toEqual(
      [
        { id: first.id, status: 'superseded', superseded_by: replacement!.id },
        { id: replacement!.id, status: 'planned', superseded_by: null },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );
  });
});
