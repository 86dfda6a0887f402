import { CompiledQuery } from 'kysely';
import type { Kysely } from 'kysely';
import { engineOf } from './engine.js';

const BEGIN_IMMEDIATE = CompiledQuery.raw('begin immediate');
const COMMIT = CompiledQuery.raw('commit');
const ROLLBACK = CompiledQuery.raw('rollback');

/**
 * Runs `work` in a transaction that will write. SQLite: `BEGIN IMMEDIATE` takes the database's
 * write lock before the first read, so a second process queues on `busy_timeout` and reads what
 * the first committed, instead of failing a read-to-write lock upgrade with "database is locked".
 * PostgreSQL / MySQL: an ordinary transaction, whose reads that decide a write must lock
 * (`FOR UPDATE`, an advisory lock) or whose writes must be conditional on what was read.
 */
export async function writeTransaction<DB, R>(
  db: Kysely<DB>,
  work: (trx: Kysely<DB>) => Promise<R>,
): Promise<R> {
  if (engineOf(db) !== 'sqlite') return db.transaction().execute(work);
  return db.connection().execute(async (conn) => {
    await conn.executeQuery(BEGIN_IMMEDIATE);
    try {
      const result = await work(conn);
      await conn.executeQuery(COMMIT);
      return result;
    } catch (error) {
      await conn.executeQuery(ROLLBACK).catch(() => undefined);
      throw error;
    }
  });
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
