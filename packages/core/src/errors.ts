/**
 * Codes thrown by `@privacykit/core`. Every package declares its own literal union
 * (`ConsentErrorCode`, …) and throws `PrivacyKitError<ThatUnion>`; codes are namespaced
 * (`policy/…`, `consent/…`) and never change meaning once published.
 */
export type CoreErrorCode =
  | 'input/invalid'
  | 'policy/invalid'
  | 'policy/unknown-reference'
  | 'policy/duplicate-id'
  | 'data-map/invalid'
  | 'data-map/unknown-table'
  | 'data-map/unknown-category'
  | 'data-map/unreachable-table'
  | 'data-map/prohibited-category'
  | 'data-map/cycle'
  | 'data-map/unknown-identity'
  | 'json/not-canonical'
  | 'period/invalid'
  | 'tenant/invalid'
  | 'database/invalid-url'
  | 'database/invalid-options'
  | 'database/driver-missing'
  | 'database/driver-incompatible'
  | 'database/unsupported-engine'
  | 'database/migration-failed'
  /** A traversal cannot page through a table by its key: a key part is NULL or read rounded. */
  | 'database/inexact-keys'
  /** `writeTransaction` handed a transaction: it starts its own (see `writeStatement`). */
  | 'database/nested-transaction';

/** One problem found while validating input: where it is and what is wrong. */
export interface PrivacyKitIssue {
  /** Dotted path into the input, e.g. `purposes[2].categories[0]`. */
  path: string;
  message: string;
}

export interface PrivacyKitErrorOptions {
  cause?: unknown;
  issues?: readonly PrivacyKitIssue[];
  details?: Readonly<Record<string, unknown>>;
}

const brand = Symbol.for('privacykit.error');

/**
 * The one error type of every PrivacyKit library. `code` is stable and meant for programs;
 * `message` is for people; `issues` lists every validation problem with its path.
 */
export class PrivacyKitError<Code extends string = string> extends Error {
  readonly code: Code;
  readonly issues: readonly PrivacyKitIssue[];
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: Code, message: string, options: PrivacyKitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PrivacyKitError';
    this.code = code;
    this.issues = options.issues ?? [];
    this.details = options.details ?? {};
    Object.defineProperty(this, brand, { value: true });
  }
}

/**
 * True for a `PrivacyKitError` even when two copies of core are loaded (ESM and CJS builds
 * side by side), where `instanceof` would say no. Pass `code` to also check the code.
 */
export function isPrivacyKitError<Code extends string = string>(
  error: unknown,
  code?: Code,
): error is PrivacyKitError<Code> {
  if (typeof error !== 'object' || error === null || !(brand in error)) return false;
  return code === undefined || (error as unknown as PrivacyKitError).code === code;
}

/** Formats zod-style issues as `path: message` lines for an error message. */
export function formatIssues(issues: readonly PrivacyKitIssue[]): string {
  return issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ');
}
