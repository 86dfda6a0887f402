import { fixedClock } from '@privacykit/core';
import { migrate, openDatabase, writeTransaction } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRetentionEngine } from './engine.js';
import { seedWorld, worldDataMap, worldSchedule } from './fixtures/world.js';
import { retentionMigrations } from './migrations.js';

const TODAY = '2025-03-01T10:00:00.000Z';
const HOLD_MS = 300;

async function ids(db: Kysely<any>, table: string): Promise<number[]> {
  const rows = (await db.selectFrom(table).select('id').orderBy('id').execute()) as { id: number }[];
  return rows.map((row) => Number(row.id));
}

// SQLite only: better-sqlite3 waits for a lock inside SQLite's busy handler, on the thread. A
// retention write waiting there for a lock another connection of the process holds across an
// await would keep that connection from ever committing: both would fail after the 10 s busy
// timeout with "database is locked". The other engines' drivers wait off the thread.
describe.each(testEngines().filter((engine) => engine.engine === 'sqlite'))(
  'retention on a SQLite file another connection of the same process writes to ($engine)',
  (engine) => {
    let database: TestDatabase;
    let app: Kysely<any>;
    const make = () =>
      createRetentionEngine({
        db: database.db,
        schedule: worldSchedule,
        dataMap: worldDataMap,
        clock: fixedClock(TODAY),
        pseudonymKey: 'test-key',
      });

    beforeEach(async () => {
      database = await createTestDatabase(engine);
      await migrate(database.db, [retentionMigrations]);
      await seedWorld(database.db);
      // The application's own connection to the same file (a second `openDatabase`).
      app = await openDatabase(database.url);
    });
    afterEach(async () => {
      await app?.destroy();
      await database?.destroy();
    });

    /**
     * Runs `work` while the application, in a transaction of its own, has written a note and
     * holds the write lock across an await before writing again: `work` starts once the lock is
     * held. With `keepWriting`, the application then goes on adding notes to prospect 5 (not
     * due), each in a `writeTransaction` that holds the lock across an await, until `work` is
     * done. Returns what `work` returned, how long it took, and how many notes were added so.
     */
    async function whileTheAppHoldsTheWriteLock<T>(
      work: () => Promise<T>,
      { keepWriting = false } = {},
    ): Promise<{ result: T; ms: number; more: number }> {
      let locked!: () => void;
      const holding = new Promise<void>((resolve) => {
        locked = resolve;
      });
      let done = false;
      let more = 0;
      const appWrites = (async () => {
        await app.transaction().execute(async (trx) => {
          await trx.insertInto('prospect_notes').values({ id: 20, prospect_id: 2, body: 'draft' }).execute();
          locked();
          await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
          await trx.updateTable('prospect_notes').set({ body: 'called back' }).where('id', '=', 20).execute();
        });
        while (keepWriting && !done) {
          await writeTransaction(app, async (trx) => {
            await trx
              .insertInto('prospect_notes')
              .values({ id: 1000 + more, prospect_id: 5, body: 'follow-up' })
              .execute();
            await new Promise((resolve) => setTimeout(resolve, 20));
          });
          more++;
        }
      })();
      // (Should the application's transaction fail, its error, not a wait for ever.)
      await Promise.race([holding, appWrites]);
      const start = performance.now();
      const timed = work()
        .then((result) => ({ result, ms: performance.now() - start }))
        .finally(() => {
          done = true;
        });
      const [outcome] = await Promise.all([timed, appWrites]);
      return { ...outcome, more };
    }

    async function expectTheAppsNote() {
      const note = await database.db
        .selectFrom('prospect_notes')
        .select(['prospect_id', 'body'])
        .where('id', '=', 20)
        .executeTakeFirst();
      expect(note).toEqual({ prospect_id: 2, body: 'called back' });
    }

    it('placing a hold waits for the write lock off the thread, then stores the hold, well within the busy timeout', async () => {
      const retention = make();
      const { result: hold, ms } = await whileTheAppHoldsTheWriteLock(() =>
        retention.placeHold({
          scope: { table: 'prospects', key: 6 },
          reason: 'case 2025-17',
          placedBy: 'legal@example.com',
        }),
      );
      // It did wait for the application's transaction to commit, and not for the busy timeout.
      expect(ms).toBeGreaterThan(HOLD_MS * 0.6);
      expect(ms).toBeLessThan(5000);
      await expectTheAppsNote();
      expect((await retention.holds({ active: true })).map((h) => [h.id, h.table, h.key])).toEqual([
        [hold.id, 'prospects', '6'],
      ]);
    });

    it('releasing a hold waits for the write lock off the thread, then records the release, well within the busy timeout', async () => {
      const retention = make();
      const hold = await retention.placeHold({
        scope: { table: 'prospects', key: 6 },
        reason: 'case 2025-17',
        placedBy: 'legal@example.com',
      });
      const { result: released, ms } = await whileTheAppHoldsTheWriteLock(() =>
        retention.releaseHold(hold.id, { by: 'legal@example.com', reason: 'case closed' }),
      );
      expect(ms).toBeGreaterThan(HOLD_MS * 0.6);
      expect(ms).toBeLessThan(5000);
      expect(released).toMatchObject({
        id: hold.id,
        releasedBy: 'legal@example.com',
        releaseReason: 'case closed',
      });
      await expectTheAppsNote();
      expect(await retention.holds({ active: true })).toEqual([]);
    });

    it('a sweep waits for the write lock off the thread, batch after batch, then deletes what is due and keeps what is held, well within the busy timeout', async () => {
      const retention = make();
      await retention.placeHold({
        scope: { table: 'prospects', key: 6 },
        reason: 'case 2025-17',
        placedBy: 'legal@example.com',
      });
      // One row a batch: the application's writes come between the sweep's batches.
      const { result, ms, more } = await whileTheAppHoldsTheWriteLock(
        () => retention.sweep({ batchSize: 1 }),
        {
          keepWriting: true,
        },
      );
      expect(ms).toBeGreaterThan(HOLD_MS * 0.6);
      expect(ms).toBeLessThan(5000);
      expect(more).toBeGreaterThan(1);
      expect(result).toMatchObject({ status: 'finished', complete: true });
      // Prospects 1, 3, 4, 7 and 8 were due, and their notes with them; 6 is held. The notes the
      // application added meanwhile to prospects 2 and 5 (not due) are there, as it committed them.
      expect(await ids(database.db, 'prospects')).toEqual([2, 5, 6]);
      expect(await ids(database.db, 'prospect_notes')).toEqual([
        20,
        ...Array.from({ length: more }, (_, index) => 1000 + index),
      ]);
      await expectTheAppsNote();
      const done = result.counts.find(
        (count) => count.rule === 'prospects' && count.table === 'prospects' && count.outcome === 'done',
      );
      expect(done?.count).toBe(5);
      expect(await retention.certificate(result.runId)).toMatchObject({
        status: 'finished',
        hash: result.hash,
      });
    });
  },
);
