/**
 * A database value as JSON: what drivers return is kept as it is when JSON can hold it exactly
 * (strings, finite numbers, booleans, null, JSON columns); the rest gets one documented text
 * form — instants (`Date`) as ISO 8601 UTC, binary as base64, big integers as decimal text,
 * non-finite numbers as text — so an export never silently drops or mangles a value.
 */
export function toJsonValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value.toString();
    case 'object': {
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
      if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
      if (Array.isArray(value)) return value.map(toJsonValue);
      // Defined, not assigned: a JSON column's `"__proto__"` key is data, and assigning it would
      // set the object's prototype instead (dropping the key from the export).
      const out: Record<string, unknown> = {};
      for (const [key, inner] of Object.entries(value)) {
        Object.defineProperty(out, key, {
          value: toJsonValue(inner),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    default:
      return String(value);
  }
}

/** A row with every value in its JSON form (see {@link toJsonValue}). */
export function toJsonRow(row: Readonly<Record<string, unknown>>): Record<string, unknown> {
  // Most rows hold only strings, finite numbers, booleans and nulls: keep them as they are.
  let plain = true;
  for (const key in row) {
    const value = row[key];
    const type = typeof value;
    if (
      !(
        value === null ||
        type === 'string' ||
        type === 'boolean' ||
        (type === 'number' && Number.isFinite(value))
      )
    ) {
      plain = false;
      break;
    }
  }
  if (plain) return row as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(row)) {
    Object.defineProperty(out, key, {
      value: toJsonValue(row[key]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
