/**
 * Reads a `Sec-GPC` request header exactly as the Global Privacy Control spec says: the only
 * valid value is `1`. When a request carries the header several times, Node joins the values
 * as `"0, 1"`; any member that is exactly `1` after trimming spaces and tabs counts. `"true"`, `"yes"`, `"2"`,
 * `"0"`, an empty value and an absent header do not — and absence never means consent
 * (requirement G01, G02). Pass `req.headers['sec-gpc']` (Node lower-cases header names) or
 * `req.headersDistinct['sec-gpc']`.
 */
export function parseGpcHeader(value: string | readonly string[] | undefined | null): boolean {
  // Anything but a string or a list of them (a number, an object) is no valid signal either.
  const values: readonly unknown[] = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  return values.some(
    // HTTP whitespace only (SP, HTAB): `trim()` would also take U+00A0 or U+FEFF for it.
    (header) =>
      typeof header === 'string' &&
      header.split(',').some((member) => member.replace(/^[ \t]+|[ \t]+$/g, '') === '1'),
  );
}

/** Headers as fetch, undici and the Web platform give them. */
interface HeaderList {
  get(name: string): string | null;
}

/**
 * Reads `Sec-GPC` from a header record whatever the case of its name (Node's `req.headers`,
 * Express, a plain object), or from a fetch `Headers` object (which joins repeated headers
 * as `"0, 1"`). No headers at all (`undefined`, `null`) is no signal.
 */
export function gpcFromHeaders(
  headers: Readonly<Record<string, string | readonly string[] | undefined>> | HeaderList | null | undefined,
): boolean {
  if (headers === null || headers === undefined || typeof headers !== 'object') return false;
  if (typeof (headers as HeaderList).get === 'function' && !Object.hasOwn(headers, 'get')) {
    const value = (headers as HeaderList).get('sec-gpc');
    return typeof value === 'string' && parseGpcHeader(value);
  }
  const values: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() !== 'sec-gpc' || value === undefined) continue;
    if (typeof value === 'string') values.push(value);
    else if (Array.isArray(value)) values.push(...value);
  }
  return parseGpcHeader(values);
}
