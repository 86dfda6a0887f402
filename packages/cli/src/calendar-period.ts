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
  if (/^P(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?$/.test(trimmed) && trimmed !== 'P') return trimmed;
  const match = /^(\d+)(y|mo|w|d)$/.exec(trimmed);
  if (!match)
    throw cliError('cli/usage', `"${text}" is not a calendar period such as 1y, 18mo, 6w, 30d or P1Y6M`);
  return `P${Number(match[1])}${units[match[2] as string]}`;
}

export const calendarPeriodOption = optionParser(parseCalendarPeriod);
