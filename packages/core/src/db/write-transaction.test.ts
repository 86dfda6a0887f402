import { CamelCasePlugin } from 'kysely';
import type { Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { PrivacyKitError } from '../errors.js';
import { createTestDatabase, holdSqliteWriteLock, testEngines } from '../testing.js';
import type { TestDatabase } from '../testing.js';
import { openDatabase, sqliteConnectionOf, sqliteFileOf } from './open.js';
import {
  isWriteConflict,
  retryWriteConflicts,
  tryBeginImmediate,
  writeStatement,
  writeTransaction,
} from './write-transaction.js';

async function counters(db: Kysely<any>) {
  await db.schema
    .createTable('privacykit_test_counters')
    .addColumn('id', 'varchar(32)', (col) => col.primaryKey())
    .addColumn('n', 'integer', (col) => col.notNull())
    .execute();
  await db.insertInto('privacykit_test_counters').values({ id: 'a', n: 0 }).execute();
}

/** A promise and the function that resolves it, for one step of a test to wait on another. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

const giveUp = (error: unknown) =>
  new PrivacyKitError('test/write-conflict', 'lost every time', { cause: error });

describe.each(testEngines())('writeTransaction and retryWriteConflicts on $engine', (engine) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.destroy();
    database = undefined;
  });

  it('a transaction that throws leaves nothing of what it wrote', async () => {
    database = await createTestDatabase(engine);
    const { db } = database;
    await counters(db);
    await expect(
      writeTransaction(db, async (trx) => {
        await trx.updateTable('privacykit_test_counters').set({ n: 5 }).execute();
        await trx.insertInto('privacykit_test_counters').values({ id: 'b', n: 1 }).execute();
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await db.selectFrom('privacykit_test_counters').selectAll().execute()).toEqual([
      { id: 'a', n: 0 },
    ]);
  });

  it('writeStatement joins the transaction it is handed, committed or rolled back with the rest; writeTransaction refuses one, typed', async () => {
    database = await createTestDatabase(engine);
    const { db } = database;
    await counters(db);
    const bump = (q: Kysely<any>, n: number) =>
      writeStatement(q, (on) => on.updateTable('privacykit_test_counters').set({ n }).execute());
    const read = () => db.selectFrom('privacykit_test_counters').selectAll().orderBy('id').execute();
    // A kysely transaction of the caller's, and the `trx` of a writeTransaction.
    await expect(
      db.transaction().execute(async (trx) => {
        await bump(trx, 7);
        throw new Error('the caller rolls back');
      }),
    ).rejects.toThrow('the caller rolls back');
    await expect(
      writeTransaction(db, async (trx) => {
        await bump(trx, 8);
        throw new Error('so does this one');
      }),
    ).rejects.toThrow('so does this one');
    expect(await read()).toEqual([{ id: 'a', n: 0 }]);
    await db.transaction().execute(async (trx) => {
      await bump(trx, 9);
      await trx.insertInto('privacykit_test_counters').values({ id: 'b', n: 1 }).execute();
    });
    await writeTransaction(db, async (trx) => {
      await bump(trx, 10);
      await trx.insertInto('privacykit_test_counters').values({ id: 'c', n: 2 }).execute();
    });
    await bump(db, 11);
    expect(await read()).toEqual([
      { id: 'a', n: 11 },
      { id: 'b', n: 11 },
      { id: 'c', n: 11 },
    ]);
    // Nested, a writeTransaction would run its work again inside a transaction nobody rolled back.
    const nested = (q: Kysely<any>) =>
      writeTransaction(q, (inner) =>
        inner.insertInto('privacykit_test_counters').values({ id: 'd', n: 3 }).execute(),
      );
    await expect(db.transaction().execute((trx) => nested(trx))).rejects.toMatchObject({
      code: 'database/nested-transaction',
    });
    await expect(writeTransaction(db, (trx) => nested(trx))).rejects.toMatchObject({
      code: 'database/nested-transaction',
    });
    // An instance derived from the transaction's too (SQLite itself says so there).
    await expect(
      writeTransaction(db, (trx) => nested(trx.withPlugin(new CamelCasePlugin()))),
    ).rejects.toMatchObject({ code: 'database/nested-transaction' });
    expect((await read()).map((row) => row.id)).toEqual(['a', 'b', 'c']);
  });

  it('a run that loses a unique key runs again, whole; after the last attempt the typed error, nothing left behind', async () => {
    database = await createTestDatabase(engine);
    const { db } = database;
    await counters(db);
    let runs = 0;
    const result = await retryWriteConflicts(
      () =>
        writeTransaction(db, async (trx) => {
          runs++;
          await trx.updateTable('privacykit_test_counters').set({ n: runs }).execute();
          // Every run takes a key that is already there.
          await trx.insertInto('privacykit_test_counters').values({ id: 'a', n: 99 }).execute();
          return 'stored';
        }),
      { attempts: 3, giveUp },
    ).catch((error: unknown) => error);
    // Every run collides with the row that is there: after three runs, the typed error.
    expect(runs).toBe(3);
    expect(result).toBeInstanceOf(PrivacyKitError);
    expect((result as PrivacyKitError).code).toBe('test/write-conflict');
    expect(isWriteConflict((result as Error).cause)).toBe(true);
    // None of the runs left its update behind.
    expect(await db.selectFrom('privacykit_test_counters').selectAll().execute()).toEqual([
      { id: 'a', n: 0 },
    ]);

    await db.insertInto('privacykit_test_counters').values({ id: 'b', n: 0 }).execute();
    runs = 0;
    let collided = false;
    const second = await retryWriteConflicts(
      () =>
        writeTransaction(db, async (trx) => {
          runs++;
          if (!collided) {
            collided = true;
            await trx.insertInto('privacykit_test_counters').values({ id: 'b', n: 1 }).execute();
          }
          await trx.updateTable('privacykit_test_counters').set({ n: 7 }).where('id', '=', 'b').execute();
          return 'stored';
        }),
      { attempts: 3, giveUp },
    );
    expect(second).toBe('stored');
    expect(runs).toBe(2);
    expect(
      await db.selectFrom('privacykit_test_counters').select('n').where('id', '=', 'b').executeTakeFirst(),
    ).toEqual({ n: 7 });
  });

  it('any other error is not retried', async () => {
    database = await createTestDatabase(engine);
    let runs = 0;
    const error = await retryWriteConflicts(
      async () => {
        runs++;
        await (database as TestDatabase).db.selectFrom('privacykit_no_such_table').selectAll().execute();
      },
      { attempts: 5, giveUp },
    ).catch((caught: unknown) => caught);
    expect(runs).toBe(1);
    expect(error).not.toBeInstanceOf(PrivacyKitError);
    expect(isWriteConflict(error)).toBe(false);
  });

  // SQLite only: better-sqlite3 waits for a lock on the thread (the other engines' drivers do not).
  it.runIf(engine.engine === 'sqlite')(
    'two connections of one process to one SQLite file write in turn, each holding the lock across awaits, without waiting out the busy timeout',
    async () => {
      database = await createTestDatabase(engine);
      const { db } = database;
      await counters(db);
      // The same file, its path spelled another way.
      const other = await openDatabase(database.url.replace(/\/([^/]+)$/, '/./$1'));
      try {
        const increment = (on: Kysely<any>) =>
          writeTransaction(on, async (trx) => {
            const row = await trx
              .selectFrom('privacykit_test_counters')
              .select('n')
              .where('id', '=', 'a')
              .executeTakeFirstOrThrow();
            await new Promise((resolve) => setTimeout(resolve, 2));
            await trx
              .updateTable('privacykit_test_counters')
              .set({ n: Number(row.n) + 1 })
              .where('id', '=', 'a')
              .execute();
          });
        const start = performance.now();
        await Promise.all(Array.from({ length: 20 }, (_, i) => increment(i % 2 ? other : db)));
        // Before, the second connection slept in SQLite's busy handler on the thread while the
        // first waited for that thread to commit: 10 s, then "database is locked".
        expect(performance.now() - start).toBeLessThan(5000);
        const row = await db.selectFrom('privacykit_test_counters').select('n').executeTakeFirstOrThrow();
        // No lost update: each read-modify-write ran alone.
        expect(Number(row.n)).toBe(20);
      } finally {
        await other.destroy();
      }
    },
  );

  it.runIf(engine.engine === 'sqlite')(
    "tryBeginImmediate answers false at once while another process holds the file's write lock (before, the busy handler held the thread until it was released), and the next writeTransaction has the busy timeout back",
    { timeout: 30_000 },
    async () => {
      database = await createTestDatabase(engine);
      const { db } = database;
      await counters(db);
      const connection = sqliteConnectionOf(db) as NonNullable<ReturnType<typeof sqliteConnectionOf>>;
      const holder = holdSqliteWriteLock(sqliteFileOf(connection) as string, 1500);
      await holder.locked;
      // Before, this call slept in SQLite's busy handler until the holder committed, then began.
      expect(tryBeginImmediate(connection)).toBe(false);
      expect(connection.inTransaction).toBe(false);
      // A writeTransaction waits for the lock off the thread: timers run meanwhile.
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      await writeTransaction(db, async (trx) => {
        await trx.updateTable('privacykit_test_counters').set({ n: 7 }).where('id', '=', 'a').execute();
      });
      clearInterval(timer);
      expect(ticks).toBeGreaterThan(5);
      expect(connection.prepare('pragma busy_timeout').get()).toEqual({ timeout: 10_000 });
      await holder.released;
      expect(tryBeginImmediate(connection)).toBe(true);
      connection.prepare('rollback').run();
      const row = await db.selectFrom('privacykit_test_counters').select('n').executeTakeFirstOrThrow();
      expect(Number(row.n)).toBe(7);
    },
  );

  it.runIf(engine.engine === 'sqlite')(
    "tryBeginImmediate leaves the connection without a busy timeout only until anything else uses it: a kysely write then still waits for another process's lock instead of failing",
    { timeout: 30_000 },
    async () => {
      database = await createTestDatabase(engine);
      const { db } = database;
      await counters(db);
      const connection = sqliteConnectionOf(db) as NonNullable<ReturnType<typeof sqliteConnectionOf>>;
      const timeout = () => (connection.prepare('pragma busy_timeout').get() as { timeout: number }).timeout;
      // Begun and rolled back back to back, as a hot path records: the pragma is not repeated,
      // and the timeout stays 0 in between.
      for (let i = 0; i < 3; i++) {
        expect(tryBeginImmediate(connection)).toBe(true);
        connection.prepare('rollback').run();
        expect(timeout()).toBe(0);
      }
      // Handed out again: restored.
      expect(sqliteConnectionOf(db)).toBe(connection);
      expect(timeout()).toBe(10_000);
      // The turn of the event loop ends: restored.
      expect(tryBeginImmediate(connection)).toBe(true);
      connection.prepare('rollback').run();
      await new Promise((resolve) => setImmediate(resolve));
      expect(timeout()).toBe(10_000);
      // A kysely statement in the same turn, while another process holds the lock: it waits for
      // the lock with the timeout restored (with 0 it failed at once with SQLITE_BUSY).
      const holder = holdSqliteWriteLock(sqliteFileOf(connection) as string, 400);
      await holder.locked;
      expect(tryBeginImmediate(connection)).toBe(false);
      expect(timeout()).toBe(0);
      await db.updateTable('privacykit_test_counters').set({ n: 3 }).where('id', '=', 'a').execute();
      expect(timeout()).toBe(10_000);
      await holder.released;
      const row = await db.selectFrom('privacykit_test_counters').select('n').executeTakeFirstOrThrow();
      expect(Number(row.n)).toBe(3);
    },
  );

  it.runIf(engine.engine === 'sqlite')(
    'an instance with a plugin takes its turn like the database it came from: its write waits off the thread for the other connection',
    async () => {
      database = await createTestDatabase(engine);
      const { db } = database;
      await counters(db);
      const other = await openDatabase(database.url);
      try {
        const held = deferred();
        const holding = deferred();
        const first = writeTransaction(db, async (trx) => {
          await trx.updateTable('privacykit_test_counters').set({ n: 1 }).where('id', '=', 'a').execute();
          holding.resolve();
          await held.promise;
        });
        await holding.promise;
        let ticks = 0;
        const timer = setInterval(() => ticks++, 10);
        // Before: this instance was unknown, its BEGIN waited in SQLite's busy handler with the
        // event loop stopped, and failed after 10 s with "database is locked".
        const second = writeStatement(other.withPlugin(new CamelCasePlugin()), (q) =>
          q.updateTable('privacykit_test_counters').set({ n: 2 }).where('id', '=', 'a').execute(),
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
        held.resolve();
        await Promise.all([first, second]);
        clearInterval(timer);
        expect(ticks).toBeGreaterThan(5);
        const row = await db.selectFrom('privacykit_test_counters').select('n').executeTakeFirstOrThrow();
        expect(Number(row.n)).toBe(2);
      } finally {
        await other.destroy();
      }
    },
  );

  it.runIf(engine.engine === 'sqlite')(
    'a writeTransaction waits off the thread for a write lock a connection of the same process holds in a transaction of its own',
    async () => {
      database = await createTestDatabase(engine);
      const { db } = database;
      await counters(db);
      const other = await openDatabase(database.url);
      try {
        const holding = deferred();
        const holder = other.transaction().execute(async (trx) => {
          await trx.updateTable('privacykit_test_counters').set({ n: 1 }).where('id', '=', 'a').execute();
          holding.resolve();
          await new Promise((resolve) => setTimeout(resolve, 200));
          await trx.updateTable('privacykit_test_counters').set({ n: 2 }).where('id', '=', 'a').execute();
        });
        await holding.promise;
        const start = performance.now();
        await writeTransaction(db, async (trx) => {
          const row = await trx.selectFrom('privacykit_test_counters').select('n').executeTakeFirstOrThrow();
          await trx
            .updateTable('privacykit_test_counters')
            .set({ n: Number(row.n) * 10 })
            .where('id', '=', 'a')
            .execute();
        });
        await holder;
        expect(performance.now() - start).toBeLessThan(5000);
        // It ran after the holder committed, on what the holder wrote.
        const row = await db.selectFrom('privacykit_test_counters').select('n').executeTakeFirstOrThrow();
        expect(Number(row.n)).toBe(20);
      } finally {
        await other.destroy();
      }
    },
  );
});
