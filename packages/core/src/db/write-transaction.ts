import { CompiledQuery } from 'kysely';
import type { Kysely } from 'kysely';
import { PrivacyKitError } from '../errors.js';
import { engineOf } from './engine.js';
import {
  SQLITE_BUSY_TIMEOUT_MS,
  lowerBusyTimeout,
  restoreBusyTimeout,
  sqliteConnectionOf,
  sqliteFileOf,
  withTransactionConnection,
} from './open.js';
import type { SqliteConnection, SqliteStatement } from './open.js';
import { writerThreadOf } from './writer-thread.js';

const BEGIN_IMMEDIATE = CompiledQuery.raw('begin immediate');
const COMMIT = CompiledQuery.raw('commit');
const ROLLBACK = CompiledQuery.raw('rollback');

/**
 * Runs `work` in a transaction that will write. SQLite: `BEGIN IMMEDIATE` takes the database's
 * write lock before the first read, so a second process queues on `busy_timeout` and reads what
 * the first committed, instead of failing a read-to-write lock upgrade with "database is locked".
 * PostgreSQL / MySQL: an ordinary transaction, whose reads that decide a write must lock
 * (`FOR UPDATE`, an advisory lock) or whose writes must be conditional on what was read.
 *
 * Several connections of one process to one SQLite file (several `openDatabase` calls): their
 * `writeTransaction`s take turns in the order they came, and each waits for the write lock off
 * the thread. better-sqlite3 waits for a lock inside SQLite's busy handler, on the thread: a
 * connection waiting there for a lock another connection of the process holds across an await
 * would keep it from ever committing, and both would fail with "database is locked" after 10 s.
 *
 * Not inside another transaction: handed one (a kysely `Transaction`, or the `trx` of another
 * `writeTransaction`), it throws `database/nested-transaction` — a retry of `work` inside a
 * transaction nobody rolled back would apply its writes twice. A single write that may run
 * inside the caller's transaction goes through {@link writeStatement}.
 */
export async function writeTransaction<DB, R>(
  db: Kysely<DB>,
  work: (trx: Kysely<DB>) => Promise<R>,
): Promise<R> {
  if (typeof db !== 'object' || db === null || typeof work !== 'function') {
    throw new PrivacyKitError(
      'database/invalid-options',
      'writeTransaction takes a kysely instance and a function of the transaction: writeTransaction(db, async (trx) => …)',
    );
  }
  if (isInTransaction(db)) throw nestedTransaction();
  if (engineOf(db) !== 'sqlite') return db.transaction().execute(work);
  const raw = sqliteConnectionOf(db);
  // A writer thread's connection takes its turns with the process's other connections too.
  const writer = raw ? undefined : writerThreadOf(db);
  const file = raw ? sqliteFileOf(raw) : writer?.file;
  if (!file) return sqliteTransaction(db, work, undefined);
  const release = await turnFor(file);
  try {
    if (!writer) return await sqliteTransaction(db, work, raw);
    // And holds the connection of the instance it was opened from while it has the lock: a
    // statement there (a plain write, another ledger's start-up, the host's own) waits for it
    // off the thread, as it would for a transaction on that connection, instead of waiting in
    // SQLite's busy handler on the thread the writer needs to go on.
    // Its raw connection shows a transaction meanwhile, so a host's synchronous hot path that
    // checks `inTransaction` steps aside as it would for one of its own (see asBusy).
    const main = sqliteConnectionOf(writer.main);
    return await writer.main
      .connection()
      .execute(() => sqliteTransaction(db, (trx) => asBusy(main, () => work(trx)), undefined));
  } finally {
    release();
  }
}

/**
 * One write statement (or a few that need no transaction of their own): inside a transaction it
 * is handed (a kysely `Transaction`, or a `writeTransaction`'s `trx`), part of it; otherwise on
 * SQLite in a {@link writeTransaction} of its own, which waits for the write lock off the thread
 * (a lone statement would wait in SQLite's busy handler, on the thread, keeping another
 * connection of the process that holds the lock across an await from committing), and on
 * PostgreSQL / MySQL on its own (their drivers wait off the thread). Never run again.
 */
