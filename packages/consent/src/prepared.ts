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
 * it from row-major arrays. Bulk paths insert thousands of rows: building and compiling them
 * with the query builder on every chunk cost more than the database work.
 */
export interface PreparedRows {
  sql: string;
  width: number;
  count: number;
  slots: ({ index: number } | { value: unknown })[];
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
    slots: compiled.parameters.map((value) =>
      typeof value === 'string' && value.startsWith(MARK)
        ? { index: Number(value.slice(MARK.length)) }
        : { value },
    ),
  };
}

export function runRows(db: Kysely<any>, query: PreparedRows, rows: readonly (readonly unknown[])[]) {
  if (rows.length !== query.count) throw new Error(`prepared for ${query.count} rows, got ${rows.length}`);
  const { width } = query;
  const parameters = query.slots.map((slot) =>
    'index' in slot
      ? (rows[Math.floor(slot.index / width)] as readonly unknown[])[slot.index % width]
      : slot.value,
  );
  return db.executeQuery(CompiledQuery.raw(query.sql, parameters));
}
