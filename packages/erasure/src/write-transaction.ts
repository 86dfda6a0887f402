import { retryWriteConflicts, writeTransaction as coreWriteTransaction } from '@privacykit/core/db';
import type { Kysely } from 'kysely';
import { erasureError } from './errors.js';

/** How often a transaction that lost to a concurrent one is run again before giving up. */
const ATTEMPTS = 5;

/**
 * A transaction that will write (core's `writeTransaction`: SQLite `BEGIN IMMEDIATE`), run again
 * whole when it lost to a concurrent one (`retried`).
 */
export async function writeTransaction<R>(
  db: Kysely<any>,
  work: (trx: Kysely<any>) => Promise<R>,
): Promise<R> {
  return retried(() => coreWriteTransaction(db, work));
}

/**
 * `work` run again, whole, while it loses to concurrent writers (core's `isWriteConflict`); after
 * ATTEMPTS losses `erasure/write-conflict`, with the last loss as its cause.
 */
export async function retried<R>(work: () => Promise<R>): Promise<R> {
  return retryWriteConflicts(work, {
    attempts: ATTEMPTS,
    giveUp: (error) =>
      erasureError(
        'erasure/write-conflict',
        `the write lost to concurrent ones ${ATTEMPTS} times in a row and was rolled back each time: nothing was stored; try again`,
        { cause: error, details: { attempts: ATTEMPTS } },
      ),
  });
}