export async function writeStatement<DB, R>(
  db: Kysely<DB>,
  write: (on: Kysely<DB>) => Promise<R>,
): Promise<R> {
  if (isInTransaction(db) || engineOf(db) !== 'sqlite') return write(db);
  return writeTransaction(db, write);
}

function nestedTransaction(): PrivacyKitError {
  return new PrivacyKitError(
    'database/nested-transaction',
    'writeTransaction was handed a transaction: it starts its own (pass the database, or write through writeStatement inside the transaction)',
  );
}

// The connection-bound instances SQLite writeTransactions hand their `work` while they run.
const running = new WeakSet<Kysely<any>>();

/** Whether `db` is in a transaction: a kysely `Transaction`, or a `writeTransaction`'s `trx`. */
function isInTransaction(db: Kysely<any>): boolean {
  return db.isTransaction || running.has(db);
}

/**
 * Runs `work` while `connection` (the main connection of a writer thread's file, whose lock the
 * thread holds) is in a deferred transaction that takes no lock, with no busy timeout: code that
 * checks `inTransaction` steps aside, and a write that does not fails at once with SQLITE_BUSY
 * instead of waiting 10 s on the thread the writer needs. Nothing can be written in it: the
 * thread holds the lock throughout. Rolled back after.
 */
async function asBusy<R>(connection: SqliteConnection | undefined, work: () => Promise<R>): Promise<R> {
  if (!connection || connection.inTransaction) return work();
  // Its own timeout from here on: a lowered one must not be restored under it.
  restoreBusyTimeout(connection);
  connection.prepare('pragma busy_timeout = 0').get();
  connection.prepare('begin deferred').run();
  try {
    return await work();
  } finally {
    if (connection.inTransaction) connection.prepare('rollback').run();
    connection.prepare(`pragma busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`).get();
  }
}

async function sqliteTransaction<DB, R>(
  db: Kysely<DB>,
  work: (trx: Kysely<DB>) => Promise<R>,
  raw: SqliteConnection | undefined,
): Promise<R> {
  return db.connection().execute(async (conn) => {
    if (raw && !raw.inTransaction) await beginOffThread(raw);
    else {
      await conn.executeQuery(BEGIN_IMMEDIATE).catch((error: unknown) => {
        // An instance derived from a transaction's (`trx.withPlugin(…)`) is not recognised
        // as one above; SQLite says so here.
        if (/within a transaction/.test(String((error as Error)?.message))) throw nestedTransaction();
        throw error;
      });
    }
    running.add(conn);
    try {
      const result = await withTransactionConnection(conn, raw, () => work(conn));
      await conn.executeQuery(COMMIT);
      return result;
    } catch (error) {
      await conn.executeQuery(ROLLBACK).catch(() => undefined);
      throw error;
    } finally {
      running.delete(conn);
    }
  });
}

// Per SQLite file, the last of this process's writeTransactions in line: each waits for the one
// before it to end (first come, first served), for at most the busy timeout.
const lines = new Map<string, Promise<void>>();

