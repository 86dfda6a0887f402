import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../testing.js';
import type { TestDatabase } from '../testing.js';
import { openDatabase, sqliteConnectionOf } from './open.js';
import { tryBeginImmediate, writeTransaction } from './write-transaction.js';
import { isPlainInsert, openWriterThread } from './writer-thread.js';
import type { WriterThread } from './writer-thread.js';

async function items(db: Kysely<any>) {
  await db.schema
    .createTable('privacykit_test_items')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('name', 'varchar(64)', (col) => col.notNull())
    .addColumn('data', 'blob')
    .execute();
}

const names = (db: Kysely<any>) =>
  db.selectFrom('privacykit_test_items').select(['id', 'name']).orderBy('id').execute();

describe('openWriterThread on SQLite', () => {
  let database: TestDatabase | undefined;
  let writer: WriterThread | undefined;
  afterEach(async () => {
    await writer?.close();
    writer = undefined;
    await database?.destroy();
    database = undefined;
  });

  async function open(): Promise<{ db: Kysely<any>; thread: Kysely<any> }> {
    database = await createTestDatabase({ engine: 'sqlite', url: 'sqlite' });
    await items(database.db);
    writer = await openWriterThread(database.db);
    if (!writer) throw new Error('no writer thread');
    return { db: database.db, thread: writer.db };
  }

  it('commits what its transaction wrote, pipelined inserts included, where the main connection reads it', async () => {
    const { db, thread } = await open();
    await writeTransaction(thread, async (trx) => {
      for (let i = 1; i <= 50; i++) {
        await trx
          .insertInto('privacykit_test_items')
          .values({ id: i, name: `n${i}` })
          .execute();
      }
      // A read on the thread sees the transaction's own inserts, sent without waiting.
      const { count } = (await trx
        .selectFrom('privacykit_test_items')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .executeTakeFirstOrThrow()) as { count: number };
      expect(Number(count)).toBe(50);
      // The main connection does not: nothing is committed yet. (Read on it directly: its
      // kysely instance waits for the writer's transaction to end, as for one of its own.)
      const raw = sqliteConnectionOf(db);
      expect(raw?.prepare('select count(*) as n from privacykit_test_items').get()).toEqual({ n: 0 });
      const updated = await trx
        .updateTable('privacykit_test_items')
        .set({ name: 'first' })
        .where('id', '=', 1)
        .executeTakeFirst();
      expect(updated.numUpdatedRows).toBe(1n);
    });
    const rows = await names(db);
    expect(rows).toHaveLength(50);
    expect(rows[0]).toEqual({ id: 1, name: 'first' });
  });

  it('a pipelined insert that fails fails the transaction at its next awaited statement; nothing of it is kept', async () => {
    const { db, thread } = await open();
    await db.insertInto('privacykit_test_items').values({ id: 7, name: 'kept' }).execute();
    const error = await writeTransaction(thread, async (trx) => {
      await trx.insertInto('privacykit_test_items').values({ id: 1, name: 'a' }).execute();
      // Sent without waiting: the primary key violation comes back later.
      await trx.insertInto('privacykit_test_items').values({ id: 7, name: 'dup' }).execute();
      await trx.insertInto('privacykit_test_items').values({ id: 2, name: 'b' }).execute();
      await trx.selectFrom('privacykit_test_items').selectAll().execute();
      return 'not reached';
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    expect((error as { code?: unknown }).code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
    expect(await names(db)).toEqual([{ id: 7, name: 'kept' }]);
    // The connection is usable again, outside and inside a transaction.
    await writeTransaction(thread, (trx) =>
      trx.insertInto('privacykit_test_items').values({ id: 3, name: 'c' }).execute(),
    );
    expect(await names(db)).toEqual([
      { id: 3, name: 'c' },
      { id: 7, name: 'kept' },
    ]);
  });

  it('a failed pipelined insert is never committed, even when the commit is the next statement', async () => {
    const { db, thread } = await open();
    await db.insertInto('privacykit_test_items').values({ id: 7, name: 'kept' }).execute();
    await expect(
      writeTransaction(thread, async (trx) => {
        await trx.insertInto('privacykit_test_items').values({ id: 1, name: 'a' }).execute();
        await trx.insertInto('privacykit_test_items').values({ id: 7, name: 'dup' }).execute();
      }),
    ).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    expect(await names(db)).toEqual([{ id: 7, name: 'kept' }]);
  });

  it('hands bytes back as Buffers, and affected rows for statements it waits for', async () => {
    const { db, thread } = await open();
    const data = Buffer.from([0, 1, 2, 250]);
    const inserted = await thread
      .insertInto('privacykit_test_items')
      .values({ id: 1, name: 'bytes', data })
      .executeTakeFirst();
    // Outside a transaction nothing is pipelined: the count is known.
    expect(inserted.numInsertedOrUpdatedRows).toBe(1n);
    const row = await thread.selectFrom('privacykit_test_items').select('data').executeTakeFirstOrThrow();
    expect(Buffer.isBuffer(row.data)).toBe(true);
    expect(row.data).toEqual(data);
    expect(await names(db)).toEqual([{ id: 1, name: 'bytes' }]);
  });

  it('holds the process’s turn on the file: a synchronous begin on the main connection steps aside at once', async () => {
    const { db, thread } = await open();
    const raw = sqliteConnectionOf(db);
    if (!raw) throw new Error('no raw connection');
    // Count the main connection's attempts to take the lock (its BEGIN IMMEDIATE runs).
    let attempts = 0;
    const prepare = raw.prepare.bind(raw);
    (raw as { prepare: typeof raw.prepare }).prepare = (text) => {
      const statement = prepare(text);
      if (!/^begin immediate$/i.test(text)) return statement;
      const run = statement.run.bind(statement);
      statement.run = (...parameters: unknown[]) => {
        attempts++;
        return run(...parameters);
      };
      return statement;
    };
    let answered: boolean | undefined;
    await writeTransaction(thread, async (trx) => {
      await trx.insertInto('privacykit_test_items').values({ id: 1, name: 'a' }).execute();
      await trx.selectFrom('privacykit_test_items').selectAll().execute();
      // Without the turn, this would wait in SQLite's busy handler, on this thread, for the
      // lock the thread holds until this callback returns: 10 s, then false.
      answered = tryBeginImmediate(raw);
    });
    expect(answered).toBe(false);
    expect(attempts).toBe(0);
    // A writeTransaction on the main connection meanwhile waits for its turn, then commits.
    const [, main] = await Promise.all([
      writeTransaction(thread, async (trx) => {
        await trx.insertInto('privacykit_test_items').values({ id: 2, name: 'b' }).execute();
        await trx.selectFrom('privacykit_test_items').selectAll().execute();
      }),
      writeTransaction(db, (trx) =>
        trx.insertInto('privacykit_test_items').values({ id: 3, name: 'c' }).execute(),
      ),
    ]);
    expect(main).toBeDefined();
    expect((await names(db)).map((row) => row.id)).toEqual([1, 2, 3]);
  });

  it('a plain statement on the main instance meanwhile waits for the writer’s transaction, off the thread, then runs', async () => {
    const { db, thread } = await open();
    let plain: Promise<unknown> | undefined;
    await writeTransaction(thread, async (trx) => {
      await trx.insertInto('privacykit_test_items').values({ id: 1, name: 'writer' }).execute();
      await trx.selectFrom('privacykit_test_items').selectAll().execute();
      // Not through writeTransaction: on the main connection right away, it would wait for the
      // writer's lock in SQLite's busy handler, on this thread, for 10 s, then fail.
      plain = db
        .insertInto('privacykit_test_items')
        .values({ id: 2, name: 'plain' })
        .execute()
        .then(
          () => 'written',
          (error: unknown) => error,
        );
      await new Promise((resolve) => setTimeout(resolve, 20));
      await trx.insertInto('privacykit_test_items').values({ id: 3, name: 'writer' }).execute();
      await trx.selectFrom('privacykit_test_items').selectAll().execute();
    });
    expect(await plain).toBe('written');
    expect((await names(db)).map((row) => row.name)).toEqual(['writer', 'plain', 'writer']);
  });

  it('the main connection shows a transaction meanwhile: a guarded synchronous write steps aside, an unguarded one fails at once', async () => {
    const { db, thread } = await open();
    const raw = sqliteConnectionOf(db);
    if (!raw) throw new Error('no raw connection');
    const hit = (id: number) =>
      raw.prepare('insert into privacykit_test_items (id, name) values (?, ?)').run(id, 'hit');
    const seen: { inTransaction: boolean; unguarded: unknown } = {
      inTransaction: false,
      unguarded: undefined,
    };
    await writeTransaction(thread, async (trx) => {
      await trx.insertInto('privacykit_test_items').values({ id: 1, name: 'writer' }).execute();
      await trx.selectFrom('privacykit_test_items').selectAll().execute();
      // A host's hot path checks inTransaction first (as sqliteConnectionOf asks) and steps aside.
      seen.inTransaction = raw.inTransaction;
      try {
        hit(2);
      } catch (error) {
        seen.unguarded = (error as { code?: unknown }).code;
      }
    });
    expect(seen).toEqual({ inTransaction: true, unguarded: 'SQLITE_BUSY' });
    expect(raw.inTransaction).toBe(false);
    hit(3);
    expect((await names(db)).map((row) => row.id)).toEqual([1, 3]);
  });

  it('close() while a commit is on its way reports what happened: a transaction said to fail wrote nothing', async () => {
    const { db, thread } = await open();
    const rows = Array.from({ length: 400 }, (_, i) => ({ id: i + 1, name: `n${i}` }));
    const outcome = await writeTransaction(thread, async (trx) => {
      for (let i = 0; i < 50; i++) {
        await trx.deleteFrom('privacykit_test_items').execute();
        await trx.insertInto('privacykit_test_items').values(rows).execute();
      }
      // After the COMMIT is sent (it follows this callback within the same turn of the loop). This
      // thread, not whatever `writer` holds when the callback runs: when the commit came back
      // first, it ran after this test, and `writer` was already the next test's (or none).
      const closing = writer as WriterThread;
      setImmediate(() => void closing.close());
    }).then(
      () => 'committed',
      (error: unknown) => error,
    );
    const count = (await names(db)).length;
    if (outcome === 'committed') expect(count).toBe(400);
    else expect(count).toBe(0);
    expect(outcome).toBe('committed');
  });

  it('a value the thread cannot be sent fails its statement alone; the same statement works afterwards', async () => {
    const { db, thread } = await open();
    const insert = (name: unknown) =>
      writeTransaction(thread, async (trx) => {
        await trx
          .insertInto('privacykit_test_items')
          .values({ id: 1, name: name as string })
          .execute();
        await trx.selectFrom('privacykit_test_items').selectAll().execute();
      });
    await expect(insert(Symbol('no'))).rejects.toThrow(/could not be cloned/);
    await insert('fine');
    expect(await names(db)).toEqual([{ id: 1, name: 'fine' }]);
    const read = await thread.selectFrom('privacykit_test_items').select('name').executeTakeFirst();
    expect(read).toEqual({ name: 'fine' });
  });

  it('close() rolls back a transaction left open and ends the thread; later queries fail', async () => {
    const { db, thread } = await open();
    await sql`begin immediate`.execute(thread);
    await thread.insertInto('privacykit_test_items').values({ id: 1, name: 'a' }).execute();
    await (writer as WriterThread).close();
    await (writer as WriterThread).close();
    await expect(thread.selectFrom('privacykit_test_items').selectAll().execute()).rejects.toThrow(/closed/);
    expect(await names(db)).toEqual([]);
    // The lock went with the connection.
    await db.insertInto('privacykit_test_items').values({ id: 2, name: 'b' }).execute();
    expect(await names(db)).toEqual([{ id: 2, name: 'b' }]);
  });

  it('runs each statement right past the thread’s cache of statement texts', async () => {
    const { thread } = await open();
    const read = async (n: number) =>
      (await sql<{ n: number }>`select ${sql.lit(n)} as n`.execute(thread)).rows[0]?.n;
    const first = [];
    for (let n = 0; n < 1100; n++) first.push(await read(n));
    expect(first).toEqual(Array.from({ length: 1100 }, (_, n) => n));
    // The oldest texts left the cache long ago: sent again, they still answer.
    expect([await read(0), await read(1), await read(1099)]).toEqual([0, 1, 1099]);
  });

  it('is not offered for a database in memory', async () => {
    const memory = await openDatabase('sqlite::memory:');
    try {
      expect(await openWriterThread(memory)).toBeUndefined();
    } finally {
      await memory.destroy();
    }
  });

  it('pipelines only plain inserts by default', () => {
    expect(isPlainInsert('insert into "t" ("a") values (?)')).toBe(true);
    expect(isPlainInsert('  INSERT OR IGNORE INTO t VALUES (?)')).toBe(true);
    expect(isPlainInsert('insert into "t" ("a") values (?) returning "a"')).toBe(false);
    expect(isPlainInsert('update "t" set "a" = ?')).toBe(false);
    expect(isPlainInsert('select * from "insert"')).toBe(false);
  });
});
