import { fileURLToPath } from 'node:url';
import { fixedClock, retentionRuleSchema } from '@privacykit/core';
import { migrate, openDatabase } from '@privacykit/core/db';
import { createTestDatabase, runScript, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRetentionEngine } from './engine.js';
import { CRASH_TODAY, crashSchedules, seedCrashWorld } from './fixtures/crash-world.js';
import type { CrashShape } from './fixtures/crash-world.js';
import { worldDataMap } from './fixtures/world.js';
import { retentionMigrations } from './migrations.js';
import { planRetention } from './plan.js';

const worker = fileURLToPath(new URL('./fixtures/crash-worker.ts', import.meta.url));
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const SIZE = 1000;

/**
 * Runs the worker to completion, or SIGKILLs it at a random point of its sweeps: after
 * `kill.sweeps` budgeted sweeps have returned and `kill.ms` more milliseconds (so the signal
 * lands anywhere, mid-batch included), whatever the machine's speed.
 */
async function runWorker(
  url: string,
  shape: CrashShape,
  kill?: { sweeps: number; ms: number },
): Promise<'done' | 'killed'> {
  let timer: NodeJS.Timeout | undefined;
  const run = await runScript(worker, [url, shape], {
    cwd: packageDir,
    onOutput(out, killNow) {
      if (kill && !timer && (out.match(/^swept$/gm)?.length ?? 0) >= kill.sweeps) {
        timer = setTimeout(killNow, kill.ms);
      }
    },
  });
  if (timer) clearTimeout(timer);
  if (run.signal === 'SIGKILL') return 'killed';
  if (run.code === 0 && run.out.includes('done')) return 'done';
  throw new Error(`worker exited ${run.code}: ${run.err}`);
}

async function expectedDue(db: Kysely<any>, held: Set<number>): Promise<number[]> {
  const rule = retentionRuleSchema.parse(crashSchedules.children[0]?.rule);
  const rows = (await db.selectFrom('prospects').selectAll().orderBy('id').execute()) as {
    id: number;
    created_at: string;
    last_contact_at: string | null;
  }[];
  return rows
    .filter((row) => {
      const due = planRetention(rule, { collectedAt: row.created_at, lastContact: row.last_contact_at })
        .phases[0]?.due;
      return due != null && due <= '2025-03-01' && !held.has(Number(row.id));
    })
    .map((row) => Number(row.id));
}

async function dispositions(db: Kysely<any>, table: string): Promise<string[]> {
  const rows = (await db
    .selectFrom('privacykit_retention_dispositions')
    .select('row_key')
    .where('table_name', '=', table)
    .execute()) as { row_key: string }[];
  return rows.map((row) => row.row_key);
}