async function turnFor(file: string): Promise<() => void> {
  const before = lines.get(file);
  let release!: () => void;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = (before ?? Promise.resolve()).then(() => mine);
  lines.set(file, tail);
  if (before) {
    // A turn that never ends (a transaction stuck on a dead connection, or one nested inside
    // another on the same file) holds the line up for no longer than SQLite itself would wait.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      before,
      new Promise((resolve) => {
        timer = setTimeout(resolve, SQLITE_BUSY_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
  }
  return () => {
    release();
    if (lines.get(file) === tail) lines.delete(file);
  };
}

// `BEGIN IMMEDIATE` prepared once per connection: preparing it costs more than running it.
const begins = new WeakMap<SqliteConnection, SqliteStatement>();

function beginOf(connection: SqliteConnection): SqliteStatement {
  let begin = begins.get(connection);
  if (!begin) {
    begin = connection.prepare('begin immediate');
    begins.set(connection, begin);
  }
  return begin;
}

/**
 * `BEGIN IMMEDIATE` on a connection `openDatabase` opened, for a synchronous hot path that has a
 * slower path to fall back on: `false`, having done nothing, while a `writeTransaction` of this
 * process on the same file is running or waiting (the slower path takes its turn after it), or
 * while another connection — another process's — holds the file's write lock: this BEGIN runs
 * with no busy timeout, so the slower path waits for that lock off the thread instead of SQLite's
 * busy handler sleeping on it (up to 10 s with the event loop stopped; another process's
 * transactions back to back, an import's batches, kept it there the whole time). The connection
 * keeps no busy timeout until the next statement kysely runs on it, the next
 * `sqliteConnectionOf`, or the end of this turn of the event loop, whichever comes first: the hot
 * path's statements in between hold the lock already or only read, which in WAL never waits.
 */
export function tryBeginImmediate(connection: SqliteConnection): boolean {
  const file = sqliteFileOf(connection);
  if (file && lines.has(file)) return false;
  // Left at 0 for the rest of this turn of the event loop (see lowerBusyTimeout): a hot path's
  // next BEGIN needs no pragma, and anything else that runs on the connection gets it back first.
  lowerBusyTimeout(connection);
  try {
    beginOf(connection).run();
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'SQLITE_BUSY') return false;
    throw error;
  }
}

/**
 * `BEGIN IMMEDIATE` without the busy handler, polling (1, 2, 4 … 32 ms apart) for as long as
 * `busy_timeout` would have waited, then SQLITE_BUSY as before: whoever holds the lock — another
 * process, or a connection of this one in a transaction of its own — goes on meanwhile.
 */
async function beginOffThread(connection: SqliteConnection): Promise<void> {
  const deadline = performance.now() + SQLITE_BUSY_TIMEOUT_MS;
  const begin = beginOf(connection);
  restoreBusyTimeout(connection);
  for (let pause = 1; ; pause = Math.min(pause * 2, 32)) {
    // Prepared each time: SQLite applies `busy_timeout` when the pragma is prepared, not run.
    connection.prepare('pragma busy_timeout = 0').get();
    try {
      begin.run();
      return;
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'SQLITE_BUSY' || performance.now() >= deadline) throw error;
    } finally {
      connection.prepare(`pragma busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`).get();
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/**
 * A write that lost to a concurrent transaction and is worth running again, whole: a deadlock or
 * serialization failure the database broke by rolling it back, or a unique key another
 * transaction took first (the rerun reads what that one committed).
 */
export function isWriteConflict(error: unknown): boolean {
  const { code, errno } = (error ?? {}) as { code?: unknown; errno?: unknown };
  return (
    code === '40P01' || // PostgreSQL deadlock_detected
    code === '40001' || // PostgreSQL serialization_failure
    code === '23505' || // PostgreSQL unique_violation
    code === 'ER_LOCK_DEADLOCK' ||
    errno === 1213 ||
    code === 'ER_DUP_ENTRY' ||
    errno === 1062 ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}

export interface RetryWriteConflictsOptions {
  /** Runs in all, the first included. */
  attempts: number;
  /** The error thrown after the last lost run (typed, with the last loss as its cause). */
  giveUp: (lastLoss: unknown) => Error;
  /** What else counts as a lost race (default: only {@link isWriteConflict}). */
  lost?: (error: unknown) => boolean;
}

/**
 * `work` run again, whole, while it loses to concurrent writers; after `attempts` losses the
 * error `giveUp` makes. `work` must start its own transaction, so each run rolls back whole.
 */
export async function retryWriteConflicts<R>(
  work: () => Promise<R>,
  options: RetryWriteConflictsOptions,
): Promise<R> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isWriteConflict(error) && !options.lost?.(error)) throw error;
      if (attempt >= options.attempts) throw options.giveUp(error);
    }
  }
}
