import { TZDate } from '@date-fns/tz';
import { parsePeriod } from '@privacykit/core';
import type { Period } from '@privacykit/core';
import { addDays, addMonths, endOfMonth, isLastDayOfMonth, subDays, subMonths } from 'date-fns';
import { retentionError } from './errors.js';

/** A civil date `YYYY-MM-DD`: a day on the calendar, in no time zone. */
export type CivilDate = string;

const civilPattern = /^(\d{4})-(\d{2})-(\d{2})$/;
const monthPattern = /^(\d{4})-(\d{2})$/;

/**
 * A Date whose "local" calendar is UTC, for date-fns: civil arithmetic then never depends on the
 * process TZ (TZDate('UTC') still leans on the process zone's history: Kiritimati skipped
 * 1994-12-31, and a month end computed there moved). date-fns builds results through the
 * `constructDateFrom` symbol, so every result stays a CivilDay.
 */
class CivilDay extends Date {
  override getFullYear() {
    return this.getUTCFullYear();
  }
  override getMonth() {
    return this.getUTCMonth();
  }
  override getDate() {
    return this.getUTCDate();
  }
  override getDay() {
    return this.getUTCDay();
  }
  override getHours() {
    return this.getUTCHours();
  }
  override getMinutes() {
    return this.getUTCMinutes();
  }
  override getSeconds() {
    return this.getUTCSeconds();
  }
  override getMilliseconds() {
    return this.getUTCMilliseconds();
  }
  override getTimezoneOffset() {
    return 0;
  }
  override setFullYear(year: number, month?: number, date?: number) {
    return month === undefined
      ? this.setUTCFullYear(year)
      : date === undefined
        ? this.setUTCFullYear(year, month)
        : this.setUTCFullYear(year, month, date);
  }
  override setMonth(month: number, date?: number) {
    return date === undefined ? this.setUTCMonth(month) : this.setUTCMonth(month, date);
  }
  override setDate(date: number) {
    return this.setUTCDate(date);
  }
  override setHours(hours: number, minutes?: number, seconds?: number, ms?: number) {
    return this.setUTCHours(
      hours,
      minutes ?? this.getUTCMinutes(),
      seconds ?? this.getUTCSeconds(),
      ms ?? this.getUTCMilliseconds(),
    );
  }
  override setMinutes(minutes: number, seconds?: number, ms?: number) {
    return this.setUTCMinutes(minutes, seconds ?? this.getUTCSeconds(), ms ?? this.getUTCMilliseconds());
  }
  override setSeconds(seconds: number, ms?: number) {
    return this.setUTCSeconds(seconds, ms ?? this.getUTCMilliseconds());
  }
  override setMilliseconds(ms: number) {
    return this.setUTCMilliseconds(ms);
  }
  [Symbol.for('constructDateFrom')](value: Date | number | string): CivilDay {
    return new CivilDay(new Date(value).getTime());
  }
}

// Civil arithmetic runs on CivilDay, so the process TZ never shifts a day.
function toUtcDate(civil: CivilDate): CivilDay {
  const match = civilPattern.exec(civil);
  if (!match) throw retentionError('retention/invalid-fact', `"${civil}" is not a date YYYY-MM-DD`);
  const [, y, m, d] = match;
  const date = new CivilDay(0);
  date.setUTCFullYear(Number(y), Number(m) - 1, Number(d)); // not Date.UTC: years 0–99 stay themselves
  if (date.getMonth() !== Number(m) - 1 || date.getDate() !== Number(d)) {
    throw retentionError('retention/invalid-fact', `"${civil}" is not a calendar date`);
  }
  return date;
}

function fromDate(date: Date): CivilDate {
  const y = String(date.getFullYear()).padStart(4, '0');
  const m = String(date.getMonth() + 1).padStart(2, '0');
  const d = String(date.getDate()).padStart(2, '0');
  return `${y}-${m}-${d}`;
}

const validDates = new Set<string>();

/** True for a real calendar date `YYYY-MM-DD` (Feb 30 is not). */
export function isCivilDate(text: string): boolean {
  if (validDates.has(text)) return true;
  try {
    toUtcDate(text);
    if (validDates.size >= 50_000) validDates.clear();
    validDates.add(text);
    return true;
  } catch {
    return false;
  }
}

