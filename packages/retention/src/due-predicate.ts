import type { DueExpression, RetentionCondition } from '@privacykit/core';
import type { Engine } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { RawBuilder, SqlBool } from 'kysely';
import {
  addCivilDays,
  cutoffFor,
  endOfMonthCivil,
  monthOf,
  previousMonth,
  startOfCivilDay,
} from './civil-date.js';
import type { CivilDate } from './civil-date.js';
import type { FactColumn, ScheduleEntry } from './schedule.js';

export type Predicate = RawBuilder<SqlBool>;

export const always: Predicate = sql<SqlBool>`1 = 1`;
export const never: Predicate = sql<SqlBool>`1 = 0`;

export function and(parts: readonly Predicate[]): Predicate {
  if (parts.length === 0) return always;
  if (parts.length === 1) return parts[0] as Predicate;
  return sql<SqlBool>`(${sql.join(parts, sql` and `)})`;
}

export function or(parts: readonly Predicate[]): Predicate {
  if (parts.length === 0) return never;
  if (parts.length === 1) return parts[0] as Predicate;
  return sql<SqlBool>`(${sql.join(parts, sql` or `)})`;
}

export function not(part: Predicate): Predicate {
  return sql<SqlBool>`(not ${part})`;
}

/** The bound a civil-date comparison uses for one column format (see {@link duePredicate}). */
export interface Cutoff {
  fact: string;
  column: string;
  /** The latest trigger value that is due: `column <= value` (`<` for instants). */
  value: string;
  operator: '<=' | '<';
}

export interface PredicateContext {
  entry: ScheduleEntry;
  engine: Engine;
  today: CivilDate;
  /** Collects the cutoffs used, for the dry run's report. */
  cutoffs?: Cutoff[];
}

// Garbage and '' sort below these, so they are "missing", as the planner says.
const lowerBound = { date: '0001-01-01', instant: '0001-01-01', month: '0001-01' } as const;

function column(context: PredicateContext, fact: string): FactColumn & { ref: RawBuilder<unknown> } {
  const binding = context.entry.facts[fact];
  if (!binding) throw new Error(`fact "${fact}" is not bound`);
  return { ...binding, ref: sql.ref(`${context.entry.table}.${binding.column}`) };
}

function defined(context: PredicateContext, fact: string): Predicate {
  const { ref, format } = column(context, fact);
  if (format === 'value') return sql<SqlBool>`${ref} is not null`;
  return sql<SqlBool>`(${ref} is not null and ${ref} >= ${lowerBound[format]})`;
}

/**
 * The trigger bound for `{ from, after, endOfMonth }` due on `today`: the row is due iff its
 * trigger is at or before it. Exact inverse of the planner: `anchor + after <= today` iff
 * `anchor <= cutoffFor(today, after)`; an end-of-month anchor is due iff its month is at or
 * before the cutoff's month (the month before, unless the cutoff is a month end).
 */
function fromPredicate(
  expression: Extract<DueExpression, { from: string }>,
  context: PredicateContext,
): Predicate {
  const { ref, format, column: name } = column(context, expression.from);
  const cutoff = expression.after ? cutoffFor(context.today, expression.after) : context.today;
  let bound: string;
  let operator: '<=' | '<' = '<=';
  if (expression.endOfMonth) {
    const month = endOfMonthCivil(cutoff) === cutoff ? monthOf(cutoff) : previousMonth(monthOf(cutoff));
    const lastDay = endOfMonthCivil(`${month}-01`);
    if (format === 'month') bound = month;
    else if (format === 'instant') {
      bound = startOfCivilDay(addCivilDays(lastDay, 1), context.entry.zone).toISOString();
      operator = '<';
    } else bound = lastDay;
  } else if (format === 'month') {
    bound = monthOf(cutoff);
  } else if (format === 'instant') {
    bound = startOfCivilDay(addCivilDays(cutoff, 1), context.entry.zone).toISOString();
    operator = '<';
  } else {
    bound = cutoff;
  }
  context.cutoffs?.push({ fact: expression.from, column: name, value: bound, operator });
  const compare = operator === '<' ? sql<SqlBool>`${ref} < ${bound}` : sql<SqlBool>`${ref} <= ${bound}`;
  return and([defined(context, expression.from), compare]);
}

