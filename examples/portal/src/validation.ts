import type { z } from 'zod';
import { HttpError } from './http-error.js';

/**
 * Validates a form body against an allow-list schema (S09). Bad input is a 400 with the first
 * problem in words, never a 500; the CSRF token field is ignored.
 */
export function parseForm<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const input = typeof body === 'object' && body !== null ? { ...(body as Record<string, unknown>) } : {};
  delete input._csrf;
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || 'form';
    throw new HttpError(400, `Please check the field “${field}”: ${issue?.message ?? 'invalid value'}.`);
  }
  return parsed.data;
}
