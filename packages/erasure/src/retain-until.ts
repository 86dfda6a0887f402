import { formatCivilDate, parseCivilDate, parsePeriod } from '@privacykit/core';
import type { CivilDay, DueExpression, FactValue, RetentionCondition, RetentionRule } from '@privacykit/core';
// One subpath per function: the root `date-fns` loads its ~250 modules, seconds at start-up on Node 22.
import { add } from 'date-fns/add';
import { lastDayOfMonth } from 'date-fns/lastDayOfMonth';

const civilMonth = /^\d{4}-\d{2}$/;
const instant = /^\d{4}-\d{2}-\d{2}T/;

function civilInZone(date: Date, zone: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: zone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(date);
}

/**
 * A row's column value as a rule fact: civil dates (`YYYY-MM-DD`) and months (`YYYY-MM`) as
 * they are; instants (ISO text with a time, or a `Date` that is not a driver's local midnight
 * for a SQL `date`) as the civil date in `zone`; other values unchanged.
 */
export function factValue(value: unknown, zone: string): FactValue {
  if (value === null || value === undefined) return undefined;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) return undefined;
    const midnight = value.getHours() === 0 && value.getMinutes() === 0 && value.getSeconds() === 0;
    return midnight ? formatCivilDate(value) : civilInZone(value, zone);
  }
  if (typeof value === 'string' && instant.test(value)) {
    const parsed = new Date(value);
    return Number.isNaN(parsed.getTime()) ? undefined : civilInZone(parsed, zone);
  }
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return String(value);
}

/**
 * A civil date or month as core's CivilDay (a month stands for its first day), or its month's
 * last day. CivilDay keeps date-fns off the process time zone: a local `Date` lost days a zone
 * skipped (`TZ=Pacific/Apia` has no 2011-12-30) and so moved due dates.
 */
function toCivilDay(text: string, endOfMonth: boolean): CivilDay | undefined {
  const day = parseCivilDate(civilMonth.test(text) ? `${text}-01` : text);
  if (!day) return undefined;
  return endOfMonth ? lastDayOfMonth(day) : day;
}

/** A value fact as the text a condition compares, as `@privacykit/retention` reads it. */
function factText(value: FactValue | string | number | boolean): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? '1' : '0';
  return undefined;
}

/**
 * Whether a fact equals a condition's value, exactly as `@privacykit/retention` decides it
 * (`factEquals`), so the date told to the subject is the one the sweep acts on: compared as
 * text, a flag stored as 1/0 (or '1'/'0') equals `true`/`false`, a number equals its text ('1',
 * not '01'), and nothing else converts ('abc' is not 0).
 */
function factEquals(value: FactValue, expected: string | number | boolean): boolean {
  const text = factText(value);
  return text !== undefined && text === factText(expected);
}

function holds(condition: RetentionCondition, facts: Readonly<Record<string, FactValue>>): boolean {
  if ('all' in condition) return condition.all.every((c) => holds(c, facts));
  if ('any' in condition) return condition.any.some((c) => holds(c, facts));
  if ('not' in condition) return !holds(condition.not, facts);
  const value = facts[condition.fact];
  // Present as retention's planner counts a value fact: stored, an empty string included.
  if ('present' in condition) return (value !== undefined && value !== null) === condition.present;
  if ('equals' in condition) return factEquals(value, condition.equals);
  return condition.in.some((candidate) => factEquals(value, candidate));
}

/**
 * The civil date a due expression gives for a record's facts, or `undefined` when its trigger
 * is missing. Calendar rules: months first then days, month-end clamp (Jan 31 + P1M = Feb 28/29),
 * every period counted from its own trigger (never chained).
 */
export function dueDate(
  expression: DueExpression,
  facts: Readonly<Record<string, FactValue>>,
): string | undefined {
  if ('from' in expression) {
    const trigger = facts[expression.from];
    if (typeof trigger !== 'string') return undefined;
    const start = toCivilDay(trigger, expression.endOfMonth ?? false);
    if (!start) return undefined;
    if (!expression.after) return formatCivilDate(start);
    const period = parsePeriod(expression.after);
    // date-fns `add` applies years and months first (clamping to the month's end), then days.
    return formatCivilDate(add(start, period));
  }
  if ('earliest' in expression || 'latest' in expression) {
    const members = 'earliest' in expression ? expression.earliest : expression.latest;
    const dates = members.map((member) => dueDate(member, facts)).filter((d): d is string => d !== undefined);
    if (dates.length === 0) return undefined;
    dates.sort();
    return 'earliest' in expression ? dates[0] : dates[dates.length - 1];
  }
  for (const branch of expression.when) {
    if (holds(branch.if, facts)) return dueDate(branch.then, facts);
  }
  return expression.otherwise ? dueDate(expression.otherwise, facts) : undefined;
}

/**
 * Until when a rule keeps a record through an erasure request: the due date of its first
 * `delete` or `anonymise` phase (the end of the retention), or `undefined` when that cannot be
 * computed from the facts (the record is then kept until reviewed).
 */
export function retainUntil(
  rule: RetentionRule,
  facts: Readonly<Record<string, FactValue>>,
): string | undefined {
  const ends = rule.phases
    .filter((phase) => phase.action === 'delete' || phase.action === 'anonymise')
    .map((phase) => dueDate(phase.due, facts))
    .filter((d): d is string => d !== undefined)
    .sort();
  return ends[0];
}
