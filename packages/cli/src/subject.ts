import type { DataMap } from '@privacykit/core';
import { cliError } from './errors.js';

/** Collects repeated `--subject` values. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * Turns `--subject` values into the traversal's identities: `kind:value` names the kind
 * (`customerNumber:C-1`); a bare value is the map's only kind, or `email` when it looks like one.
 *
 * @throws PrivacyKitError `cli/usage` when the kind cannot be told.
 */
export function subjectIdentities(values: readonly string[], dataMap: DataMap): Record<string, string[]> {
  const kinds = Object.keys(dataMap.identities);
  const identities: Record<string, string[]> = {};
  for (const raw of values) {
    const colon = raw.indexOf(':');
    const prefix = colon > 0 ? raw.slice(0, colon) : undefined;
    let kind: string | undefined;
    let value = raw;
    if (prefix !== undefined && kinds.includes(prefix)) {
      kind = prefix;
      value = raw.slice(colon + 1);
    } else if (prefix !== undefined && kinds.some((known) => known.toLowerCase() === prefix.toLowerCase())) {
      // `Email:ada@…` was taken whole as an email value: nobody matched, and an erasure of nobody
      // reported itself complete.
      const known = kinds.find((candidate) => candidate.toLowerCase() === prefix.toLowerCase());
      throw cliError('cli/usage', `unknown identity kind "${prefix}" in "${raw}": did you mean ${known}:?`);
    } else if (kinds.length === 1) {
      kind = kinds[0];
    } else if (raw.includes('@') && kinds.includes('email')) {
      kind = 'email';
    }
    if (!kind || value.trim() === '') {
      throw cliError(
        'cli/usage',
        `cannot tell the identity kind of "${raw}": write kind:value, kinds are ${kinds.join(', ')}`,
      );
    }
    if (dataMap.identities[kind]?.normalise === 'email' && !/^[^\s@:]+@[^\s@:]+$/.test(value.trim())) {
      throw cliError(
        'cli/usage',
        `"${raw}" is not an email address${prefix !== undefined ? ` (identity kinds are ${kinds.join(', ')})` : ''}`,
      );
    }
    identities[kind] = [...(identities[kind] ?? []), value];
  }
  if (Object.keys(identities).length === 0)
    throw cliError('cli/usage', 'give the subject with --subject <identity>');
  return identities;
}