describe.each(testEngines())('sweep safety on $engine', (engine) => {
  // Without children SQLite deletes in one statement; elsewhere both shapes take the same path.
  const shapes: CrashShape[] = engine.engine === 'sqlite' ? ['children', 'flat'] : ['children'];
  let database: TestDatabase;
  let db: Kysely<any>;
  beforeEach(async () => {
    database = await createTestDatabase(engine);
    db = database.db;
    await migrate(db, [retentionMigrations]);
  });
  afterEach(async () => {
    await database?.destroy();
  });

  it.each(shapes)(
    'a sweep SIGKILLed at random points and re-run disposes of every due row exactly once, never a held one (%s)',
    async (shape) => {
      await seedCrashWorld(db, SIZE, { notes: shape === 'children' });
      const retention = createRetentionEngine({
        db,
        schedule: crashSchedules[shape],
        dataMap: worldDataMap,
        clock: fixedClock(CRASH_TODAY),
      });
      const heldKeys = [2, 4, 40, 100, 1000];
      for (const key of heldKeys) {
        await retention.placeHold({ scope: { table: 'prospects', key }, reason: 'claim', placedBy: 'legal' });
      }
      await retention.placeHold({
        scope: { subject: { email: ['p6@example.com'] } },
        reason: 'claim',
        placedBy: 'legal',
      });
      // A held note keeps its prospect (and the note) whatever the schedule says.
      if (shape === 'children') {
        await retention.placeHold({
          scope: { table: 'prospect_notes', key: 100 },
          reason: 'claim',
          placedBy: 'legal',
        });
      }
      const held = new Set([...heldKeys, 6, ...(shape === 'children' ? [10] : [])]);
      const due = await expectedDue(db, held);
      expect(due.length).toBeGreaterThan(SIZE / 3);

      const unfinished = async () =>
        (
          await db
            .selectFrom('privacykit_retention_runs')
            .select('id')
            .where('status', '=', 'running')
            .execute()
        ).length;
      let killed = 0;
      // Three kills, and more (up to six) until one has landed inside a sweep: a kill can land
      // between two sweeps, after one finished its run record and before the next wrote its own,
      // and then leaves no interrupted run to check.
      for (let i = 0; i < 6 && (i < 3 || (await unfinished()) === 0); i++) {
        // Early in the work left (which takes some 25 sweeps): a later point let a fast machine
        // finish the whole job first, and the test then had no crash to check.
        const kill = { sweeps: Math.floor(Math.random() * 3), ms: Math.floor(Math.random() * 5) };
        const outcome = await runWorker(database.url, shape, kill);
        if (outcome === 'killed') killed++;
        else break;
      }
      expect(await runWorker(database.url, shape)).toBe('done');

      const done = await dispositions(db, 'prospects');
      expect(done.length).toBe(due.length);
      expect(new Set(done).size).toBe(done.length);
      expect(done.map(Number).sort((a, b) => a - b)).toEqual(due);
      const notes = await dispositions(db, 'prospect_notes');
      expect(new Set(notes).size).toBe(notes.length);
      expect(notes.length).toBe(shape === 'children' ? due.filter((id) => id % 5 === 0).length : 0);
      const remaining = (await db.selectFrom('prospects').select('id').execute()).map((row) =>
        Number(row.id),
      );
      for (const key of held) expect(remaining).toContain(key);
      expect(remaining.length).toBe(SIZE - due.length);
      // Interrupted runs stay unfinished; the finished ones verify.
      const runs = (await db.selectFrom('privacykit_retention_runs').select(['id', 'status']).execute()) as {
        id: string;
        status: string;
      }[];
      expect(killed).toBeGreaterThan(0);
      expect(runs.filter((run) => run.status === 'running').length).toBeGreaterThan(0);
      for (const run of runs.filter((r) => r.status === 'finished')) {
        expect((await retention.verifyCertificate(run.id)).valid).toBe(true);
      }
      // eslint-disable-next-line no-console
      console.info(`${engine.engine} (${shape}): ${killed} kill(s) before completion`);
    },
    120_000,
  );

  it.each(shapes)(
    'two workers sweeping at once dispose of each row exactly once (%s)',
    async (shape) => {
      await seedCrashWorld(db, SIZE, { notes: shape === 'children' });
      const second = await openDatabase(database.url);
      try {
        const clock = fixedClock(CRASH_TODAY);
        const one = createRetentionEngine({ db, schedule: crashSchedules[shape], clock });
        const two = createRetentionEngine({ db: second, schedule: crashSchedules[shape], clock });
        const due = await expectedDue(db, new Set());
        const [a, b] = await Promise.all([one.sweep({ batchSize: 10 }), two.sweep({ batchSize: 10 })]);
        const done = await dispositions(db, 'prospects');
        expect(done.length).toBe(due.length);
        expect(new Set(done).size).toBe(done.length);
        const byRun = (r: typeof a) => r.counts.find((c) => c.outcome === 'done')?.count ?? 0;
        expect(byRun(a) + byRun(b)).toBe(due.length);
        if (engine.engine === 'postgres') {
          // SKIP LOCKED lets both make progress rather than one waiting on the other.
          expect(byRun(a)).toBeGreaterThan(0);
          expect(byRun(b)).toBeGreaterThan(0);
        }
      } finally {
        await second.destroy();
      }
    },
    60_000,
  );
});
