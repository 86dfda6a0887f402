import { sql } from 'kysely';
import type {
  Compilable,
  CompiledQuery,
  Expression,
  ExpressionBuilder,
  Kysely,
  SelectQueryBuilder,
  SqlBool,
} from 'kysely';
import { categoryCovers } from '../categories.js';
import { PrivacyKitError } from '../errors.js';
import { normaliseIdentity } from '../data-map.js';
import type { DataMap, DataMapTable } from '../data-map.js';
import { engineOf } from './engine.js';
import { restoreBusyTimeout, sqliteConnectionOf, sqliteTransactionConnectionOf } from './open.js';
import type { SqliteConnection } from './open.js';

/** Identity kind → the values the subject is known by (`{ email: ['ada@example.com'] }`). */
export type SubjectIdentities = Readonly<Record<string, readonly string[]>>;

export interface SubjectScope {
  db: Kysely<any>;
  dataMap: DataMap;
  identities: SubjectIdentities;
  /** Rows of other tenants are never matched when tables carry a tenant column. */
  tenant?: string;
}

export interface SubjectRowsOptions extends SubjectScope {
  /** Only these tables (default: every table of the map, parents first). */
  tables?: readonly string[];
  /**
   * Only tables holding these categories, and of them only the primary key, the matching columns
   * and the references to another table read with the same categories (so the rows still link).
   */
  categories?: readonly string[];
  /** Rows read per query (keyset pagination): memory stays flat in the number of rows. */
  batchSize?: number;
}

export interface SubjectRow {
  table: string;
  row: Record<string, unknown>;
}

function table(map: DataMap, name: string): DataMapTable {
  const found = map.tables.get(name);
  if (!found) throw new PrivacyKitError('data-map/unknown-table', `unknown table "${name}"`);
  return found;
}

function normalisedIdentities(map: DataMap, identities: SubjectIdentities): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [kind, values] of Object.entries(identities)) {
    out.set(
      kind,
      values.map((value) => normaliseIdentity(map, kind, value)).filter((value) => value.length > 0),
    );
  }
  return out;
}

/**
 * The condition "this row of `tableName` belongs to the subject", as one SQL expression: an
 * identity column matches, or a reference points into the parent's subject rows (a nested
 * `IN (SELECT …)`, set-based, however deep the path). On MySQL, whose default collations fold
 * case and accents, identities are also compared as binary so `Alice@` never matches `alice@`
 * by accident of collation.
 */
export function subjectCondition(
  scope: SubjectScope,
  tableName: string,
): (eb: ExpressionBuilder<any, any>) => Expression<SqlBool> {
  const ids = normalisedIdentities(scope.dataMap, scope.identities);
  const mysql = engineOf(scope.db) === 'mysql';
  const build = (
    name: string,
    alias: string,
    depth: number,
  ): ((eb: ExpressionBuilder<any, any>) => Expression<SqlBool>) => {
    const definition = table(scope.dataMap, name);
    return (eb) => {
      const alternatives: Expression<SqlBool>[] = [];
      for (const [kind, column] of Object.entries(definition.identities)) {
        const values = ids.get(kind) ?? [];
        if (values.length === 0) continue;
        const ref = eb.ref(`${alias}.${column}`);
        alternatives.push(
          mysql
            ? eb.and([
                eb(ref, 'in', values),
                eb(
                  sql`binary ${ref}`,
                  'in',
                  values.map((value) => sql`binary ${value}`),
                ),
              ])
            : eb(ref, 'in', values),
        );
      }
      for (const reference of definition.references) {
        const parent = table(scope.dataMap, reference.table);
        const key = reference.key ?? parent.primaryKey[0]!;
        const parentAlias = `p${depth + 1}_${reference.table}`;
        const inner = scope.db
          .selectFrom(`${reference.table} as ${parentAlias}`)
          .select(`${parentAlias}.${key}`)
          .where(build(reference.table, parentAlias, depth + 1));
        alternatives.push(eb(eb.ref(`${alias}.${reference.column}`), 'in', inner));
      }
      const subject = alternatives.length > 0 ? eb.or(alternatives) : sql<SqlBool>`1 = 0`;
      if (scope.tenant !== undefined && definition.tenantColumn) {
        // Byte for byte on MySQL too, whose default collations ignore case: tenant `acme` must
        // never see the rows of a tenant `Acme`.
        const column = eb.ref(`${alias}.${definition.tenantColumn}`);
        const sameTenant = mysql
          ? eb.and([
              eb(column, '=', scope.tenant),
              eb(sql`binary ${column}`, '=', sql`binary ${scope.tenant}`),
            ])
          : eb(column, '=', scope.tenant);
        return eb.and([sameTenant, subject]);
      }
      return subject;
    };
  };
  return build(tableName, tableName, 0);
}

