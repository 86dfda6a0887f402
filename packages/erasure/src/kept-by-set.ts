import type { DataMapTable, RetentionRule } from '@privacykit/core';
import { engineOf, subjectRowsQuery } from '@privacykit/core/db';
import type { SubjectScope } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';
import { factValue, retainUntil } from './retain-until.js';

/** Combinations of reference and fact values read at most (each one a parent's claim). */
const MAX_COMBINATIONS = 1000;
/** Distinct fact values at most (each one a `CASE` branch computing the retain-until date). */
const MAX_FACT_VALUES = 200;

/** The subject's rows of a table grouped by their references and fact value. */
export interface KeptCombination {
  /** The reference columns' values (and the fact column's). */
  values: Record<string, unknown>;
  until?: string;
  rows: number;
}

export interface KeptBySet {
  rows: number;
  combos: KeptCombination[];
  /** The retain-until date of each row in SQL: `CASE` over the fact column's distinct values. */
  untilOf: (table: string) => RawBuilder<string | null>;
}

function plain(value: unknown): value is string | number {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * `sum(…)` of the subject's rows whose key's text in SQL (`cast(k as text)`) could differ from
 * the plan's `String(k)`: 0 when every key is an integer or text (SQLite, PostgreSQL).
 */
export function oddKeysSum(engine: string, pk: RawBuilder<unknown> | ReturnType<typeof sql.ref>) {
  return engine === 'sqlite'
    ? sql<number>`sum(case when typeof(${pk}) in ('integer', 'text') then 0 else 1 end)`
    : sql<number>`sum(case when pg_typeof(${pk})::text in ('integer', 'bigint', 'smallint', 'text', 'character varying', 'uuid') then 0 else 1 end)`;
}

/** The key's text as the plan writes it (see `oddKeysSum` for when they agree). */
export function keyText(table: DataMapTable): RawBuilder<string> {
  return sql<string>`cast(${sql.ref(`${table.name}.${table.primaryKey[0]!}`)} as text)`;
}

/**
 * Whether the subject's rows of a single-key table can be matched with the plan's kept keys in
 * SQL: SQLite or PostgreSQL, and every key an integer or text.
 */
export async function keysMatchInSql(scope: SubjectScope, table: DataMapTable): Promise<boolean> {
  const engine = engineOf(scope.db);
  if (engine === 'mysql' || table.primaryKey.length !== 1) return false;
  const pk = sql.ref(`${table.name}.${table.primaryKey[0]!}`);
  const row = (await subjectRowsQuery(scope, table.name)
    .select(oddKeysSum(engine, pk).as('odd'))
    .executeTakeFirst()) as { odd: unknown } | undefined;
  return Number(row?.odd ?? 0) === 0;
}

/**
 * A table whose subject rows one retention rule keeps, all of them, planned without reading its
 * rows: one grouped query gives the count, the parents' references (anchor claims) and the
 * distinct values of the rule's fact, so each retain-until date is computed once per value.
 * `undefined` when it cannot be done exactly so (MySQL, a composite key, a key whose text in SQL
 * could differ from the plan's, too many combinations, fact values that are not plain text or
 * numbers): the caller reads the rows instead.
 */
export async function keptBySet(
  scope: SubjectScope,
  table: DataMapTable,
  options: { rule: RetentionRule; fact: [string, string] | undefined; zone: string },
): Promise<KeptBySet | undefined> {
  const engine = engineOf(scope.db);
  if (engine === 'mysql' || table.primaryKey.length !== 1) return undefined;
  const name = table.name;
  const pk = sql.ref(`${name}.${table.primaryKey[0]!}`);
  // The key's text in SQL (`cast(k as text)`) equals the plan's `String(k)` for integers and text.
  const oddKeys = oddKeysSum(engine, pk);
  const factColumn = options.fact?.[1];
  const columns = [
    ...new Set([...table.references.map((r) => r.column), ...(factColumn ? [factColumn] : [])]),
  ];
  let query = subjectRowsQuery(scope, name)
    .select(columns.map((column) => `${name}.${column}`))
    .select([sql<number>`count(*)`.as('__privacykit_rows'), oddKeys.as('__privacykit_odd')]);
  for (const column of columns) query = query.groupBy(`${name}.${column}`);
  const groups = (await query.limit(MAX_COMBINATIONS + 1).execute()) as Record<string, unknown>[];
  if (groups.length > MAX_COMBINATIONS) return undefined;

  const untilByValue = new Map<string, { value: string | number | null; until?: string }>();
  const combos: KeptCombination[] = [];
  let rows = 0;
  for (const group of groups) {
    const n = Number(group.__privacykit_rows);
    if (n === 0) continue;
    if (Number(group.__privacykit_odd) > 0) return undefined;
    const raw = factColumn ? group[factColumn] : null;
    if (raw !== null && raw !== undefined && !plain(raw)) return undefined;
    const value = raw ?? null;
    const memo = `${typeof value}:${String(value)}`;
    let entry = untilByValue.get(memo);
    if (!entry) {
      const facts = options.fact ? { [options.fact[0]]: factValue(value, options.zone) } : {};
      const until = retainUntil(options.rule, facts);
      entry = { value, ...(until ? { until } : {}) };
      untilByValue.set(memo, entry);
      if (untilByValue.size > MAX_FACT_VALUES) return undefined;
    }
    rows += n;
    const values: Record<string, unknown> = {};
    for (const column of columns) values[column] = group[column];
    combos.push({ values, ...(entry.until ? { until: entry.until } : {}), rows: n });
  }
  const dated = [...untilByValue.values()].filter((entry) => entry.until !== undefined);
  const untilOf = (tableName: string): RawBuilder<string | null> => {
    if (!factColumn) {
      const until = dated[0]?.until ?? null;
      return sql<string | null>`cast(${until} as text)`;
    }
    if (dated.length === 0) return sql<string | null>`cast(${null} as text)`;
    const ref = sql.ref(`${tableName}.${factColumn}`);
    const branches = dated
      .filter((entry) => entry.value !== null)
      .map((entry) => sql`when ${ref} = ${entry.value} then cast(${entry.until!} as text)`);
    const nullUntil = dated.find((entry) => entry.value === null)?.until;
    const whenNull = nullUntil ? sql`when ${ref} is null then cast(${nullUntil} as text) ` : sql``;
    return sql<string | null>`case ${whenNull}${sql.join(branches, sql` `)} end`;
  };
  return { rows, combos, untilOf };
}
