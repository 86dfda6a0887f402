import type { DueExpression, RetentionAction, RetentionCondition, RetentionRule } from '@privacykit/core';
import {
  addPeriod,
  assertZone,
  civilDateOf,
  civilOfMonth,
  endOfMonthCivil,
  isCivilDate,
} from './civil-date.js';
import type { CivilDate } from './civil-date.js';
import { retentionError } from './errors.js';

/**
 * A record's facts as a rule reads them: civil dates `YYYY-MM-DD`, months `YYYY-MM`, ISO 8601
 * instants (turned into the civil date of the rule's zone), `Date`s, or plain values that
 * conditions test. `null`, `undefined` and `''` mean "not known": a missing trigger is not due.
 */
export type RetentionFacts = Readonly<Record<string, string | number | boolean | Date | null | undefined>>;

export interface PlanOptions {
  /** IANA zone for instants; the rule's own `zone` wins, then this, then UTC. */
  zone?: string;
}

export interface PlannedPhase {
  /** Position of the phase in the rule (0-based). */
  index: number;
  action: RetentionAction;
  /** The civil date the phase falls due (at 00:00 in the zone), or null: not due. */
  due: CivilDate | null;
  purposes?: string[];
  reason?: string;
}

export interface RetentionPlan {
  rule: string;
  zone: string;
  phases: PlannedPhase[];
}

/** The zone a rule's civil dates live in: the rule's, else the given default, else UTC. */
export function ruleZone(rule: Pick<RetentionRule, 'zone'>, fallback?: string): string {
  return assertZone(rule.zone ?? fallback ?? 'UTC');
}

const instantPattern = /^\d{4}-\d{2}-\d{2}T/;
const zonedInstantPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i;
const monthPattern = /^\d{4}-\d{2}$/;

/**
 * The civil date a fact stands for, or null when missing. Months stand for their first day
 * (their last with `endOfMonth`); instants for their date in `zone`.
 */
export function factDate(value: RetentionFacts[string], zone: string, fact = 'fact'): CivilDate | null {
  if (value === null || value === undefined || value === '') return null;
  if (value instanceof Date) return civilDateOf(value, zone);
  if (typeof value !== 'string') {
    throw retentionError('retention/invalid-fact', `${fact}: expected a date, got ${JSON.stringify(value)}`);
  }
  if (monthPattern.test(value)) return civilOfMonth(value, false);
  if (instantPattern.test(value)) {
    // Without `Z` or an offset, JavaScript reads the time in the process's own zone: the due date
    // would depend on where the sweep runs. Such a row is refused (recorded `invalid`), not guessed.
    const instant = zonedInstantPattern.test(value) ? new Date(value) : new Date(Number.NaN);
    if (Number.isNaN(instant.getTime())) {
      throw retentionError(
        'retention/invalid-fact',
        `${fact}: "${value}" is not an ISO 8601 instant with a zone (Z or an offset such as +02:00)`,
      );
    }
    return civilDateOf(instant, zone);
  }
  if (!isCivilDate(value)) {
    throw retentionError('retention/invalid-fact', `${fact}: "${value}" is not a date YYYY-MM-DD`);
  }
  return value;
}

/**
 * A value fact as the text a condition compares: a string as is, a number as its shortest
 * decimal (`String`), a boolean as 1/0; anything else matches nothing. The SQL candidate query
 * compares the same text on every engine, so no engine's own conversion decides.
 */
function factText(value: RetentionFacts[string] | bigint): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? '1' : '0';
  return undefined;
}

/**
 * Whether a fact value equals a condition's value, as text: a flag stored as 1/0 (or '1'/'0')
 * equals `true`/`false`, a number equals its text ('1' but not '01' or '1.0'), and nothing else
 * converts ('abc' is not 0).
 */
export function factEquals(value: RetentionFacts[string], expected: string | number | boolean): boolean {
  const text = factText(value);
  return text !== undefined && text === factText(expected);
}

interface Context {
  rule: RetentionRule;
  facts: RetentionFacts;
  zone: string;
}