/**
 * A query selecting the subject's rows of one table, for callers to narrow, project, count,
 * or use as a subquery (`where pk in (…)`) in a set-based update or delete.
 */
export function subjectRowsQuery(scope: SubjectScope, tableName: string) {
  return scope.db.selectFrom(tableName).where(subjectCondition(scope, tableName));
}

function matchingColumns(definition: DataMapTable, categories: readonly string[]): string[] {
  return Object.entries(definition.columns)
    .filter(([, held]) =>
      held.some((category) => categories.some((wanted) => categoryCovers(wanted, category))),
    )
    .map(([column]) => column);
}

function columnsFor(
  map: DataMap,
  definition: DataMapTable,
  categories: readonly string[] | undefined,
): string[] | undefined {
  if (!categories) return undefined;
  const matching = matchingColumns(definition, categories);
  if (matching.length === 0) return [];
  // A reference to a parent read with the same categories keeps its rows linked to the parent's
  // (an order line to its order); one to a parent left out would point at nothing read.
  const links = definition.references
    .filter((reference) => {
      const parent = table(map, reference.table);
      const parentColumns = matchingColumns(parent, categories);
      const key = reference.key ?? parent.primaryKey[0];
      return (
        parentColumns.length > 0 &&
        key !== undefined &&
        (parent.primaryKey.includes(key) || parentColumns.includes(key))
      );
    })
    .map((reference) => reference.column);
  return [...new Set([...definition.primaryKey, ...matching, ...links])];
}

const rowidAlias = '__privacykit_rowid';

/**
 * Every row of the subject across the data map, parents first, found from the subject's
 * identities along the declared foreign keys — the one traversal that subject-access, erasure
 * and retention share (Art 15, 17, 5(1)(e)). Memory stays flat however many rows the subject
 * has: PostgreSQL (with pg-cursor) and MySQL stream each table through one server-side cursor,
 * so the subject's row set is computed once per table; SQLite, whose single connection a cursor
 * would hold, pages by primary key (or rowid) instead.
 */
export async function* subjectRows(options: SubjectRowsOptions): AsyncGenerator<SubjectRow> {
  const { dataMap, batchSize = 1000 } = options;
  const streaming = engineOf(options.db) !== 'sqlite';
  for (const name of options.tables ?? dataMap.order) {
    const definition = table(dataMap, name);
    const columns = columnsFor(dataMap, definition, options.categories);
    if (columns && columns.length === 0) continue;
    const base = subjectRowsQuery(options, name);
    const selected = columns
      ? base.select(columns.map((column) => `${name}.${column}`))
      : base.selectAll(name);
    if (streaming) {
      const ordered = definition.primaryKey.reduce(
        (query, column) => query.orderBy(`${name}.${column}`),
        selected,
      );
      const rows = streamOrNull(ordered.stream(batchSize));
      const first = await rows.next();
      if (first.value !== cursorMissing) {
        if (!first.done) yield { table: name, row: first.value as Record<string, unknown> };
        for await (const row of rows) yield { table: name, row: row as Record<string, unknown> };
        continue;
      }
      // PostgreSQL without pg-cursor: page by key like SQLite.
    }
    yield* pageByKey(options.db, name, definition.primaryKey, selected, batchSize);
  }
}

const cursorMissing = Symbol('cursor-missing');

async function* streamOrNull(rows: AsyncIterableIterator<unknown>): AsyncGenerator<unknown> {
  try {
    const first = await rows.next();
    if (first.done) return;
    yield first.value;
  } catch (error) {
    if (error instanceof Error && /cursor/i.test(error.message)) {
      yield cursorMissing;
      return;
    }
    throw error;
  }
  yield* rows;
}

interface ExactPage {
  rows: Record<string, unknown>[];
  keys: Record<string, unknown>[];
}

/**
 * A SQLite page read on the connection itself with exact integers, when `openDatabase` opened it:
 * the driver reads integers as numbers, so a key beyond 2^53 (a snowflake id) would come back
 * rounded, and the next page would resume from the wrong place — repeating rows, or skipping
 * them. Values come back as numbers while exact and as text beyond; `keys` keeps them exact.
 *
 * Each page is read while holding the connection as kysely hands it out (its driver's lock): the
 * connection is shared, so a transaction of the same instance that is open across an await
 * (`db.transaction()`, `writeTransaction`) would otherwise have its uncommitted rows read — rows
 * it may still roll back. The page waits for that transaction to end, as a kysely query does.
 */
function exactSqlitePage(db: Kysely<any>): ((query: Compilable) => Promise<ExactPage>) | undefined {
  // Inside a transaction, which holds the connection: read on it directly (waiting for the
  // connection as below would wait for the transaction itself; paging through kysely instead
  // looped for ever on keys beyond 2^53, resuming each page from the same rounded key).
  const held = sqliteTransactionConnectionOf(db);
  if (held) return async (query) => readExact(held, query.compile());
  const connection = sqliteConnectionOf(db);
  if (!connection) return undefined;
  return (query) =>
    db.connection().execute(async () => {
      restoreBusyTimeout(connection);
      return readExact(connection, query.compile());
    });
}

