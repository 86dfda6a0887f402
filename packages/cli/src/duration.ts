import { cliError } from './errors.js';

const units: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Parses a short duration as operators type it in cron lines: `7d`, `2w`, `36h`, `90m`, `30s`,
 * `500ms`. Returns milliseconds.
 *
 * @throws PrivacyKitError `cli/usage` naming the text.
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!match) throw cliError('cli/usage', `"${text}" is not a duration such as 7d, 12h, 30m or 45s`);
  const ms = Number(match[1]) * (units[match[2] as string] as number);
  // A hundred years at most: beyond, dates computed from it are no dates ("invalid instant").
  if (!Number.isFinite(ms) || ms > MAX_DURATION_MS) {
    throw cliError('cli/usage', `"${text}" is longer than a hundred years`);
  }
  return ms;
}

const MAX_DURATION_MS = 100 * 366 * 86_400_000;

/** Parses a positive whole number option (`--batch-size 500`), at most `max`. */
export function parsePositiveInteger(text: string, option: string, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < 1) {
    throw cliError('cli/usage', `${option} expects a positive whole number, got "${text}"`);
  }
  if (value > max) throw cliError('cli/usage', `${option} is at most ${max}, got ${value}`);
  return value;
}