function isDateFact(rule: RetentionRule, fact: string): boolean {
  const type = rule.facts[fact]?.type ?? 'date';
  return type === 'date' || type === 'month';
}

/** Evaluates a condition over a record's facts (two-valued: a missing fact matches nothing). */
export function conditionHolds(
  condition: RetentionCondition,
  rule: RetentionRule,
  facts: RetentionFacts,
  zone: string,
): boolean {
  if ('all' in condition) return condition.all.every((c) => conditionHolds(c, rule, facts, zone));
  if ('any' in condition) return condition.any.some((c) => conditionHolds(c, rule, facts, zone));
  if ('not' in condition) return !conditionHolds(condition.not, rule, facts, zone);
  const value = facts[condition.fact];
  if ('present' in condition) {
    const present = isDateFact(rule, condition.fact)
      ? factDate(value, zone, condition.fact) !== null
      : value !== null && value !== undefined;
    return present === condition.present;
  }
  if ('equals' in condition) return factEquals(value, condition.equals);
  return condition.in.some((expected) => factEquals(value, expected));
}

function evaluate(expression: DueExpression, context: Context): CivilDate | null {
  if ('from' in expression) {
    const date = factDate(context.facts[expression.from], context.zone, expression.from);
    if (date === null) return null;
    const anchor = expression.endOfMonth ? endOfMonthCivil(date) : date;
    return expression.after ? addPeriod(anchor, expression.after) : anchor;
  }
  if ('earliest' in expression || 'latest' in expression) {
    const members = 'earliest' in expression ? expression.earliest : expression.latest;
    const dates = members
      .map((member) => evaluate(member, context))
      .filter((date): date is string => date !== null)
      .sort();
    if (dates.length === 0) return null;
    return ('earliest' in expression ? dates[0] : dates[dates.length - 1]) ?? null;
  }
  for (const branch of expression.when) {
    if (conditionHolds(branch.if, context.rule, context.facts, context.zone)) {
      return evaluate(branch.then, context);
    }
  }
  return expression.otherwise ? evaluate(expression.otherwise, context) : null;
}

/** The civil date a due expression gives for a record's facts, or null when not due. */
export function dueDate(
  expression: DueExpression,
  rule: RetentionRule,
  facts: RetentionFacts,
  zone: string,
): CivilDate | null {
  return evaluate(expression, { rule, facts, zone });
}

/**
 * Plans a record's retention (Art 5(1)(e)): for each phase of `rule`, its action and the civil
 * date it falls due, each counted from its trigger by the calendar rules (months then days,
 * month-end clamp, never chained). A phase is due at 00:00 on that date in the rule's zone.
 * A missing trigger gives `due: null` (not due).
 *
 * @throws PrivacyKitError `retention/invalid-fact` for a malformed date, `retention/invalid-zone`.
 */
export function planRetention(
  rule: RetentionRule,
  facts: RetentionFacts,
  options: PlanOptions = {},
): RetentionPlan {
  const zone = ruleZone(rule, options.zone);
  if (typeof facts !== 'object' || facts === null || Array.isArray(facts)) {
    throw retentionError('retention/invalid-fact', 'facts must be an object of fact names and values');
  }
  return {
    rule: rule.id,
    zone,
    phases: rule.phases.map((phase, index) => ({
      index,
      action: phase.action,
      due: dueDate(phase.due, rule, facts, zone),
      ...(phase.purposes ? { purposes: phase.purposes } : {}),
      ...(phase.reason ? { reason: phase.reason } : {}),
    })),
  };
}

/**
 * The phase a record is in on `today`: the latest phase due on or before it, or null. A
 * sweep applies this phase (and only it) when it has not been applied yet.
 */
export function currentPhase(plan: RetentionPlan, today: CivilDate): PlannedPhase | null {
  for (let i = plan.phases.length - 1; i >= 0; i--) {
    const phase = plan.phases[i];
    if (phase?.due != null && phase.due <= today) return phase;
  }
  return null;
}
