/**
 * Codes thrown by `@privacykit/subject-access`. Stable: programs switch on them, the portal maps
 * them to HTTP answers (a token error is a 404/410 with a generic message, never a 500).
 */
export type SubjectAccessErrorCode =
  | 'subject-access/invalid-input'
  | 'subject-access/no-identity'
  | 'subject-access/token-unknown'
  | 'subject-access/token-used'
  | 'subject-access/token-expired'
  | 'subject-access/token-binding-mismatch'
  | 'subject-access/export-unknown'
  | 'subject-access/export-corrupt';
