import { CompiledQuery } from 'kysely';
import type { Kysely } from 'kysely';
import { engineOf } from './engine.js';
import { SQLITE_BUSY_TIMEOUT_MS, sqliteConnectionOf, sqliteFileOf } from './open.js';
import type { SqliteConnection } from './open.js';

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
 * Two connections of one process to one SQLite file (two `openDatabase` calls): better-sqlite3's
 * busy handler sleeps on the thread, so a connection waiting there for a lock that the other
 * holds across an await would keep it from ever committing — both would wait out the whole
 * timeout. While another connection of this process to the same file is inside a
 * `writeTransaction`, the lock is waited for off the thread instead.
 */
export async function writeTransaction<DB, R>(
  db: Kysely<DB>,
  work: (trx: Kysely<DB>) => Promise<R>,
): Promise<R> {
  if (engineOf(db) !== 'sqlite') return db.transaction().execute(work);
  const raw = sqliteConnectionOf(db);
  const file = raw && sqliteFileOf(raw);
  return db.connection().execute(async (conn) => {
    let holding: (() => void) | undefined;
    if (raw && file) {
      // Registered in the same synchronous step as the lock is taken: no other connection of this
      // process can run in between and see the lock taken but not its holder.
      if (heldInProcess(file, raw)) holding = await beginOffThread(raw, file);
      else {
        raw.prepare('begin immediate').run();
        holding = hold(file, raw);
      }
    } else {
      await conn.executeQuery(BEGIN_IMMEDIATE);
    }
    try {
      const result = await work(conn);
      await conn.executeQuery(COMMIT);
      return result;
    } catch (error) {
      await conn.executeQuery(ROLLBACK).catch(() => undefined);
      throw error;
    } finally {
      holding?.();
    }
  });
}

// Connections of this process inside a writeTransaction, by SQLite file.
const holders = new Map<string, Set<SqliteConnection>>();

function hold(file: string, connection: SqliteConnection): () => void {
  const set = holders.get(file) ?? new Set<SqliteConnection>();
  holders.set(file, set);
  set.add(connection);
  return () => {
    set.delete(connection);
    if (set.size === 0) holders.delete(file);
  };
}

function heldInProcess(file: string, connection: SqliteConnection): boolean {
  const set = holders.get(file);
  return set !== undefined && (set.size > 1 || !set.has(connection));
}

/**
 * `BEGIN IMMEDIATE` on a connection `openDatabase` opened, for a synchronous hot path that has a
 * slower path to fall back on: `false`, having done nothing, when the lock is held by another
 * connection of this process in a `writeTransaction` (waiting for it here would block it) or,
 * after the usual `busy_timeout`, by another process.
 */
export function tryBeginImmediate(connection: SqliteConnection): boolean {
  const file = sqliteFileOf(connection);
  if (file && heldInProcess(file, connection)) return false;
  try {
    connection.prepare('begin immediate').run();
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'SQLITE_BUSY') return false;
    throw error;
  }
}

/** `BEGIN IMMEDIATE` with the busy handler off: SQLITE_BUSY at once when the lock is held. */
function beginNow(connection: SqliteConnection): void {
  connection.prepare('pragma busy_timeout = 0').get();
  try {
    connection.prepare('begin immediate').run();
  } finally {
    connection.prepare(`pragma busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`).get();
  }
}

/**
 * `BEGIN IMMEDIATE`, polling for the lock (1, 2, 4 … 32 ms apart, for as long as `busy_timeout`
 * would have waited; then SQLITE_BUSY as before) while another connection of this process holds
 * it, with plain waits once none does. Returns the release of its registration as a holder, made
 * in the step that took the lock.
 */
async function beginOffThread(connection: SqliteConnection, file: string): Promise<() => void> {
  const deadline = performance.now() + SQLITE_BUSY_TIMEOUT_MS;
  for (let pause = 1; ; pause = Math.min(pause * 2, 32)) {
    if (!heldInProcess(file, connection)) {
      connection.prepare('begin immediate').run();
      return hold(file, connection);
    }
    if (performance.now() >= deadline) {
      beginNow(connection);
      return hold(file, connection);
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
