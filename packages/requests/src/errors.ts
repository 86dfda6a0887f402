import { PrivacyKitError } from '@privacykit/core';
import type { PrivacyKitErrorOptions } from '@privacykit/core';

/**
 * Codes thrown by `@privacykit/requests`. Stable: programs (and the portal's HTTP mapping) rely on
 * them; messages are for people.
 */
export type RequestsErrorCode =
  | 'requests/invalid-input'
  | 'requests/invalid-options'
  | 'requests/invalid-zone'
  | 'requests/not-found'
  | 'requests/illegal-transition'
  | 'requests/reason-required'
  | 'requests/identity-unverified'
  | 'requests/verification-failed'
  | 'requests/verification-expired'
  | 'requests/verification-locked'
  /**
   * Too many wrong codes for one of the request's identities, across all its requests, within the
   * `codeGuessLimit` window: codes are refused until the window ends. The link in the mail (an
   * unguessable token) still verifies.
   */
  | 'requests/verification-throttled'
  | 'requests/extension-too-late'
  | 'requests/extension-reasons-required'
  | 'requests/extension-limit'
  | 'requests/delivery-address-mismatch'
  | 'requests/proof-required'
  | 'requests/directive-revoked'
  | 'requests/directive-not-found'
  | 'requests/not-executor'
  /**
   * A submission lost the race for its intake slot to concurrent submissions for the same
   * identity and right on every attempt; nothing of it was stored. Submitting again is safe.
   */
  | 'requests/intake-conflict'
  /**
   * The request's personal data was removed by `redact` (storage limitation): it is kept only as
   * evidence that it was answered, and nothing more can be done with it.
   */
  | 'requests/redacted'
  /** A change lost to concurrent changes of the same request on every attempt; nothing of it was stored. */
  | 'requests/write-conflict';

/** Shorthand for `new PrivacyKitError<RequestsErrorCode>(…)`. */
export function requestsError(
  code: RequestsErrorCode,
  message: string,
  options?: PrivacyKitErrorOptions,
): PrivacyKitError<RequestsErrorCode> {
  return new PrivacyKitError<RequestsErrorCode>(code, message, options);
}
