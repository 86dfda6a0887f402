import { normaliseIdentity } from '@privacykit/core';
import type { DataMap } from '@privacykit/core';
import { hmacSha256Hex } from '@privacykit/core/crypto';
import { z } from 'zod';

/**
 * One way the subject is known: `{ kind: 'email', value: 'ada@example.com' }`, a customer number…
 * Kinds are named as the data map names them (`customerNumber` as well as `customer-id`).
 */
export const requestIdentitySchema = z
  .object({
    kind: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'expected an identity kind such as "email"'),
    value: z
      .string()
      .trim()
      .min(1)
      .max(320)
      // A NUL or another control character is in no address or customer number: it would be
      // stored, hashed and mailed to as it is.
      .regex(/^\P{Cc}*$/u, 'expected no control characters'),
  })
  .strict();
export type RequestIdentity = z.infer<typeof requestIdentitySchema>;

// No whitespace, control characters or the characters that make a mailer read a display name,
// a group or a quoted part (`x0<victim@example.com>` is mailed to victim@example.com, under a
// throttle keyed on the whole text); domain labels separated by single dots.
const atom = String.raw`[^\s@\p{Cc}<>()[\]\\,;:"]`;
const label = String.raw`[^\s@\p{Cc}<>()[\]\\,;:".]+`;
const emailShape = new RegExp(`^${atom}+@${label}(\\.${label})*$`, 'u');

/**
 * True when an email identity looks like an address: one `@`, no whitespace or control
 * characters (no Unicode folding is attempted). What a host's form can check before submitting.
 */
export function looksLikeEmail(value: string): boolean {
  return emailShape.test(value);
}

/**
 * Normalises an identity the way core's data-map traversal does, so a request and the data it
 * reaches agree: `email` trims and lowercases ASCII letters only — never Unicode case folding, so
 * `Alice@x` matches `alice@x` but a full-width letter, a Turkish dotless ı or the Kelvin sign never
 * matches another address (hostile case 27). Other kinds are compared exactly unless the data map
 * declares them `email`-like.
 */
export function normaliseRequestIdentity(identity: RequestIdentity, dataMap?: DataMap): string {
  if (dataMap && Object.hasOwn(dataMap.identities, identity.kind)) {
    return normaliseIdentity(dataMap, identity.kind, identity.value);
  }
  if (identity.kind === 'email') {
    return identity.value.trim().replace(/[A-Z]/g, (c) => c.toLowerCase());
  }
  return identity.value;
}

/**
 * A keyed hash of kind + normalised value: the index requests are matched on. Comparing hashes
 * rather than text keeps MySQL's case- and accent-folding collations from matching `Alice@` with
 * `alice@` or `ｋ` with `k`.
 */
export function identityLookupHash(secret: string | Uint8Array, kind: string, normalised: string): string {
  return hmacSha256Hex(secret, `identity\u0000${kind}\u0000${normalised}`);
}
