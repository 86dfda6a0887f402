import { z } from 'zod';
import { PrivacyKitError } from './errors.js';

/**
 * A calendar period in ISO 8601 duration form restricted to years, months, weeks and days
 * (`P5Y`, `P13M`, `P1Y6M`, `P30D`). Hours are refused: retention and legal deadlines are civil.
 */
export interface Period {
  years: number;
  months: number;
  weeks: number;
  days: number;
}

const periodPattern = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$/;

export function parsePeriod(text: string): Period {
  const match = periodPattern.exec(text);
  if (!match || text === 'P') {
    throw new PrivacyKitError(
      'period/invalid',
      `"${text}" is not a calendar period such as P5Y, P13M or P30D`,
    );
  }
  const [, y, m, w, d] = match;
  return { years: Number(y ?? 0), months: Number(m ?? 0), weeks: Number(w ?? 0), days: Number(d ?? 0) };
}

export const periodSchema = z.string().refine((text) => periodPattern.test(text) && text !== 'P', {
  message: 'expected a calendar period such as P5Y, P13M, P1Y6M or P30D',
});

const units: [keyof Period, string][] = [
  ['years', 'year'],
  ['months', 'month'],
  ['weeks', 'week'],
  ['days', 'day'],
];

/** "5 years", "1 year and 6 months", "13 months". */
export function describePeriod(text: string): string {
  const period = parsePeriod(text);
  const parts = units
    .filter(([key]) => period[key] > 0)
    .map(([key, unit]) => `${period[key]} ${unit}${period[key] === 1 ? '' : 's'}`);
  if (parts.length <= 1) return parts[0] ?? '0 days';
  return `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
}
