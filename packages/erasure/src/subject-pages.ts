import { selectExact, subjectRowsQuery } from '@privacykit/core/db';
import type { SubjectScope } from '@privacykit/core/db';
import type { DataMapTable } from '@privacykit/core';

/**
 * One page of a subject's rows of a table in primary-key order after `after` (keyset
 * pagination), with the key and the given columns: bounded memory however many rows there are.
 * Integers beyond 2^53 come back as their decimal text (see `selectExact`).
 */
export async function subjectPage(
  scope: SubjectScope,
  table: DataMapTable,
  options: { columns: readonly string[]; after?: readonly unknown[] | undefined; limit: number },
): Promise<Record<string, unknown>[]> {
  const name = table.name;
  const pk = table.primaryKey;
  const columns = [...new Set([...pk, ...options.columns])];
  let query = subjectRowsQuery(scope, name).select(columns.map((column) => `${name}.${column}`));
  const after = options.after;
  if (after) {
    query = query.where((eb) =>
      pk.length === 1
        ? eb(eb.ref(`${name}.${pk[0]}`), '>', after[0])
        : eb(
            eb.refTuple(...(pk.map((column) => `${name}.${column}`) as [string, string])),
            '>',
            eb.tuple(...(after as [unknown, unknown])),
          ),
    );
  }
  for (const column of pk) query = query.orderBy(`${name}.${column}`);
  // Exact integers: a key beyond 2^53 read rounded (SQLite's driver) names another person's row.
  return selectExact(scope.db, query.limit(options.limit));
}
