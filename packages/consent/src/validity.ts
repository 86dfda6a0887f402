import { parsePeriod } from '@privacykit/core';

/**
 * Adds a calendar period to an instant in UTC: months first (clamped to the month's last day:
 * 31 Aug + 6 months = 28/29 Feb), then days. Consent validity is a re-ask interval, so the UTC
 * calendar is precise enough and the same on every engine (no SQL date arithmetic).
 */
export function addPeriod(instant: Date, period: string): Date {
  const { years, months, weeks, days } = parsePeriod(period);
  const totalMonths = instant.getUTCMonth() + years * 12 + months;
  const year = instant.getUTCFullYear() + Math.floor(totalMonths / 12);
  const month = ((totalMonths % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const shifted = new Date(instant.getTime());
  shifted.setUTCFullYear(year, month, Math.min(instant.getUTCDate(), lastDay));
  shifted.setUTCDate(shifted.getUTCDate() + weeks * 7 + days);
  return shifted;
}
