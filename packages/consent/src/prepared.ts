import { CompiledQuery } from 'kysely';
import type { Compilable, Kysely, QueryResult } from 'kysely';

const MARK = '\u0001pk:';

/**
 * A query compiled once by kysely (so identifiers, placeholders and dialect syntax stay
 * kysely's) and then run many times with new parameters. The hot append path runs a handful of
 * statements per decision; compiling them afresh each time cost more than executing them.
 */
export interface PreparedQuery<K extends string> {
  sql: string;
  slots: ({ name: K } | { value: unknown })[];
}

/** Builds a query with named placeholders: `p('tenant')` stands where a value goes. */
export function prepare<K extends string>(build: (p: (name: K) => string) => Compilable): PreparedQuery<K> {
  const compiled = build((name) => `${MARK}${name}`).compile();
  return {
    sql: compiled.sql,
    slots: compiled.parameters.map((value) =>
      typeof value === 'string' && value.startsWith(MARK)
        ? { name: value.slice(MARK.length) as K }
        : { value },
    ),
  };
}

/** The positional parameters of a prepared query for these values. */
export function parametersOf<K extends string>(
  query: PreparedQuery<K>,
  values: Readonly<Record<K, unknown>>,
): unknown[] {
  return query.slots.map((slot) => ('name' in slot ? values[slot.name] : slot.value));
}

export function run<K extends string, R = Record<string, unknown>>(
  db: Kysely<any>,
  query: PreparedQuery<K>,
  values: Readonly<Record<K, unknown>>,
): Promise<QueryResult<R>> {
  return db.executeQuery<R>(CompiledQuery.raw(query.sql, parametersOf(query, values)));
}

/**
 * A multi-row statement compiled once for `count` rows of `width` values each; `runRows` fills
 * it from row objects. Bulk paths insert thousands of rows: building and compiling them with
 * the query builder on every chunk cost more than the database work.
 */
export interface PreparedRows {
  sql: string;
  width: number;
  count: number;
  /** Each parameter: column `column` of row `row`, or a constant of the statement. */
  slots: ({ row: number; column: number } | { row: undefined; value: unknown })[];
}

export function prepareRows(
  width: number,
  count: number,
  build: (rows: string[][]) => Compilable,
): PreparedRows {
  const rows = Array.from({ length: count }, (_, row) =>
    Array.from({ length: width }, (_, column) => `${MARK}${row * width + column}`),
  );
  const compiled = build(rows).compile();
  return {
    sql: compiled.sql,
    width,
    count,
    slots: compiled.parameters.map((value) => {
      if (typeof value !== 'string' || !value.startsWith(MARK)) return { row: undefined, value };
      const index = Number(value.slice(MARK.length));
      return { row: Math.floor(index / width), column: index % width };
    }),
  };
}

/**
 * Runs a multi-row statement over `query.count` rows from `from`, each row's values read by
 * `columns` (the statement's columns, in order). The parameters are read straight from the row
 * objects: no array per row.
 */
export function runRows(
  db: Kysely<any>,
  query: PreparedRows,
  columns: readonly string[],
  rows: readonly Readonly<Record<string, unknown>>[],
  from = 0,
) {
  if (columns.length !== query.width || rows.length - from < query.count) {
    throw new Error(
      `prepared for ${query.count} rows of ${query.width}, got ${rows.length - from} of ${columns.length}`,
    );
  }
  const { slots } = query;
  const parameters: unknown[] = new Array(slots.length);
  for (let k = 0; k < slots.length; k++) {
    const slot = slots[k] as PreparedRows['slots'][number];
    parameters[k] =
      slot.row === undefined
        ? slot.value
        : (rows[from + slot.row] as Record<string, unknown>)[columns[slot.column] as string];
  }
  return db.executeQuery(CompiledQuery.raw(query.sql, parameters));
}
