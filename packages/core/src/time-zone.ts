import { z } from 'zod';

/**
 * True when the runtime knows `zone` as a time zone (an IANA name such as `Europe/Paris`, or
 * `UTC`). The same check as retention's: a zone accepted here is one that retention and the
 * request deadlines (Art 12(3)) can count civil dates in, so a typo fails when the policy is
 * defined rather than at the first sweep or deadline.
 */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** An IANA time zone name the runtime knows, such as `Europe/Paris`. */
export const timeZoneSchema = z.string().refine(isTimeZone, {
  error: (issue) =>
    `unknown time zone "${String(issue.input)}": expected an IANA name such as "Europe/Paris"`,
});
export type TimeZone = z.infer<typeof timeZoneSchema>;
