import { fileURLToPath } from 'node:url';
import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { createTestDatabase, runScript, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executeErasure } from './execute.js';
import type { ErasureReport } from './execute.js';
import { deliverPending } from './outbox.js';
import { claimPlanLease } from './plan-lease.js';
import { getErasureRecord, planErasure } from './plan.js';
import type { ErasurePlan } from './plan.js';
import { purgeErasureIdentities } from './purge-identities.js';
import {
  ada,
  applicationWrites,
  dataMap,
  dumpBob,
  dumpHost,
  facts,
  holdWriteLock,
  policy,
  seedHost,
  strategies,
} from './testing-fixtures.js';
import { verifyErasure } from './verify.js';

const start = '2025-06-01T12:00:00.000Z';
const clock = fixedClock(start);
const secrets = { hmacKey: 'k'.repeat(43), seed: 's'.repeat(43) };
const base = { dataMap, policy, identities: ada, clock, strategies, facts, secrets };
const batches = { batchSize: 2, setBasedBatchSize: 2 };
const crashingExecutor = fileURLToPath(new URL('../test/crashing-executor.ts', import.meta.url));

/** Runs the crashing executor in its own process; resolves once it has killed itself mid-run. */
async function crashAfterFirstBatch(url: string, planId: string, leaseMs: number): Promise<string> {
  const run = await runScript(crashingExecutor, [url, planId, start, String(leaseMs)]);
  if (run.signal !== 'SIGKILL') throw new Error(`executor exited ${run.code}: ${run.err}`);
  return run.out;
}

/** What the execution has written so far: the host rows and the plan's progress. */
async function written(db: Kysely<any>) {
  const progress = await db
    .selectFrom('privacykit_erasure_progress')
    .select(['table_name', 'status', 'last_key', 'deleted', 'updated', 'restricted'])
    .orderBy('table_name')
    .execute();
  const restrictions = await db
    .selectFrom('privacykit_erasure_restrictions')
    .select(['table_name', 'row_key'])
    .orderBy('table_name')
    .orderBy('row_key')
    .execute();
  const plan = await db
    .selectFrom('privacykit_erasure_plans')
    .select(['status', 'report', 'completed_at'])
    .executeTakeFirstOrThrow();
  return { host: await dumpHost(db), progress, restrictions, plan };
}

/** Settles to the report or the error, so two runs can be raced without an unhandled rejection. */
function outcome(run: Promise<ErasureReport>): Promise<{ report?: ErasureReport; error?: unknown }> {
  return run.then(
    (report) => ({ report }),
    (error: unknown) => ({ error }),
  );
}

