import { PrivacyKitError } from '@privacykit/core/errors';

/** Codes thrown by `@privacykit/cookies`. Stable: a code never changes meaning once published. */
export type CookiesErrorCode =
  | 'cookies/invalid-input'
  | 'cookies/invalid-options'
  | 'cookies/invalid-set-cookie'
  | 'cookies/invalid-cookie'
  | 'cookies/invalid-csv'
  | 'cookies/scanner-unavailable'
  | 'cookies/scan-failed';

export type CookiesError = PrivacyKitError<CookiesErrorCode>;

export function cookiesError(
  code: CookiesErrorCode,
  message: string,
  options: ConstructorParameters<typeof PrivacyKitError>[2] = {},
): CookiesError {
  return new PrivacyKitError<CookiesErrorCode>(code, message, options);
}
