import { retentionError } from './errors.js';

/** A lost race worth running again, whole: a busy or stale SQLite snapshot, a deadlock, a serialization failure, a key taken first. */
export function transient(error: unknown): boolean {
  const e = error as { code?: string; errno?: number };
  return (
    e?.code === 'SQLITE_BUSY' ||
    e?.code === 'SQLITE_BUSY_SNAPSHOT' ||
    e?.code === '40001' ||
    e?.code === '40P01' ||
    e?.code === '23505' ||
    e?.code === 'ER_LOCK_DEADLOCK' ||
    e?.code === 'ER_DUP_ENTRY' ||
    e?.errno === 1213
  );
}

/**
 * `work` (a whole transaction) run again after a short, growing pause while it loses to
 * concurrent writers; after `attempts` losses `retention/write-conflict`, the last loss its cause.
 */
export async function withRetry<T>(work: () => Promise<T>, attempts = 8): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!transient(error)) throw error;
      if (attempt >= attempts) {
        throw retentionError(
          'retention/write-conflict',
          `lost to concurrent writers ${attempts} times in a row and rolled back each time: nothing of this batch was stored; run it again`,
          { cause: error, details: { attempts } },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 5 * attempt + Math.random() * 20));
    }
  }
}
