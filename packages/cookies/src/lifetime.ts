import { cookiesError } from './errors.js';

/**
 * Seconds a cookie lives from `now`: `null` for a session cookie, 0 when it is already expired,
 * `Infinity` for `maxAge: Infinity` (kept for good). A `maxAge` that is not a number (or is NaN)
 * and an `expires` that names no instant (`'2099-13-45'`, `1e20` ms) are `cookies/invalid-input`:
 * read as "no lifetime", they would pass a ten-year cookie off as a session cookie.
 */
export function cookieLifetimeSeconds(
  cookie: { expires?: Date | string | number | undefined; maxAge?: number | undefined },
  now: Date,
): number | null {
  // Max-Age wins over Expires (RFC 6265bis §5.7.3).
  if (cookie.maxAge !== undefined) {
    const maxAge: unknown = cookie.maxAge;
    if (typeof maxAge !== 'number' || Number.isNaN(maxAge)) {
      throw cookiesError(
        'cookies/invalid-input',
        `maxAge must be a number of seconds, got ${describe(maxAge)}`,
      );
    }
    if (maxAge === Number.POSITIVE_INFINITY) return maxAge;
    return Math.max(0, Math.floor(maxAge));
  }
  if (cookie.expires === undefined) return null;
  const time = expiresTime(cookie.expires);
  return Math.max(0, Math.floor((time - now.getTime()) / 1000));
}

/** Epoch milliseconds of an `expires` value, or `cookies/invalid-input` when it names no instant. */
export function expiresTime(expires: unknown): number {
  const date =
    expires instanceof Date
      ? expires
      : typeof expires === 'string' || typeof expires === 'number'
        ? new Date(expires)
        : undefined;
  const time = date?.getTime() ?? Number.NaN;
  if (Number.isNaN(time)) {
    throw cookiesError(
      'cookies/invalid-input',
      `expires must be a Date, ISO text or epoch milliseconds naming a real instant, got ${describe(expires)}`,
    );
  }
  return time;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** `date` plus `months` calendar months in UTC, clamped to the month's last day (Jan 31 + 1 = Feb 28/29). */
export function addCalendarMonths(date: Date, months: number): Date {
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const result = new Date(date.getTime());
  result.setUTCDate(1);
  result.setUTCFullYear(year, month, Math.min(date.getUTCDate(), lastDay));
  return result;
}

/** True when a cookie living `seconds` from `now` expires no later than `months` calendar months later. */
export function withinMonths(seconds: number | null, now: Date, months: number): boolean {
  if (seconds === null) return true;
  return now.getTime() + seconds * 1000 <= addCalendarMonths(now, months).getTime();
}

// The calendar periods of `@privacykit/core` policies (`P13M`, `P1Y6M`, `P30D`); read here rather
// than imported so the browser bundle of the classifier stays free of core's zod schemas.
const periodPattern = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$/;

/** True for a calendar period in ISO 8601 form limited to years, months, weeks and days (`P6M`). */
export function isCalendarPeriod(value: unknown): value is string {
  return typeof value === 'string' && value !== 'P' && periodPattern.test(value);
}

/**
 * The longest a calendar period can last, in seconds: a year counted as 366 days, a month as 31.
 * A cookie set for 183 days is within `P6M` whatever month it starts in.
 */
export function longestSeconds(period: string): number {
  const match = periodPattern.exec(period);
  if (!match || period === 'P')
    throw cookiesError('cookies/invalid-input', `"${period}" is not a calendar period`);
  const [years, months, weeks, days] = match.slice(1).map((part) => Number(part ?? 0));
  return (years! * 366 + months! * 31 + weeks! * 7 + days!) * 86_400;
}