/** Runs `compiled` on `connection` with integers read exactly (see exactSqlitePage). */
function readExact(connection: SqliteConnection, compiled: CompiledQuery): ExactPage {
  const raw = connection
    .prepare(compiled.sql)
    .safeIntegers(true)
    .all(...compiled.parameters) as Record<string, unknown>[];
  const rows = raw.map((row) => {
    const out: Record<string, unknown> = {};
    for (const [column, value] of Object.entries(row)) {
      out[column] =
        typeof value === 'bigint'
          ? value >= Number.MIN_SAFE_INTEGER && value <= Number.MAX_SAFE_INTEGER
            ? Number(value)
            : value.toString()
          : value;
    }
    return out;
  });
  return { rows, keys: raw };
}

/**
 * Runs a query that returns rows (a select, or a write with RETURNING) with its integers exact on
 * every engine: on a SQLite database `openDatabase` opened — or a `writeTransaction`'s `trx` on
 * one — an integer beyond 2^53 comes back as its decimal text, as PostgreSQL and MySQL
 * connections it opened give it already, where the SQLite driver would round it to another
 * number. For keys a later statement must match: a rounded snowflake id names someone else's row.
 * Values within 2^53 come back as numbers, as from `query.execute()`.
 */
export async function selectExact(
  db: Kysely<any>,
  query: Compilable | CompiledQuery,
): Promise<Record<string, unknown>[]> {
  const compiled = 'sql' in query && 'parameters' in query ? query : (query as Compilable).compile();
  const page = exactSqlitePage(db);
  if (page) return (await page({ compile: () => compiled })).rows;
  return (await db.executeQuery(compiled)).rows as Record<string, unknown>[];
}

async function* pageByKey(
  db: Kysely<any>,
  name: string,
  primaryKey: readonly string[],
  // biome-ignore lint/suspicious/noExplicitAny: a query over the host's own, unknown schema
  selected: SelectQueryBuilder<any, any, any>,
  batchSize: number,
): AsyncGenerator<SubjectRow> {
  // Without a primary key, SQLite's rowid orders and resumes the pages.
  const key = primaryKey.length > 0 ? primaryKey.map((column) => `${name}.${column}`) : [`${name}.rowid`];
  const query = primaryKey.length > 0 ? selected : selected.select(sql.ref(`${name}.rowid`).as(rowidAlias));
  const keyOf = (row: Record<string, unknown>) =>
    primaryKey.length > 0 ? primaryKey.map((column) => row[column]) : [row[rowidAlias]];
  const exact = exactSqlitePage(db);
  let last: unknown[] | undefined;
  for (;;) {
    let page = query;
    if (last) {
      const after = last;
      page = page.where((eb) =>
        key.length === 1
          ? eb(eb.ref(key[0]!), '>', after[0])
          : eb(eb.refTuple(...(key as [string, string])), '>', eb.tuple(...(after as [unknown, unknown]))),
      );
    }
    const ordered = key.reduce((sorted, column) => sorted.orderBy(column), page).limit(batchSize);
    const read = exact ? await exact(ordered) : undefined;
    const rows = read ? read.rows : ((await ordered.execute()) as Record<string, unknown>[]);
    for (const row of rows) {
      if (primaryKey.length > 0) {
        yield { table: name, row };
      } else {
        const { [rowidAlias]: _rowid, ...rest } = row;
        yield { table: name, row: rest };
      }
    }
    if (rows.length < batchSize) break;
    const next = keyOf((read ? read.keys : rows)[rows.length - 1]!);
    // A page that ends where the one before did would be read again, for ever: a key the driver
    // rounded (beyond 2^53, on an instance this package cannot read exactly) or a NULL key part
    // (SQLite allows them outside INTEGER keys; `> NULL` is never true). Fail, do not loop.
    if (next.some((part) => part === null || part === undefined) || (last && sameKey(last, next))) {
      throw new PrivacyKitError(
        'database/inexact-keys',
        `cannot page through "${name}" by its primary key: a key ${next.some((part) => part === null || part === undefined) ? 'has a NULL part' : 'repeats (an integer beyond 2^53 read rounded: traverse the database openDatabase returned, or a transaction of it)'}`,
      );
    }
    last = next;
  }
}

function sameKey(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((part, i) => part === b[i] || String(part) === String(b[i]));
}

/** How many rows the subject has in each table (tables with none are omitted). */
export async function countSubjectRows(
  scope: SubjectScope,
  tables?: readonly string[],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const name of tables ?? scope.dataMap.order) {
    const result = await subjectRowsQuery(scope, name)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    const n = Number(result?.n ?? 0);
    if (n > 0) counts[name] = n;
  }
  return counts;
}