describe.each(testEngines())('one executor at a time on $engine', (engine) => {
  let t: TestDatabase;
  let second: Kysely<any>;
  let plan: ErasurePlan;
  beforeEach(async () => {
    t = await createTestDatabase(engine);
    await seedHost(t.db, { adaLogs: 9 });
    // Another worker: its own kysely instance and connections to the same database.
    second = await openDatabase(t.url);
    plan = await planErasure({ db: t.db, ...base });
  });
  afterEach(async () => {
    await second.destroy();
    await t.destroy();
  });

  it('two workers executing the same plan at once: one runs it all, the other gets erasure/plan-locked and writes nothing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const wrote = new Set<string>();
    const worker = (db: Kysely<any>, name: string) =>
      executeErasure(plan, {
        db,
        clock,
        ...batches,
        onBatch: async () => {
          wrote.add(name);
          // Both writing means the lock failed: stop parking so the test fails on the results.
          if (wrote.size > 1) release();
          await gate;
        },
      });
    const runs = [outcome(worker(t.db, 'a')), outcome(worker(second, 'b'))];
    // The winner parks after its first batch, holding the lease: the loser settles first.
    const loser = await Promise.race(runs);
    expect(isPrivacyKitError(loser.error, 'erasure/plan-locked')).toBe(true);
    release();
    const results = await Promise.all(runs);
    const reports = results.flatMap((r) => (r.report ? [r.report] : []));
    expect(reports).toHaveLength(1);
    expect(wrote.size).toBe(1);

    // The winner did every change of the plan itself.
    const report = reports[0]!;
    expect(report.status).toBe('partial');
    const tables = Object.fromEntries(report.tables.map((r) => [r.table, r]));
    expect(tables.order_lines).toMatchObject({ status: 'done', deleted: 4 });
    expect(tables.orders).toMatchObject({ status: 'done', deleted: 3 });
    expect(tables.logs).toMatchObject({ status: 'done', updated: 9 });
    expect(tables.invoices).toMatchObject({ status: 'done', restricted: 2 });
    expect((await verifyErasure({ db: t.db, plan, clock })).ok).toBe(true);

    // The lease is released at the end: the other worker may run the plan again (a no-op).
    const again = await executeErasure(plan, { db: second, clock });
    expect(again.changes).toBe(0);
  });

  it("a crashed worker's plan is locked until its lease expires, then taken over and resumed where it stopped", async () => {
    const reference = await createTestDatabase(engine);
    try {
      await seedHost(reference.db, { adaLogs: 9 });
      const referencePlan = await planErasure({ db: reference.db, ...base });
      const full = await executeErasure(referencePlan, { db: reference.db, clock, ...batches });

      const leaseMs = 60_000;
      expect(await crashAfterFirstBatch(t.url, plan.id, leaseMs)).toBe('batch\n');
      expect((await getErasureRecord({ db: t.db, planId: plan.id })).status).toBe('executing');
      const afterCrash = await written(t.db);

      // Still within the dead worker's lease: refused, nothing written.
      const early = fixedClock(new Date(Date.parse(start) + leaseMs - 1));
      const locked = await executeErasure(plan, { db: second, clock: early, leaseMs, ...batches }).catch(
        (error: unknown) => error,
      );
      expect(isPrivacyKitError(locked, 'erasure/plan-locked')).toBe(true);
      expect(await written(t.db)).toEqual(afterCrash);

      // Expired: the next worker takes over and finishes from the last committed batch.
      const late = fixedClock(new Date(Date.parse(start) + leaseMs));
      const resumed = await executeErasure(plan, { db: second, clock: late, leaseMs, ...batches });
      expect(resumed.status).toBe('partial');
      expect(resumed.changes).toBeGreaterThan(0);
      expect(resumed.changes).toBeLessThan(full.changes);
      expect(await dumpHost(t.db)).toEqual(await dumpHost(reference.db));
      expect((await verifyErasure({ db: t.db, plan, clock: late })).ok).toBe(true);
    } finally {
      await reference.destroy();
    }
  });

  it('a worker that stalled past its lease is fenced out: it stops with erasure/lease-lost and writes nothing more', async () => {
    const leaseMs = 60_000;
    let parked!: () => void;
    const isParked = new Promise<void>((resolve) => {
      parked = resolve;
    });
    let wake!: () => void;
    const stalled = new Promise<void>((resolve) => {
      wake = resolve;
    });
    let calls = 0;
    const slow = outcome(
      executeErasure(plan, {
        db: t.db,
        clock: fixedClock(start),
        leaseMs,
        ...batches,
        onBatch: async () => {
          if (++calls > 1) return;
          parked();
          await stalled;
        },
      }),
    );
    await isParked;

    const late = fixedClock(new Date(Date.parse(start) + leaseMs));
    const takeover = await executeErasure(plan, { db: second, clock: late, leaseMs, ...batches });
    expect(takeover.status).toBe('partial');
    const done = await written(t.db);

    wake();
    const { error } = await slow;
    expect(isPrivacyKitError(error, 'erasure/lease-lost')).toBe(true);
    expect(calls).toBe(1);
    expect(await written(t.db)).toEqual(done);
    expect((await verifyErasure({ db: t.db, plan, clock: late })).ok).toBe(true);
  });
});

