/** Seconds a cookie lives from `now`: `null` for a session cookie, 0 when it is already expired. */
export function cookieLifetimeSeconds(
  cookie: { expires?: Date | string | number | undefined; maxAge?: number | undefined },
  now: Date,
): number | null {
  // Max-Age wins over Expires (RFC 6265bis §5.7.3).
  if (cookie.maxAge !== undefined && Number.isFinite(cookie.maxAge))
    return Math.max(0, Math.floor(cookie.maxAge));
  if (cookie.expires === undefined) return null;
  const expires = cookie.expires instanceof Date ? cookie.expires : new Date(cookie.expires);
  const time = expires.getTime();
  if (Number.isNaN(time)) return null;
  return Math.max(0, Math.floor((time - now.getTime()) / 1000));
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