/** A condition's literal as the text it matches (see `factText` in the planner). */
function literalText(value: string | number | boolean): string {
  return typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
}

/**
 * A value column as the text the planner compares (`factText`): its characters for text, the
 * shortest decimal for a number, 1/0 for a boolean. Comparing this text, never the column
 * against a number, keeps each engine's implicit conversions out: MySQL would take 'abc' = 0 and
 * '01' = 1, SQLite binds a JS number as a REAL and compares a TEXT column with '0.0', PostgreSQL
 * fails on an integer column against 'abc'.
 */
function valueText(ref: RawBuilder<unknown>, engine: Engine): RawBuilder<string> {
  switch (engine) {
    case 'sqlite':
      // A REAL holding a whole number reads back as a JS integer: 1.0 is "1", as String(1).
      return sql<string>`(case when typeof(${ref}) = 'real' and ${ref} = cast(${ref} as integer) then cast(cast(${ref} as integer) as text) else cast(${ref} as text) end collate binary)`;
    case 'postgres':
      return sql<string>`((case when pg_typeof(${ref}) = 'boolean'::regtype then (case when ${ref}::text = 'true' then '1' else '0' end) else ${ref}::text end) collate "C")`;
    case 'mysql':
      // MySQL's default collations fold case and pad spaces: compare the bytes.
      return sql<string>`binary ${ref}`;
  }
}

/** A condition as a two-valued SQL predicate (never NULL, so `not` means what it says). */
export function conditionPredicate(condition: RetentionCondition, context: PredicateContext): Predicate {
  if ('all' in condition) return and(condition.all.map((c) => conditionPredicate(c, context)));
  if ('any' in condition) return or(condition.any.map((c) => conditionPredicate(c, context)));
  if ('not' in condition) return not(conditionPredicate(condition.not, context));
  if ('present' in condition) {
    const present = defined(context, condition.fact);
    return condition.present ? present : not(present);
  }
  const { ref } = column(context, condition.fact);
  const values = 'equals' in condition ? [condition.equals] : condition.in;
  const texts = [...new Set(values.map(literalText))];
  const candidates =
    context.engine === 'mysql' ? texts.map((text) => sql`binary ${text}`) : texts.map((text) => sql`${text}`);
  return sql<SqlBool>`(${ref} is not null and ${valueText(ref, context.engine)} in (${sql.join(candidates)}))`;
}

/** "The expression gives a date" (its triggers are present), as SQL. */
export function definedPredicate(expression: DueExpression, context: PredicateContext): Predicate {
  if ('from' in expression) return defined(context, expression.from);
  if ('earliest' in expression) return or(expression.earliest.map((e) => definedPredicate(e, context)));
  if ('latest' in expression) return or(expression.latest.map((e) => definedPredicate(e, context)));
  return firstMatch(expression, context, (e) => definedPredicate(e, context));
}

function firstMatch(
  expression: Extract<DueExpression, { when: unknown }>,
  context: PredicateContext,
  inner: (expression: DueExpression) => Predicate,
): Predicate {
  const cases: Predicate[] = [];
  const previous: Predicate[] = [];
  for (const branch of expression.when) {
    const holds = conditionPredicate(branch.if, context);
    cases.push(and([...previous.map(not), holds, inner(branch.then)]));
    previous.push(holds);
  }
  if (expression.otherwise) cases.push(and([...previous.map(not), inner(expression.otherwise)]));
  return or(cases);
}

/**
 * "Due on or before `today`" for a due expression, as one SQL predicate over the bound columns,
 * agreeing with {@link planRetention} row for row: dates are computed here in TypeScript and
 * compared as text in SQL, never computed by the engine. `earliest` is due when any present
 * member is; `latest` when every present member is and one is present; `when` follows the
 * first case whose condition holds.
 */
export function duePredicate(expression: DueExpression, context: PredicateContext): Predicate {
  if ('from' in expression) return fromPredicate(expression, context);
  if ('earliest' in expression) return or(expression.earliest.map((e) => duePredicate(e, context)));
  if ('latest' in expression) {
    const members = expression.latest;
    return and([
      ...members.map((e) => or([not(definedPredicate(e, context)), duePredicate(e, context)])),
      or(members.map((e) => definedPredicate(e, context))),
    ]);
  }
  return firstMatch(expression, context, (e) => duePredicate(e, context));
}
