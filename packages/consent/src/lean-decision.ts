import { z } from 'zod';
import {
  JURISDICTION_PATTERN,
  TOKEN_PATTERN,
  consentSourceSchema,
  decisionStateSchema,
  wellFormedText,
} from './decision.js';
import type { ConsentDecision } from './decision.js';

/** What `consentDecisionSchema.parse` returns. */
export type ParsedDecision = z.output<typeof import('./decision.js').consentDecisionSchema>;

const states: ReadonlySet<string> = new Set(decisionStateSchema.options);
const sources: ReadonlySet<string> = new Set(consentSourceSchema.options);
const HASH = /^[0-9a-f]{64}$/;
const isoDateTime = z.iso.datetime({ offset: true });

const str = (value: unknown, min: number, max: number): value is string =>
  typeof value === 'string' && value.length >= min && value.length <= max && wellFormedText(value);

const plain = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

/**
 * A hand-written check of the common decision shapes with exactly `consentDecisionSchema`'s
 * rules, for the hot paths (zod costs tens of µs per decision). It returns the parsed decision
 * when it can vouch for it, and `undefined` for anything else — invalid or merely unusual
 * (`purposes`, `parentalAuthorisation`, members set to `undefined`) — so the caller falls back to
 * zod, which then gives the exact error. Property-tested against the schema.
 */
export function createLeanDecisionParser(): (input: ConsentDecision | unknown) => ParsedDecision | undefined {
  // Import timestamps repeat; zod decides each distinct one once.
  const datetimes = new Map<string, boolean>();
  const validDateTime = (value: string): boolean => {
    let ok = datetimes.get(value);
    if (ok === undefined) {
      ok = isoDateTime.safeParse(value).success;
      if (datetimes.size >= 1024) datetimes.clear();
      datetimes.set(value, ok);
    }
    return ok;
  };
  return (input) => {
    if (!plain(input)) return undefined;
    for (const key in input) {
      if (!Object.hasOwn(input, key)) return undefined;
      const value = input[key];
      switch (key) {
        case 'subjectId':
          if (!str(value, 1, 255)) return undefined;
          break;
        case 'purpose':
          if (!str(value, 1, 100)) return undefined;
          break;
        case 'state':
          if (typeof value !== 'string' || !states.has(value)) return undefined;
          break;
        case 'source':
          if (typeof value !== 'string' || !sources.has(value)) return undefined;
          break;
        case 'method':
          if (!str(value, 1, 50)) return undefined;
          break;
        case 'conditionOfService':
        case 'explicit':
        case 'preTicked':
          if (typeof value !== 'boolean') return undefined;
          break;
        case 'jurisdiction':
          if (typeof value !== 'string' || !JURISDICTION_PATTERN.test(value)) return undefined;
          break;
        case 'eventId':
          if (typeof value !== 'string' || value.length > 64 || !TOKEN_PATTERN.test(value)) return undefined;
          break;
        case 'at':
          if (typeof value !== 'string' || !validDateTime(value)) return undefined;
          break;
        case 'age':
          if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > 150)
            return undefined;
          break;
        case 'notice': {
          if (!plain(value)) return undefined;
          for (const member in value) {
            if (!Object.hasOwn(value, member)) return undefined;
            const field = value[member];
            if (member === 'version') {
              if (!str(field, 1, 100)) return undefined;
            } else if (member === 'hash') {
              if (typeof field !== 'string' || !HASH.test(field)) return undefined;
            } else if (member === 'language') {
              if (!str(field, 2, 35)) return undefined;
            } else return undefined;
          }
          break;
        }
        case 'evidence': {
          if (!plain(value)) return undefined;
          for (const member in value) {
            if (!Object.hasOwn(value, member)) return undefined;
            const field = value[member];
            if (member === 'ip') {
              if (!str(field, 0, 100)) return undefined;
            } else if (member === 'userAgent') {
              if (!str(field, 0, 1000)) return undefined;
            } else return undefined;
          }
          break;
        }
        default:
          // purposes, parentalAuthorisation and unknown keys: zod's call.
          return undefined;
      }
    }
    if (input.subjectId === undefined || input.state === undefined) return undefined;
    if (input.source === undefined || input.method === undefined) return undefined;
    const out: Record<string, unknown> = { ...input };
    if (input.notice !== undefined) out.notice = { ...(input.notice as object) };
    if (input.evidence !== undefined) out.evidence = { ...(input.evidence as object) };
    return out as ParsedDecision;
  };
}
