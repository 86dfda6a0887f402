/** One primary-key value as text: dates as ISO 8601, bytes as hex, everything else `String()`. */
function keyPart(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return String(value);
}

/**
 * The text form of a row's key used in plans, restrictions and hold lookups: the value itself
 * for a single-column key (`"42"`), a JSON array for a composite key (`'["7","2"]'`).
 */
export function rowKey(row: Record<string, unknown>, primaryKey: readonly string[]): string {
  if (primaryKey.length === 1) return keyPart(row[primaryKey[0]!]);
  return JSON.stringify(primaryKey.map((column) => keyPart(row[column])));
}