/** A promise to park a worker on, and the function that lets it go on. */
function latch(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** The verification stored with the plan (`null` when none was stored). */
async function storedVerification(db: Kysely<any>, planId: string): Promise<unknown> {
  const row = await db
    .selectFrom('privacykit_erasure_plans')
    .select('verification')
    .where('id', '=', planId)
    .executeTakeFirstOrThrow();
  return row.verification === null ? null : JSON.parse(String(row.verification));
}

describe.each(testEngines())('verification and execution exclude each other on $engine', (engine) => {
  let t: TestDatabase;
  let second: Kysely<any>;
  let plan: ErasurePlan;
  beforeEach(async () => {
    t = await createTestDatabase(engine);
    await seedHost(t.db, { adaLogs: 9 });
    // Another worker: its own kysely instance and connections to the same database.
    second = await openDatabase(t.url);
    plan = await planErasure({ db: t.db, ...base });
  });
  afterEach(async () => {
    await second.destroy();
    await t.destroy();
  });

  it('a verification while another worker executes the plan is refused with erasure/plan-locked and stores nothing', async () => {
    const parked = latch();
    const go = latch();
    let committed = 0;
    const execution = outcome(
      executeErasure(plan, {
        db: t.db,
        clock,
        ...batches,
        onBatch: async () => {
          if (++committed > 1) return;
          parked.open();
          await go.wait;
        },
      }),
    );
    await parked.wait;

    // Half executed: a verification now would record leftovers that are about to go (or,
    // racing the batches, a mix of two states of the rows).
    const refused = await verifyErasure({ db: second, plan, clock }).catch((error: unknown) => error);
    expect(isPrivacyKitError(refused, 'erasure/plan-locked')).toBe(true);
    expect((refused as { details: { heldFor: string } }).details.heldFor).toBe('execution');
    expect((refused as Error).message).toMatch(/being executed by another worker/);
    expect(await storedVerification(t.db, plan.id)).toBeNull();
    expect((await getErasureRecord({ db: second, planId: plan.id })).lease).toMatchObject({
      heldFor: 'execution',
    });

    go.open();
    const { report } = await execution;
    expect(report?.status).toBe('partial');
    expect(committed).toBeGreaterThan(1);
    const verification = await verifyErasure({ db: second, plan, clock });
    expect(verification.ok).toBe(true);
    expect(await storedVerification(t.db, plan.id)).toEqual(verification);
    expect((await getErasureRecord({ db: t.db, planId: plan.id })).lease).toBeUndefined();
  });

  it('an execution started while a verification runs is refused with erasure/plan-locked and changes nothing; the verification is stored as it found the rows', async () => {
    const before = await dumpHost(t.db);
    const parked = latch();
    const go = latch();
    const checked: string[] = [];
    const verifying = verifyErasure({
      db: t.db,
      plan,
      clock,
      onTable: async ({ table }) => {
        checked.push(table);
        if (checked.length > 1) return;
        parked.open();
        await go.wait;
      },
    }).then(
      (verification) => ({ verification, error: undefined }),
      (error: unknown) => ({ verification: undefined, error }),
    );
    await parked.wait;
    expect((await getErasureRecord({ db: second, planId: plan.id })).lease).toMatchObject({
      heldFor: 'verification',
    });

    const refused = await executeErasure(plan, { db: second, clock, ...batches }).catch(
      (error: unknown) => error,
    );
    expect(isPrivacyKitError(refused, 'erasure/plan-locked')).toBe(true);
    expect((refused as { details: { heldFor: string } }).details.heldFor).toBe('verification');
    expect((refused as Error).message).toMatch(/being verified by another worker/);
    expect(await dumpHost(t.db)).toEqual(before);
    expect((await getErasureRecord({ db: t.db, planId: plan.id })).status).toBe('planned');

    go.open();
    const { verification, error } = await verifying;
    expect(error).toBeUndefined();
    // Nothing was erased while it read: every one of Ada's rows is a leftover, none masked.
    expect(verification?.ok).toBe(false);
    expect(verification?.tables.orders).toEqual({ found: 3, retained: 0, masked: 0 });
    expect(verification?.tables.logs).toEqual({ found: 9, retained: 0, masked: 0 });
    expect(checked).toEqual(plan.tables.map((table) => table.table));
    expect(await storedVerification(t.db, plan.id)).toEqual(verification);

    // Released at the end: the execution runs now, and a new verification proves it.
    expect((await executeErasure(plan, { db: second, clock, ...batches })).status).toBe('partial');
    expect((await verifyErasure({ db: second, plan, clock })).ok).toBe(true);
  });

  it('a verifier that stalled past its lease is fenced out: it stops with erasure/lease-lost and its stale result is not stored', async () => {
    const leaseMs = 60_000;
    const parked = latch();
    const go = latch();
    let calls = 0;
    const stalled = verifyErasure({
      db: t.db,
      plan,
      clock: fixedClock(start),
      leaseMs,
      onTable: async () => {
        if (++calls > 1) return;
        parked.open();
        await go.wait;
      },
    }).catch((error: unknown) => error);
    await parked.wait;

    // Its lease has expired: an execution takes the plan over and erases everything planned.
    const late = fixedClock(new Date(Date.parse(start) + leaseMs));
    expect((await executeErasure(plan, { db: second, clock: late, leaseMs, ...batches })).status).toBe(
      'partial',
    );
    go.open();
    const error = await stalled;
    expect(isPrivacyKitError(error, 'erasure/lease-lost')).toBe(true);
    expect((error as Error).message).toMatch(/verification was not stored|verification stopped/);
    // Its counts were of the rows before the execution: storing them would "prove" leftovers
    // that are gone (or, the other way round, a clean erasure of a plan changed since).
    expect(calls).toBe(1);
    expect(await storedVerification(t.db, plan.id)).toBeNull();
    expect((await verifyErasure({ db: second, plan, clock: late })).ok).toBe(true);
  });

  it('while a verification runs, a second verification and the purge of the identities wait their turn', async () => {
    await executeErasure(plan, { db: t.db, clock });
    await deliverPending({ db: t.db, clock, send: async () => ({ received: true }) });
    const parked = latch();
    const go = latch();
    let calls = 0;
    const first = verifyErasure({
      db: t.db,
      plan,
      clock,
      onTable: async () => {
        if (++calls > 1) return;
        parked.open();
        await go.wait;
      },
    });
    await parked.wait;

    const again = await verifyErasure({ db: second, plan, clock }).catch((error: unknown) => error);
    expect(isPrivacyKitError(again, 'erasure/plan-locked')).toBe(true);
    // Not verified yet: the purge is refused as "not verified" before the lease is looked at.
    const early = await purgeErasureIdentities({ db: second, planId: plan.id, clock }).catch(
      (error: unknown) => error,
    );
    expect(isPrivacyKitError(early, 'erasure/not-verified')).toBe(true);

    go.open();
    expect((await first).ok).toBe(true);

    // A second verification of a verified plan: the purge waits for it too.
    const parkedAgain = latch();
    const goAgain = latch();
    let callsAgain = 0;
    const reverify = verifyErasure({
      db: t.db,
      plan,
      clock,
      onTable: async () => {
        if (++callsAgain > 1) return;
        parkedAgain.open();
        await goAgain.wait;
      },
    });
    await parkedAgain.wait;
    const locked = await purgeErasureIdentities({ db: second, planId: plan.id, clock }).catch(
      (error: unknown) => error,
    );
    expect(isPrivacyKitError(locked, 'erasure/plan-locked')).toBe(true);
    expect((locked as { details: { heldFor: string } }).details.heldFor).toBe('verification');
    expect((await getErasureRecord({ db: t.db, planId: plan.id })).identitiesPurgedAt).toBeUndefined();
    goAgain.open();
    expect((await reverify).ok).toBe(true);
    const purged = await purgeErasureIdentities({ db: second, planId: plan.id, clock });
    expect(purged.plan.identities).toEqual({});
  });

  it('refuses a lease that is not a positive integer before touching the plan', async () => {
    for (const leaseMs of [0, -1, 1.5]) {
      const error = await verifyErasure({ db: t.db, plan, clock, leaseMs }).catch((e: unknown) => e);
      expect(isPrivacyKitError(error, 'erasure/invalid-input')).toBe(true);
    }
    expect((await getErasureRecord({ db: t.db, planId: plan.id })).lease).toBeUndefined();
  });

  it('runs and verifies only the stored plan: one edited to name someone else is refused, and nothing changes', async () => {
    const before = await dumpBob(t.db);
    // A plan file reviewed for Ada, edited to name Bob (or stale): it ran as given, against Ada's
    // plan record — Bob erased, and his invoice kept under Art 17(3)(b) deleted.
    const edited = { ...plan, identities: { email: ['bob@example.com'] } };
    const error = await executeErasure(edited, { db: t.db, clock }).catch((e: unknown) => e);
    expect(isPrivacyKitError(error, 'erasure/invalid-input')).toBe(true);
    expect(String((error as Error).message)).toContain('differs from the stored plan');
    const dropped = { ...plan, tables: plan.tables.filter((table) => table.table !== 'invoices') };
    expect(
      isPrivacyKitError(
        await executeErasure(dropped, { db: t.db, clock }).catch((e: unknown) => e),
        'erasure/invalid-input',
      ),
    ).toBe(true);
    expect(
      isPrivacyKitError(
        await verifyErasure({ db: t.db, plan: edited, clock }).catch((e: unknown) => e),
        'erasure/invalid-input',
      ),
    ).toBe(true);
    expect(await dumpBob(t.db)).toEqual(before);
    expect((await getErasureRecord({ db: t.db, planId: plan.id })).status).toBe('planned');
    // The stored plan itself, as read back, runs.
    const stored = (await getErasureRecord({ db: t.db, planId: plan.id })).plan;
    expect((await executeErasure(stored, { db: t.db, clock })).changes).toBeGreaterThan(0);
    expect(await dumpBob(t.db)).toEqual(before);
  });

  it('refuses page and batch sizes that are not positive integers before touching the plan, then erases with good ones', async () => {
    // Before: batchSize 0 marked every table done with nothing erased (and a re-run could not
    // recover), setBasedBatchSize 0 never returned, and a verification with batchSize 0 passed
    // having looked at nothing.
    const bad = [{ batchSize: 0 }, { batchSize: 2.5 }, { setBasedBatchSize: 0 }, { setBasedBatchSize: -1 }];
    for (const option of bad) {
      const error = await executeErasure(plan, { db: t.db, clock, ...option }).catch((e: unknown) => e);
      expect(isPrivacyKitError(error, 'erasure/invalid-input'), JSON.stringify(option)).toBe(true);
    }
    const error = await verifyErasure({ db: t.db, plan, clock, batchSize: 0 }).catch((e: unknown) => e);
    expect(isPrivacyKitError(error, 'erasure/invalid-input')).toBe(true);
    const record = await getErasureRecord({ db: t.db, planId: plan.id });
    expect(record.lease).toBeUndefined();
    expect(record.status).toBe('planned');
    const report = await executeErasure(plan, { db: t.db, clock, batchSize: 1, setBasedBatchSize: 1 });
    expect(report.changes).toBeGreaterThan(0);
    expect((await verifyErasure({ db: t.db, plan, clock, batchSize: 1 })).ok).toBe(true);
  });
});

// SQLite only: better-sqlite3 waits for a lock on the thread (the other engines' drivers do not).
describe.each(testEngines().filter((engine) => engine.engine === 'sqlite'))(
  'a write lock held by another connection of the same process on $engine',
  (engine) => {
    let t: TestDatabase;
    let host: Kysely<any>;
    let plan: ErasurePlan;
    beforeEach(async () => {
      t = await createTestDatabase(engine);
      await seedHost(t.db, { adaLogs: 9 });
      // The application's own connection to the same file, beside the one erasure runs on.
      host = await openDatabase(t.url);
      plan = await planErasure({ db: t.db, ...base });
    });
    afterEach(async () => {
      await host.destroy();
      await t.destroy();
    });

    it("an execution waits for the application's transaction to commit, then finishes the plan, without waiting out the busy timeout", async () => {
      const events: string[] = [];
      let hostWrite: Promise<void> | undefined;
      let heldAt = 0;
      const { report, error } = await outcome(
        executeErasure(plan, {
          db: t.db,
          clock,
          ...batches,
          onBatch: async () => {
            events.push('batch');
            if (hostWrite) return;
            // After the first batch, the application writes in a transaction of its own and holds
            // it across an await: the next batch has to wait for the write lock.
            const holding = latch();
            hostWrite = host.transaction().execute(async (trx) => {
              await trx
                .insertInto('audit_trail')
                .values({ email: 'bob@example.com', action: 'settings-changed' })
                .execute();
              holding.open();
              await new Promise((resolve) => setTimeout(resolve, 300));
            });
            void hostWrite.then(
              () => events.push('application committed'),
              () => undefined,
            );
            await holding.wait;
            heldAt = performance.now();
          },
        }),
      );
      const waited = performance.now() - heldAt;
      await hostWrite;
      expect(error).toBeUndefined();
      // Before, the execution's next transaction slept in SQLite's busy handler on the thread
      // while the application's waited for that thread to commit: 10 s, then "database is locked".
      expect(waited).toBeLessThan(5000);
      // The batches after the first ran once the application had committed.
      expect(events.slice(0, 2)).toEqual(['batch', 'application committed']);
      expect(events.filter((event) => event === 'batch').length).toBeGreaterThan(1);

      expect(report?.failures).toEqual([]);
      expect(report?.status).toBe('partial');
      const tables = Object.fromEntries((report?.tables ?? []).map((r) => [r.table, r]));
      expect(tables.order_lines).toMatchObject({ status: 'done', deleted: 4 });
      expect(tables.orders).toMatchObject({ status: 'done', deleted: 3 });
      expect(tables.logs).toMatchObject({ status: 'done', updated: 9 });
      expect(tables.invoices).toMatchObject({ status: 'done', restricted: 2 });
      expect((await verifyErasure({ db: t.db, plan, clock })).ok).toBe(true);
      expect((await getErasureRecord({ db: t.db, planId: plan.id })).lease).toBeUndefined();
      // The application's write is there too.
      expect(
        await t.db.selectFrom('audit_trail').selectAll().where('action', '=', 'settings-changed').execute(),
      ).toEqual([{ email: 'bob@example.com', action: 'settings-changed' }]);
    });

    it('an execution that starts while the application holds a write transaction claims the plan once it commits, then finishes it, without waiting out the busy timeout', async () => {
      const events: string[] = [];
      const { committed } = await holdWriteLock(host, 'settings-changed');
      const application = committed.then(() => void events.push('application committed'));
      const started = performance.now();
      const { report, error } = await outcome(
        executeErasure(plan, { db: t.db, clock, ...batches, onBatch: () => void events.push('batch') }),
      );
      const took = performance.now() - started;
      await application;
      expect(error).toBeUndefined();
      // Before, the claim's standalone UPDATE slept in SQLite's busy handler on the thread, so the
      // application never committed: 10 s, then "database is locked" before anything ran.
      expect(took).toBeLessThan(5000);
      expect(events[0]).toBe('application committed');
      expect(events.filter((event) => event === 'batch').length).toBeGreaterThan(1);

      expect(report?.failures).toEqual([]);
      expect(report?.status).toBe('partial');
      const tables = Object.fromEntries((report?.tables ?? []).map((r) => [r.table, r]));
      expect(tables.order_lines).toMatchObject({ status: 'done', deleted: 4 });
      expect(tables.orders).toMatchObject({ status: 'done', deleted: 3 });
      expect(tables.logs).toMatchObject({ status: 'done', updated: 9 });
      expect(tables.invoices).toMatchObject({ status: 'done', restricted: 2 });
      expect((await verifyErasure({ db: t.db, plan, clock })).ok).toBe(true);
      expect((await getErasureRecord({ db: t.db, planId: plan.id })).lease).toBeUndefined();
      expect(await applicationWrites(t.db)).toEqual([{ action: 'login' }, { action: 'settings-changed' }]);
    });

    it('a lease renewed while the application holds a write transaction is renewed once it commits, without waiting out the busy timeout', async () => {
      const now = fixedClock(start);
      const lease = await claimPlanLease({ db: t.db, plan, clock: now, leaseMs: 60_000 });
      now.advance(1000);
      const { committed } = await holdWriteLock(host, 'settings-changed');
      let applicationCommitted = false;
      const application = committed.then(() => {
        applicationCommitted = true;
      });
      const started = performance.now();
      await lease.renew();
      const took = performance.now() - started;
      // Before: the renewal's standalone UPDATE, 10 s in the busy handler, "database is locked".
      expect(took).toBeLessThan(5000);
      expect(applicationCommitted).toBe(true);
      await application;
      // Renewed from the advanced clock, and still this worker's: its transactions go on.
      expect((await getErasureRecord({ db: t.db, planId: plan.id })).lease).toEqual({
        heldFor: 'execution',
        expiresAt: '2025-06-01T12:01:01.000Z',
      });
      expect(await lease.transaction(async () => 'fenced')).toBe('fenced');
      await lease.release();
      expect(await applicationWrites(t.db)).toEqual([{ action: 'login' }, { action: 'settings-changed' }]);
    });

    it('a lease released while the application holds a write transaction is released once it commits, without waiting out the busy timeout', async () => {
      const lease = await claimPlanLease({ db: t.db, plan, clock, leaseMs: 60_000 });
      const { committed } = await holdWriteLock(host, 'settings-changed');
      let applicationCommitted = false;
      const application = committed.then(() => {
        applicationCommitted = true;
      });
      const started = performance.now();
      await lease.release();
      const took = performance.now() - started;
      // Before: the release's standalone UPDATE, 10 s in the busy handler, "database is locked"
      // (thrown by an `executeErasure` that had finished the plan, or swallowed on its error path
      // and the plan left locked until the lease expired).
      expect(took).toBeLessThan(5000);
      expect(applicationCommitted).toBe(true);
      await application;
      expect((await getErasureRecord({ db: t.db, planId: plan.id })).lease).toBeUndefined();
      // Free at once: another worker claims it.
      const next = await claimPlanLease({ db: t.db, plan, clock, leaseMs: 60_000 });
      await next.release();
      expect(await applicationWrites(t.db)).toEqual([{ action: 'login' }, { action: 'settings-changed' }]);
    });
  },
);
