import { PrivacyKitError } from '@privacykit/core';

/** Codes thrown by `@privacykit/retention`; stable once published. */
export type RetentionErrorCode =
  | 'retention/invalid-fact'
  | 'retention/invalid-zone'
  | 'retention/invalid-schedule'
  | 'retention/invalid-hold'
  | 'retention/unknown-rule'
  | 'retention/hold-not-found'
  | 'retention/hold-already-released'
  | 'retention/run-not-found'
  | 'retention/needs-data-map'
  | 'retention/needs-pseudonym-key'
  /** A batch lost to concurrent writers on every attempt and was rolled back each time; run the sweep again. */
  | 'retention/write-conflict';

export type RetentionError = PrivacyKitError<RetentionErrorCode>;

export function retentionError(
  code: RetentionErrorCode,
  message: string,
  options?: ConstructorParameters<typeof PrivacyKitError>[2],
): PrivacyKitError<RetentionErrorCode> {
  return new PrivacyKitError<RetentionErrorCode>(code, message, options);
}
