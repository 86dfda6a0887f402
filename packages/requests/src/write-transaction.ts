import { engineOf } from '@privacykit/core/db';
import { CompiledQuery } from 'kysely';
import type { Kysely } from 'kysely';

const BEGIN_IMMEDIATE = CompiledQuery.raw('begin immediate');
const COMMIT = CompiledQuery.raw('commit');
const ROLLBACK = CompiledQuery.raw('rollback');

/**
 * Runs `work` in a transaction that will write. SQLite: `BEGIN IMMEDIATE` takes the database's
 * write lock before the first read, so two processes on one file queue on `busy_timeout` (and the
 * second reads what the first committed) instead of failing a read-to-write lock upgrade with
 * "database is locked". PostgreSQL / MySQL: an ordinary transaction.
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
 * A write that lost to a concurrent transaction and is worth running again: a unique key
 * violation, or a deadlock the engine broke by rolling this transaction back.
 */
export function isWriteConflict(error: unknown): boolean {
  const { code, errno } = (error ?? {}) as { code?: unknown; errno?: unknown };
  return (
    code === '23505' || // PostgreSQL unique_violation
    code === '40P01' || // PostgreSQL deadlock_detected
    code === '40001' || // PostgreSQL serialization_failure
    code === 'ER_DUP_ENTRY' ||
    errno === 1062 ||
    code === 'ER_LOCK_DEADLOCK' ||
    errno === 1213 ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}
