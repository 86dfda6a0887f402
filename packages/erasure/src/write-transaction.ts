import { engineOf } from '@privacykit/core/db';
import { CompiledQuery } from 'kysely';
import type { Kysely } from 'kysely';
import { erasureError } from './errors.js';

const BEGIN_IMMEDIATE = CompiledQuery.raw('begin immediate');
const COMMIT = CompiledQuery.raw('commit');
const ROLLBACK = CompiledQuery.raw('rollback');

/** How often a transaction that lost to a concurrent one is run again before giving up. */
const ATTEMPTS = 5;

/**
 * A transaction that will write. SQLite: `BEGIN IMMEDIATE` takes the database's write lock before
 * the first read, so a second process queues on `busy_timeout` and reads what the first
 * committed. PostgreSQL / MySQL: an ordinary transaction, whose reads that decide a write must
 * lock (`FOR UPDATE`, an advisory lock). Run again, whole, when the database broke a deadlock or a
 * serialization failure by rolling it back (`retried`).
 */
export async function writeTransaction<R>(
  db: Kysely<any>,
  work: (trx: Kysely<any>) => Promise<R>,
): Promise<R> {
  return retried(() => once(db, work));
}

async function once<R>(db: Kysely<any>, work: (trx: Kysely<any>) => Promise<R>): Promise<R> {
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

/**
 * `work` run again, whole, while it loses to concurrent writers (`isWriteConflict`); after
 * ATTEMPTS losses `erasure/write-conflict`, with the last loss as its cause.
 */
export async function retried<R>(work: () => Promise<R>): Promise<R> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isWriteConflict(error)) throw error;
      if (attempt >= ATTEMPTS) {
        throw erasureError(
          'erasure/write-conflict',
          `the write lost to concurrent ones ${ATTEMPTS} times in a row and was rolled back each time: nothing was stored; try again`,
          { cause: error, details: { attempts: ATTEMPTS } },
        );
      }
    }
  }
}
