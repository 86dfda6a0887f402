import { fileURLToPath } from 'node:url';
import { fixedClock } from '@privacykit/core';
import { migrate, openDatabase } from '@privacykit/core/db';
import { createTestDatabase, lockWaiters, settled, startWorker, testEngines } from '@privacykit/core/testing';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createRetentionEngine } from './engine.js';
import { CRASH_TODAY, crashSchedules, seedCrashWorld } from './fixtures/crash-world.js';
import { worldDataMap } from './fixtures/world.js';
import { retentionMigrations } from './migrations.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

/** A worker in its own process (`src/fixtures/<script>`): see `startWorker` in core's testing helpers. */
const worker = (script: string, args: readonly string[]) =>
  startWorker(fileURLToPath(new URL(`./fixtures/${script}`, import.meta.url)), args, { cwd: packageDir });

describe.each(testEngines())('legal holds worked from two processes at once on $engine', (engine) => {
  it('releasing one hold twice at once: one release is recorded, the other gets retention/hold-already-released', async () => {
    const database = await createTestDatabase(engine);
    try {
      await migrate(database.db, [retentionMigrations]);
      // Row holds name rows that exist.
      await seedCrashWorld(database.db, 30, { notes: true });
      const retention = createRetentionEngine({
        db: database.db,
        schedule: crashSchedules.children,
        dataMap: worldDataMap,
        clock: fixedClock(CRASH_TODAY),
      });
      const ids: string[] = [];
      for (let key = 1; key <= 30; key++) {
        const hold = await retention.placeHold({
          scope: { table: 'prospects', key },
          reason: 'claim',
          placedBy: 'legal',
        });
        ids.push(hold.id);
      }
      const workers = ['ann', 'bob'].map((label) =>
        worker('hold-releaser.ts', [database.url, label, ...ids]),
      );
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.go();
      const [ann, bob] = await Promise.all(workers.map((w) => w.outcomes));

      const stored = new Map((await retention.holds()).map((hold) => [hold.id, hold]));
      for (const [index, id] of ids.entries()) {
        const answers = [ann![index], bob![index]];
        // Both "released" would mean one release overwrote the other's record (who, why).
        expect(
          answers.filter((answer) => answer === 'ok'),
          id,
        ).toHaveLength(1);
        expect(
          answers.filter((answer) => answer !== 'ok'),
          id,
        ).toEqual(['retention/hold-already-released']);
        const winner = ann![index] === 'ok' ? 'ann' : 'bob';
        expect(stored.get(id)).toMatchObject({
          releasedBy: `legal:${winner}`,
          releaseReason: `${winner} closed the case`,
        });
      }
    } finally {
      await database.destroy();
    }
  }, 120_000);
});

// SQLite runs one writer at a time: a sweep's batch takes the write lock before it reads the
// holds, so a hold is committed either before the batch reads the holds or after it commits.
describe.each(testEngines().filter((engine) => engine.engine !== 'sqlite'))(
  'a legal hold placed while a sweep is in flight on $engine',
  (engine) => {
    it('no row a hold covers is deleted after placeHold has returned', async () => {
      const database = await createTestDatabase(engine);
      const other = await openDatabase(database.url);
      // Its own connections: the pools of the sweep and of legal may both be busy waiting.
      const watcher = await openDatabase(database.url);
      let unblock!: () => void;
      const blocked = new Promise<void>((resolve) => {
        unblock = resolve;
      });
      try {
        const { db } = database;
        await migrate(db, [retentionMigrations]);
        await seedCrashWorld(db, 60);
        const options = {
          schedule: crashSchedules.children,
          dataMap: worldDataMap,
          clock: fixedClock(CRASH_TODAY),
        };
        const sweeper = createRetentionEngine({ db, ...options });
        const legal = createRetentionEngine({ db: other, ...options });
        // Prospects 2 and 10 are due and in the sweep's first batch; 10 has a note (100).
        const due = (await sweeper.dryRun({ sample: 60 })).find(
          (phase) => phase.table === 'prospects' && phase.due > 0,
        );
        expect(due?.sampleKeys).toEqual(expect.arrayContaining(['2', '10']));

        // Someone else's transaction holds the note's row: the sweep's batch, having read the
        // holds and locked its prospects, waits when it deletes the children.
        let locked!: () => void;
        const noteLocked = new Promise<void>((resolve) => {
          locked = resolve;
        });
        const blocker = other.transaction().execute(async (trx) => {
          await trx
            .updateTable('prospect_notes')
            .set({ body: 'being edited' })
            .where('id', '=', 100)
            .execute();
          locked();
          await blocked;
        });
        await noteLocked;
        const q = engine.engine === 'postgres' ? '"' : '`';
        const deleteNotes = `delete from ${q}prospect_notes${q}`;
        const insertHold = `insert into ${q}privacykit_retention_holds${q}`;
        const lockHolds = 'select pg_advisory_xact_lock(';
        const sweep = sweeper.sweep({ batchSize: 50 });
        while ((await lockWaiters(watcher, [deleteNotes])) === 0) await new Promise((r) => setImmediate(r));

        // Legal places a hold on prospect 2 now. Either placeHold waits for the batch in
        // flight (and the batch deletes the row first), or it returns and the row is kept.
        const placing = legal.placeHold({
          scope: { table: 'prospects', key: 2 },
          reason: 'claim',
          placedBy: 'legal',
        });
        const placed = settled(placing);
        while (!placed() && (await lockWaiters(watcher, [insertHold, lockHolds])) === 0)
          await new Promise((r) => setImmediate(r));
        const exists = async () =>
          (await watcher.selectFrom('prospects').select('id').where('id', '=', 2).executeTakeFirst()) !==
          undefined;
        const returnedEarly = placed();
        const existedWhenPlaced = returnedEarly ? await exists() : undefined;
        unblock();
        await blocker;
        await sweep;
        await placing;
        if (returnedEarly) {
          // Returned while the batch was still in flight: the row it saw must still be there.
          expect(await exists()).toBe(existedWhenPlaced);
        } else {
          // Waited for the batch in flight, which was disposing of prospect 2 (due): the hold
          // only counts from then on, so the row is gone and the hold is on record.
          expect(await exists()).toBe(false);
        }
        expect((await sweeper.holds({ active: true })).map((hold) => hold.table)).toEqual(['prospects']);
      } finally {
        unblock();
        await other.destroy();
        await watcher.destroy();
        await database.destroy();
      }
    }, 60_000);
  },
);
