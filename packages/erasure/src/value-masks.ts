import type { DataMapTable } from '@privacykit/core';
import { engineOf, subjectRowsQuery } from '@privacykit/core/db';
import type { SubjectScope } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { Expression, ExpressionBuilder, RawBuilder, SqlBool } from 'kysely';
import { looksMasked, maskValue, sameValue } from './strategy.js';
import type { ColumnStrategy, ErasureSecrets } from './strategy.js';

/**
 * Distinct values per column up to which masking is done in SQL. Beyond it (free text,
 * per-row values) rows go through the client in pages.
 */
export const MAX_DISTINCT_VALUES = 1000;
/** `CASE` branches per column at most (each row is compared with them in turn). */
const MAX_BRANCHES = 200;

/** Strategies whose result depends on the value alone (not on the row's key): equal values mask alike. */
const valueOnly = new Set<ColumnStrategy['strategy']>(['set-null', 'hmac', 'redact', 'generalise']);

/** One column's masking as SQL: each distinct value of the subject's rows → its masked value. */
export interface ValueMask {
  column: string;
  /** `[value, masked]` for every value that changes (empty with `constant`). */
  branches: [string | number, string | number | null][];
  /**
   * Set when every value masks to this one value (a redaction, one identity's pseudonym):
   * then no branches are needed, only "not null".
   */
  constant?: { value: string | number | null };
}

