import { PrivacyKitError } from '@privacykit/core';

/** Stable codes thrown by `@privacykit/erasure`. */
export type ErasureErrorCode =
  | 'erasure/invalid-input'
  | 'erasure/no-identities'
  | 'erasure/unknown-table'
  | 'erasure/invalid-strategy'
  | 'erasure/plan-not-found'
  | 'erasure/changed-while-planning';

export function erasureError(
  code: ErasureErrorCode,
  message: string,
  options: ConstructorParameters<typeof PrivacyKitError>[2] = {},
): PrivacyKitError<ErasureErrorCode> {
  return new PrivacyKitError<ErasureErrorCode>(code, message, options);
}
