import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executeErasure } from './execute.js';
import type { ErasureReport } from './execute.js';
import { getErasureRecord, planErasure } from './plan.js';
import type { ErasurePlan } from './plan.js';
import { ada, dataMap, dumpHost, facts, policy, seedHost, strategies } from './testing-fixtures.js';
import { verifyErasure } from './verify.js';

const start = '2025-06-01T12:00:00.000Z';
const clock = fixedClock(start);
const secrets = { hmacKey: 'k'.repeat(43), seed: 's'.repeat(43) };
const base = { dataMap, policy, identities: ada, clock, strategies, facts, secrets };
const batches = { batchSize: 2, setBasedBatchSize: 2 };
const crashingExecutor = fileURLToPath(new URL('../test/crashing-executor.ts', import.meta.url));

/** Runs the crashing executor in its own process; resolves once it has killed itself mid-run. */
function crashAfterFirstBatch(url: string, planId: string, leaseMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', crashingExecutor, url, planId, start, String(leaseMs)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      signal === 'SIGKILL' ? resolve(out) : reject(new Error(`executor exited ${code}: ${err}`)),
    );
  });
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