function plain(value: unknown): value is string | number {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * Whether a table's masks can be done set-based: a single-column key (batches are key ranges),
 * value-only strategies, and an engine whose `=` compares exactly (MySQL's default collations
 * fold case and accents, so two values could meet one branch: it keeps the row-by-row path).
 */
export function setBasedMasking(
  scope: SubjectScope,
  table: DataMapTable,
  strategies: Record<string, ColumnStrategy>,
): boolean {
  return (
    engineOf(scope.db) !== 'mysql' &&
    table.primaryKey.length === 1 &&
    Object.values(strategies).every((strategy) => valueOnly.has(strategy.strategy))
  );
}

/**
 * Distinct values read at most for a plain `redact` (free text): it masks most text to one
 * replacement, so many values can still need no `CASE` branch at all.
 */
const MAX_REDACTED_DISTINCT_VALUES = 50_000;

/**
 * The one value a strategy writes whatever the input (`set-null`, `redact` with a text or
 * number replacement), or `undefined` when the result depends on the value.
 */
function independentValue(strategy: ColumnStrategy): { value: string | number | null } | undefined {
  if (strategy.strategy === 'set-null') return { value: null };
  if (strategy.strategy === 'redact' && strategy.replacement !== undefined) {
    const replacement = strategy.replacement;
    if (replacement === null || plain(replacement)) return { value: replacement };
  }
  return undefined;
}

async function distinctValues(
  scope: SubjectScope,
  table: DataMapTable,
  column: string,
  after: unknown,
  max = MAX_DISTINCT_VALUES,
): Promise<unknown[] | undefined> {
  const pk = `${table.name}.${table.primaryKey[0]!}`;
  let query = subjectRowsQuery(scope, table.name).select(`${table.name}.${column} as value`).distinct();
  if (after !== undefined) query = query.where(pk, '>', after);
  const rows = await query.limit(max + 1).execute();
  if (rows.length > max) return undefined;
  return rows.map((row) => (row as { value: unknown }).value);
}

/**
 * The masks of a table's remaining subject rows (key after `after`) as value → masked value
 * per column, computed from the distinct values in the database; `undefined` when a column has
 * too many distinct values or values that are not plain text or numbers (dates, bytes: their
 * round trip through parameters is engine-specific), so the caller pages rows instead.
 */
export async function valueMasks(
  scope: SubjectScope,
  table: DataMapTable,
  strategies: Record<string, ColumnStrategy>,
  options: { secrets: ErasureSecrets; after: unknown },
): Promise<ValueMask[] | undefined> {
  const masks: ValueMask[] = [];
  for (const [column, strategy] of Object.entries(strategies)) {
    const independent = independentValue(strategy);
    if (independent) {
      // Same value whatever the input: no need to read the values (rows already holding it
      // are left out by `holdsMaskedValue`, so a re-run changes nothing).
      masks.push({ column, branches: [], constant: independent });
      continue;
    }
    const values = await distinctValues(
      scope,
      table,
      column,
      options.after,
      strategy.strategy === 'redact' ? MAX_REDACTED_DISTINCT_VALUES : MAX_DISTINCT_VALUES,
    );
    if (!values) return undefined;
    const branches: ValueMask['branches'] = [];
    let constant: { value: string | number | null } | undefined;
    let uniform = true;
    for (const value of values) {
      if (value === null || value === undefined) continue;
      if (!plain(value)) return undefined;
      const masked = maskValue(value, strategy, {
        secrets: options.secrets,
        table: table.name,
        column,
        key: '',
      });
      if (masked !== null && !plain(masked)) return undefined;
      if (!sameValue(masked, value)) branches.push([value, masked]);
      if (!constant) constant = { value: masked };
      else if (!(masked === constant.value || (masked !== null && sameValue(masked, constant.value))))
        uniform = false;
    }
    // One value for all: no branches sent, only "not null" (and "not already it").
    if (branches.length > 0 && uniform && constant) masks.push({ column, branches: [], constant });
    else if (branches.length > MAX_BRANCHES || values.length > MAX_DISTINCT_VALUES) return undefined;
    else masks.push({ column, branches });
  }
  return masks;
}

/** Whether a mask can change a value: it has branches, or one value for all. */
function changes(mask: ValueMask): boolean {
  return mask.constant !== undefined || mask.branches.length > 0;
}

/** `set c = case when c = v1 then m1 … else c end` for each column with something to change. */
export function maskAssignments(
  masks: readonly ValueMask[],
  types: Map<string, string> | undefined,
): Record<string, RawBuilder<unknown>> {
  const set: Record<string, RawBuilder<unknown>> = {};
  for (const mask of masks) {
    if (!changes(mask)) continue;
    const { column, branches, constant } = mask;
    const ref = sql.ref(column);
    let expression: RawBuilder<unknown> = constant
      ? sql`case when ${ref} is not null then ${constant.value} end`
      : sql`case ${sql.join(
          branches.map(([value, masked]) => sql`when ${ref} = ${value} then ${masked}`),
          sql` `,
        )} else ${ref} end`;
    // PostgreSQL types a CASE over untyped parameters as text: cast it to the column's type.
    const type = types?.get(column);
    if (type) expression = sql`cast(${expression} as ${sql.raw(type)})`;
    set[column] = expression;
  }
  return set;
}

/** Rows holding at least one value that changes (so the update counts only rows it masks). */
export function holdsMaskedValue(
  table: DataMapTable,
  masks: readonly ValueMask[],
): (eb: ExpressionBuilder<any, any>) => Expression<SqlBool> {
  return (eb) =>
    eb.or(
      masks.filter(changes).map((mask) => {
        const ref = eb.ref(`${table.name}.${mask.column}`);
        if (!mask.constant) {
          return eb(
            ref,
            'in',
            mask.branches.map(([value]) => value),
          );
        }
        const value = mask.constant.value;
        return value === null
          ? eb(ref, 'is not', null)
          : eb.and([eb(ref, 'is not', null), eb(ref, '<>', value)]);
      }),
    );
}

/**
 * Verification without reading rows: whether every distinct value left in the subject's rows
 * of each column looks masked. `undefined` when there are too many distinct values (the caller
 * then checks row by row, which also names the rows).
 */
export async function distinctValuesLookMasked(
  scope: SubjectScope,
  table: DataMapTable,
  strategies: Record<string, ColumnStrategy>,
  context: { secrets: ErasureSecrets; identities: ReadonlySet<string> },
): Promise<boolean | undefined> {
  for (const [column, strategy] of Object.entries(strategies)) {
    const values = await distinctValues(scope, table, column, undefined);
    if (!values) return undefined;
    for (const value of values) {
      const ok = looksMasked(value, strategy, {
        secrets: context.secrets,
        table: table.name,
        column,
        key: '',
        identities: context.identities,
      });
      if (!ok) return false;
    }
  }
  return true;
}
