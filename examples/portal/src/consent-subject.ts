import { normaliseIdentity } from '@privacykit/core';
import type { DataMap } from '@privacykit/core';

/**
 * The consent-ledger subject id of an identified person: `email:<address>`, the address
 * normalised as the data map does (ASCII lowercase, trimmed). The newsletter sign-up records
 * under it, and the access export and the erasure look it up from a request's verified email:
 * one function, so they always agree.
 */
export function emailSubjectId(dataMap: DataMap, email: string): string {
  const value =
    'email' in dataMap.identities
      ? normaliseIdentity(dataMap, 'email', email)
      : email.trim().replace(/[A-Z]/g, (c) => c.toLowerCase());
  return `email:${value}`;
}
