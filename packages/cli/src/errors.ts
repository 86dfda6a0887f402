import { PrivacyKitError } from '@privacykit/core/errors';

/**
 * Codes the `privacykit` command raises itself; errors from the libraries keep their own codes.
 * Every one ends the command with one line on stderr and a non-zero exit.
 */
export type CliErrorCode =
  | 'cli/usage'
  | 'cli/config-not-found'
  | 'cli/config-invalid'
  | 'cli/config-load-failed'
  | 'cli/no-database'
  | 'cli/file-not-found'
  | 'cli/invalid-file'
  | 'cli/package-missing';

export function cliError(
  code: CliErrorCode,
  message: string,
  options: { cause?: unknown } = {},
): PrivacyKitError<CliErrorCode> {
  return new PrivacyKitError(code, message, options);
}
