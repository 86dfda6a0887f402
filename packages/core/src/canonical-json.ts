import { PrivacyKitError } from './errors.js';

/** A JSON value as RFC 8785 can canonicalise it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * RFC 8785 (JCS) canonical JSON: object keys sorted by UTF-16 code units, no whitespace,
 * numbers in ECMAScript shortest form, strings escaped as `JSON.stringify` does. The hash of a
 * ledger entry is taken over this text so any verifier in any language gets the same bytes.
 * `undefined` object members are dropped (as JSON.stringify does); NaN, Infinity, undefined in
 * arrays, functions, symbols, bigints and non-plain objects are rejected.
 */
export function canonicalJson(value: unknown): string {
  return serialise(value, '$', 0);
}

// Deeper than any document PrivacyKit hashes: a value nested past it is (almost surely) a cycle,
// which otherwise ended in a RangeError (the stack), untyped.
const MAX_DEPTH = 500;

function serialise(value: unknown, path: string, depth: number): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new PrivacyKitError('json/not-canonical', `${path}: ${value} has no JSON form`);
      }
      // ECMAScript Number::toString is exactly the serialisation RFC 8785 specifies.
      return Object.is(value, -0) ? '0' : String(value);
    case 'object': {
      // Arrays too: an array cycle, or arrays nested 20,000 deep, ended in a RangeError.
      if (depth > MAX_DEPTH) {
        throw new PrivacyKitError(
          'json/not-canonical',
          `${path}: nested deeper than ${MAX_DEPTH} levels (a cycle?)`,
        );
      }
      if (Array.isArray(value)) {
        // Every index, holes included: `map` skips a hole, and `[,1]` came out as "[,1]" (not JSON).
        const items: string[] = new Array(value.length);
        for (let i = 0; i < value.length; i++) {
          const item = value[i];
          if (item === undefined) {
            throw new PrivacyKitError(
              'json/not-canonical',
              `${path}[${i}]: ${i in value ? 'undefined' : 'a hole in a sparse array'}`,
            );
          }
          items[i] = serialise(item, `${path}[${i}]`, depth + 1);
        }
        return `[${items.join(',')}]`;
      }
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) {
          throw new PrivacyKitError('json/not-canonical', `${path}: an invalid Date has no JSON form`);
        }
        return JSON.stringify(value.toISOString());
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new PrivacyKitError('json/not-canonical', `${path}: not a plain object`);
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record)
        .filter((key) => record[key] !== undefined)
        .sort();
      return `{${keys.map((key) => `${JSON.stringify(key)}:${serialise(record[key], `${path}.${key}`, depth + 1)}`).join(',')}}`;
    }
    default:
      throw new PrivacyKitError('json/not-canonical', `${path}: a ${typeof value} has no JSON form`);
  }
}
