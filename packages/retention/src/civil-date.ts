import { TZDate } from '@date-fns/tz';
import { formatCivilDate, parseCivilDate, parsePeriod } from '@privacykit/core';
import type { CivilDate, CivilDay, Period } from '@privacykit/core';
// One subpath per function: the root `date-fns` loads its ~250 modules, seconds at start-up on Node 22.
import { addDays } from 'date-fns/addDays';
import { addMonths } from 'date-fns/addMonths';
import { endOfMonth } from 'date-fns/endOfMonth';
import { isLastDayOfMonth } from 'date-fns/isLastDayOfMonth';
import { subDays } from 'date-fns/subDays';
import { subMonths } from 'date-fns/subMonths';
import { retentionError } from './errors.js';

export type { CivilDate };

// Civil arithmetic runs on core's CivilDay, so the process TZ never shifts a day.
function toUtcDate(civil: CivilDate): CivilDay {
  const day = parseCivilDate(civil);
  if (day) return day;
  throw retentionError(
    'retention/invalid-fact',
    /^\d{4}-\d{2}-\d{2}$/.test(civil)
      ? `"${civil}" is not a calendar date`
      : `"${civil}" is not a date YYYY-MM-DD`,
  );
}

const fromDate = formatCivilDate;
const monthPattern = /^(\d{4})-(\d{2})$/;

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

// Zones already checked: the date functions below check theirs on every call.
const knownZones = new Set<string>();

/** Checks an IANA zone name (or offset) is known to the runtime. */
export function assertZone(zone: string): string {
  if (knownZones.has(zone)) return zone;
  try {
    if (typeof zone !== 'string') throw new TypeError('not text');
    new Intl.DateTimeFormat('en', { timeZone: zone });
  } catch (cause) {
    throw retentionError('retention/invalid-zone', `unknown time zone "${String(zone)}"`, { cause });
  }
  if (knownZones.size < 1000) knownZones.add(zone);
  return zone;
}

/** The civil date of an instant in `zone`. */
export function civilDateOf(instant: Date, zone: string): CivilDate {
  if (!(instant instanceof Date) || Number.isNaN(instant.getTime())) {
    throw retentionError('retention/invalid-fact', 'invalid instant');
  }
  // An unknown zone gave "0NaN-NaN-NaN".
  return fromDate(new TZDate(instant.getTime(), assertZone(zone)));
}

/** The instant a civil date starts in `zone` (00:00 local, or the first instant after a DST gap). */
export function startOfCivilDay(civil: CivilDate, zone: string): Date {
  const day = toUtcDate(civil);
  // An unknown zone gave an Invalid Date.
  return new Date(new TZDate(day.getFullYear(), day.getMonth(), day.getDate(), assertZone(zone)).getTime());
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
