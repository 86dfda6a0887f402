// Hand-written input checks for the browser-safe root export. The same shapes exist as zod schemas
// on `@privacykit/cookies/schemas` (validate.test.ts keeps the two in agreement); the root avoids
// zod so a browser bundle of the classifier stays small.
import type { PrivacyKitIssue } from '@privacykit/core/errors';

export type Issues = PrivacyKitIssue[];

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Adds an issue for every key of `value` outside `allowed` (zod's `.strict()`). */
export function checkKnownKeys(
  value: Record<string, unknown>,
  allowed: readonly string[],
  path: string,
  issues: Issues,
): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) issues.push({ path: join(path, key), message: 'unrecognised key' });
  }
}

/** Checks that `value[key]` is absent or passes `test`. */
export function checkOptional(
  value: Record<string, unknown>,
  key: string,
  test: (field: unknown) => boolean,
  expected: string,
  context: { path: string; issues: Issues },
): void {
  const field = value[key];
  if (field !== undefined && !test(field)) {
    context.issues.push({ path: join(context.path, key), message: `expected ${expected}` });
  }
}

export const isBoolean = (value: unknown): value is boolean => typeof value === 'boolean';
export const isString = (value: unknown): value is string => typeof value === 'string';
export const isNonEmptyString = (value: unknown): value is string =>
  typeof value === 'string' && value.length > 0;
export const isFiniteNumber = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value);

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

export function describeIssues(issues: Issues): string {
  return issues.map((issue) => `${issue.path || '(root)'}: ${issue.message}`).join('; ');
}
