import { cliError } from './errors.js';
import { optionParser } from './options.js';

const units: Readonly<Record<string, string>> = { y: 'Y', mo: 'M', w: 'W', d: 'D' };

/**
 * Parses a calendar period as operators type it — `1y`, `18mo`, `6w`, `30d` — or in ISO 8601
 * form (`P1Y6M`). Returns the ISO form, counted by the calendar (months first, month-end clamp)
 * like retention rules, never as a number of milliseconds: a year after 29 Feb is 28 Feb.
 *
 * @throws PrivacyKitError `cli/usage` naming the text.
 */
export function parseCalendarPeriod(text: string): string {
  const trimmed = text.trim();
  let period: string;
  if (/^P(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?$/.test(trimmed) && trimmed !== 'P') period = trimmed;
  else {
    const match = /^(\d+)(y|mo|w|d)$/.exec(trimmed);
    if (!match)
      throw cliError('cli/usage', `"${text}" is not a calendar period such as 1y, 18mo, 6w, 30d or P1Y6M`);
    period = `P${Number(match[1])}${units[match[2] as string]}`;
  }
  // A thousand years at most: beyond, the date it gives is no date ("0NaN-NaN-NaN").
  const days = [...period.matchAll(/(\d+)([YMWD])/g)].reduce(
    (sum, [, n, unit]) =>
      sum + Number(n) * ({ Y: 366, M: 31, W: 7, D: 1 } as Record<string, number>)[unit as string]!,
    0,
  );
  if (!Number.isSafeInteger(days) || days > 1000 * 366) {
    throw cliError('cli/usage', `"${text}" is longer than a thousand years`);
  }
  return period;
}

export const calendarPeriodOption = optionParser(parseCalendarPeriod);