/** Checks an IANA zone name (or offset) is known to the runtime. */
export function assertZone(zone: string): string {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
  } catch (cause) {
    throw retentionError('retention/invalid-zone', `unknown time zone "${zone}"`, { cause });
  }
  return zone;
}

/** The civil date of an instant in `zone`. */
export function civilDateOf(instant: Date, zone: string): CivilDate {
  if (Number.isNaN(instant.getTime())) throw retentionError('retention/invalid-fact', 'invalid instant');
  return fromDate(new TZDate(instant.getTime(), zone));
}

/** The instant a civil date starts in `zone` (00:00 local, or the first instant after a DST gap). */
export function startOfCivilDay(civil: CivilDate, zone: string): Date {
  const day = toUtcDate(civil);
  return new Date(new TZDate(day.getFullYear(), day.getMonth(), day.getDate(), zone).getTime());
}

/** The first day of a month `YYYY-MM`, or its last day with `end`. */
export function civilOfMonth(month: string, end: boolean): CivilDate {
  const match = monthPattern.exec(month);
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 12) {
    throw retentionError('retention/invalid-fact', `"${month}" is not a month YYYY-MM`);
  }
  const first = `${month}-01`;
  return end ? endOfMonthCivil(first) : first;
}

export function endOfMonthCivil(civil: CivilDate): CivilDate {
  return fromDate(endOfMonth(toUtcDate(civil)));
}

export function addCivilDays(civil: CivilDate, days: number): CivilDate {
  return fromDate(addDays(toUtcDate(civil), days));
}

function monthsOf(period: Period): number {
  return period.years * 12 + period.months;
}

function daysOf(period: Period): number {
  return period.weeks * 7 + period.days;
}

/**
 * `civil` + `period` by the calendar rules: months first (years as 12 months) with the month-end
 * clamp (Jan 31 + 1 month = Feb 28/29; Feb 29 + 1 year = Feb 28), then days (weeks as 7 days).
 */
export function addPeriod(civil: CivilDate, period: string | Period): CivilDate {
  if (typeof period !== 'string') return computeAddPeriod(civil, period);
  // Sweeps plan thousands of rows sharing few distinct dates: remember recent results.
  const id = `${civil}+${period}`;
  const known = periodCache.get(id);
  if (known !== undefined) return known;
  const result = computeAddPeriod(civil, parsePeriod(period));
  if (periodCache.size >= 50_000) periodCache.clear();
  periodCache.set(id, result);
  return result;
}

const periodCache = new Map<string, CivilDate>();

function computeAddPeriod(civil: CivilDate, p: Period): CivilDate {
  return fromDate(addDays(addMonths(toUtcDate(civil), monthsOf(p)), daysOf(p)));
}

/**
 * The exact inverse of {@link addPeriod} for selection: the latest date `d` such that
 * `addPeriod(d, period) <= today`, so "due" is `trigger <= cutoff` in SQL. Days come off first,
 * then months, where a month-end `today` takes the whole month (Feb 28 − 13 months covers Jan 31).
 */
export function cutoffFor(today: CivilDate, period: string | Period): CivilDate {
  // Pure, and asked for the same few (today, period) pairs by every batch of a sweep.
  if (typeof period === 'string') {
    const id = `${today} ${period}`;
    let cutoff = cutoffs.get(id);
    if (cutoff === undefined) {
      cutoff = computeCutoff(today, parsePeriod(period));
      if (cutoffs.size >= 1000) cutoffs.clear();
      cutoffs.set(id, cutoff);
    }
    return cutoff;
  }
  return computeCutoff(today, period);
}

const cutoffs = new Map<string, CivilDate>();

function computeCutoff(today: CivilDate, p: Period): CivilDate {
  const afterDays = subDays(toUtcDate(today), daysOf(p));
  const months = monthsOf(p);
  if (months === 0) return fromDate(afterDays);
  const back = subMonths(afterDays, months);
  return fromDate(isLastDayOfMonth(afterDays) ? endOfMonth(back) : back);
}

/** The month `YYYY-MM` of a civil date. */
export function monthOf(civil: CivilDate): string {
  return civil.slice(0, 7);
}

/** The month before `YYYY-MM`. */
export function previousMonth(month: string): string {
  return monthOf(fromDate(subMonths(toUtcDate(`${month}-01`), 1)));
}
