import { TZDate } from '@date-fns/tz';
import { formatCivilDate, parseCivilDate } from '@privacykit/core';
import type { CivilDate, CivilDay } from '@privacykit/core';
// One subpath per function: the root `date-fns` loads its ~250 modules, seconds at start-up on Node 22.
import { addDays } from 'date-fns/addDays';
import { addMonths } from 'date-fns/addMonths';
import { differenceInCalendarDays } from 'date-fns/differenceInCalendarDays';
import { isWeekend } from 'date-fns/isWeekend';
import { requestsError } from './errors.js';

export type { CivilDate };

const fromParts = formatCivilDate;

/**
 * A civil date as core's CivilDay: date-fns arithmetic on it is exact whatever the process time
 * zone (a `TZDate(…, 'UTC')` still followed the process zone's history, so under
 * TZ=Pacific/Kiritimati "1994-12-31" was refused as not a date).
 */
function toCalendarDate(date: CivilDate): CivilDay {
  const parsed = parseCivilDate(date);
  if (!parsed) {
    throw requestsError('requests/invalid-input', `expected a civil date YYYY-MM-DD, got "${date}"`);
  }
  return parsed;
}

/** True when `zone` is an IANA time zone this runtime knows. */
export function isValidZone(zone: string): boolean {
  // Not a name at all (undefined, null, a number): TZDate would take the process's own zone,
  // and a deadline would move with the server's TZ.
  if (typeof zone !== 'string' || zone.length === 0) return false;
  return !Number.isNaN(new TZDate(0, zone).getFullYear());
}

function toDate(instant: Date | string): Date {
  const date = typeof instant === 'string' ? new Date(instant) : instant;
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw requestsError('requests/invalid-input', `expected an instant, got "${String(instant)}"`);
  }
  return date;
}

/** The civil date an instant falls on in `zone` (23:59 in Paris on 31 Jan is 31 Jan, not 1 Feb UTC's). */
export function civilDateIn(instant: Date | string, zone: string): CivilDate {
  const date = toDate(instant);
  if (!isValidZone(zone)) throw requestsError('requests/invalid-zone', `unknown time zone "${String(zone)}"`);
  return fromParts(new TZDate(date.getTime(), zone));
}

/**
 * `date` plus whole calendar months, clamped to the month's last day (31 Jan + 1 month =
 * 28/29 Feb), always counted from `date` itself — periods are never chained, so 31 Jan + 3 months
 * is 30 Apr, not 28 Apr.
 */
export function addCalendarMonths(date: CivilDate, months: number): CivilDate {
  return fromParts(addMonths(toCalendarDate(date), wholeNumber('months', months)));
}

/** `date` plus (or minus) whole days. */
export function addCalendarDays(date: CivilDate, days: number): CivilDate {
  return fromParts(addDays(toCalendarDate(date), wholeNumber('days', days)));
}

/** A whole number of months or days: NaN or 1.5 made a date such as "0NaN-NaN-NaN". */
function wholeNumber(name: string, value: number): number {
  if (!Number.isSafeInteger(value)) {
    throw requestsError('requests/invalid-input', `${name} must be a whole number, got ${String(value)}`);
  }
  return value;
}

/** Whole days from `from` to `to` (negative when `to` is earlier). */
export function calendarDaysBetween(from: CivilDate, to: CivilDate): number {
  return differenceInCalendarDays(toCalendarDate(to), toCalendarDate(from));
}

export interface DeadlineOptions {
  /** IANA zone of the controller (`policy.zone`): receipt is read as a civil date there. */
  zone: string;
  /** Months from receipt: 1 (Art 12(3)), up to 3 with the two-month extension. Default 1. */
  months?: number;
  /**
   * Regulation 1182/71 Art 3(4): when the last day is a Saturday, Sunday or one of these public
   * holidays (`YYYY-MM-DD`), the period ends on the next working day. Off unless given.
   */
  holidays?: readonly CivilDate[];
  /** Also move deadlines off Saturdays and Sundays (Reg 1182/71 Art 3(4)). Default: true when `holidays` is given. */
  skipWeekends?: boolean;
}

/** Moves a deadline falling on a weekend or holiday to the next working day (Reg 1182/71 Art 3(4)). */
export function nextWorkingDay(
  date: CivilDate,
  options: { holidays?: readonly CivilDate[]; skipWeekends?: boolean },
): CivilDate {
  const holidays = new Set(options.holidays ?? []);
  const skipWeekends = options.skipWeekends ?? options.holidays !== undefined;
  // A date that is no date ("garbage") came back unchanged, as if it were a working day.
  toCalendarDate(date);
  let current = date;
  // Bounded: a run of non-working days longer than a month is a configuration mistake.
  for (let i = 0; i < 31; i++) {
    const weekend = skipWeekends && isWeekend(toCalendarDate(current));
    if (!weekend && !holidays.has(current)) return current;
    current = addCalendarDays(current, 1);
  }
  throw requestsError('requests/invalid-options', 'more than 31 consecutive non-working days');
}

/**
 * The Art 12(3) deadline of a request received at `receivedAt`: the receipt instant is read as a
 * civil date in the controller's zone, and the deadline is the same date the next month — or that
 * month's last day when the date does not exist (Reg 1182/71 Art 3(2)(c)). The request must be
 * answered by the end of that day, in that zone.
 *
 * @example deadlineFor('2024-01-31T10:00:00Z', { zone: 'Europe/Paris' }) // '2024-02-29'
 * @throws PrivacyKitError `requests/invalid-zone`, `requests/invalid-input`.
 */
export function deadlineFor(receivedAt: Date | string, options: DeadlineOptions): CivilDate {
  if (typeof options !== 'object' || options === null) {
    throw requestsError('requests/invalid-options', 'deadlineFor needs its options: { zone, months?, … }');
  }
  const months = options.months ?? 1;
  if (!Number.isInteger(months) || months < 1 || months > 3) {
    throw requestsError('requests/invalid-options', 'months must be 1, 2 or 3 (Art 12(3))');
  }
  const due = addCalendarMonths(civilDateIn(receivedAt, options.zone), months);
  if (options.holidays === undefined && !options.skipWeekends) return due;
  return nextWorkingDay(due, options);
}
