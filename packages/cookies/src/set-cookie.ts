import { cookiesError } from './errors.js';

export type SameSite = 'strict' | 'lax' | 'none';

/** A `Set-Cookie` header as a user agent reads it (RFC 6265bis §5.6). */
export interface SetCookie {
  name: string;
  value: string;
  /** The Expires attribute; browsers cap lifetimes at 400 days. */
  expires?: Date;
  /** Max-Age in seconds; wins over `expires`. Zero or less deletes the cookie. */
  maxAge?: number;
  /** Without a leading dot, lower-cased; absent means host-only. */
  domain?: string;
  path?: string;
  secure: boolean;
  httpOnly: boolean;
  sameSite?: SameSite;
  /** CHIPS: stored in a jar keyed by the top-level site. */
  partitioned: boolean;
}

export type SetCookieParseResult =
  | { ok: true; cookie: SetCookie; warnings: string[] }
  | { ok: false; reason: string; header: string };

// biome-ignore lint/suspicious/noControlCharactersInRegex: RFC 6265bis §5.6 names these control characters.
const forbiddenControl = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * Parses one `Set-Cookie` header value with the RFC 6265bis algorithm. Never throws: a header a
 * browser would ignore gives `{ ok: false, reason }`.
 */
export function safeParseSetCookie(header: string): SetCookieParseResult {
  if (typeof header !== 'string') return { ok: false, reason: 'not a string', header: String(header) };
  const fail = (reason: string): SetCookieParseResult => ({ ok: false, reason, header });
  if (forbiddenControl.test(header)) return fail('contains a control character');
  const semicolon = header.indexOf(';');
  const pair = semicolon === -1 ? header : header.slice(0, semicolon);
  const equals = pair.indexOf('=');
  const name = trimWsp(equals === -1 ? '' : pair.slice(0, equals));
  const value = trimWsp(equals === -1 ? pair : pair.slice(equals + 1));
  if (name === '' && value === '') return fail('empty name and value');
  if (name.length + value.length > 4096) return fail('name and value longer than 4096 octets');
  if (name === '' && /^__(secure|host)-/i.test(value))
    return fail('nameless cookie whose value looks like a prefixed name');

  const cookie: SetCookie = { name, value, secure: false, httpOnly: false, partitioned: false };
  const warnings: string[] = [];
  let hasDomain = false;
  let pathAttribute: string | undefined;
  if (semicolon !== -1) {
    for (const raw of header.slice(semicolon + 1).split(';')) {
      const eq = raw.indexOf('=');
      const attribute = trimWsp(eq === -1 ? raw : raw.slice(0, eq)).toLowerCase();
      const attributeValue = trimWsp(eq === -1 ? '' : raw.slice(eq + 1));
      if (attribute === '') continue;
      if (attributeValue.length > 1024) {
        warnings.push(`${attribute}: value longer than 1024 octets, ignored`);
        continue;
      }
      switch (attribute) {
        case 'expires': {
          const date = parseCookieDate(attributeValue);
          if (date) cookie.expires = date;
          else warnings.push(`expires: unparseable date "${attributeValue}", ignored`);
          break;
        }
        case 'max-age': {
          if (!/^-?\d+$/.test(attributeValue)) {
            warnings.push(`max-age: "${attributeValue}" is not an integer, ignored`);
            break;
          }
          const seconds = Number(attributeValue);
          cookie.maxAge = Number.isSafeInteger(seconds) ? seconds : seconds > 0 ? Number.MAX_SAFE_INTEGER : 0;
          break;
        }
        case 'domain': {
          if (attributeValue === '') {
            warnings.push('domain: empty, ignored');
            break;
          }
          cookie.domain = attributeValue.replace(/^\./, '').toLowerCase();
          hasDomain = true;
          break;
        }
        case 'path':
          if (attributeValue.startsWith('/')) {
            cookie.path = attributeValue;
            pathAttribute = attributeValue;
          } else {
            delete cookie.path;
            pathAttribute = undefined;
            if (attributeValue !== '')
              warnings.push(`path: "${attributeValue}" does not start with "/", default path used`);
          }
          break;
        case 'secure':
          cookie.secure = true;
          break;
        case 'httponly':
          cookie.httpOnly = true;
          break;
        case 'samesite': {
          const lower = attributeValue.toLowerCase();
          if (lower === 'strict' || lower === 'lax' || lower === 'none') cookie.sameSite = lower;
          else warnings.push(`samesite: "${attributeValue}" unknown, browser default applies`);
          break;
        }
        case 'partitioned':
          cookie.partitioned = true;
          break;
        default:
          warnings.push(`unknown attribute "${attribute}" ignored`);
      }
    }
  }

  // Storage-model checks (RFC 6265bis §5.7): browsers drop these cookies altogether.
  if (/^__secure-/i.test(name) && !cookie.secure)
    return fail('__Secure- prefix without the Secure attribute');
  if (/^__host-/i.test(name)) {
    if (!cookie.secure) return fail('__Host- prefix without the Secure attribute');
    if (hasDomain) return fail('__Host- prefix with a Domain attribute');
    if (pathAttribute !== '/') return fail('__Host- prefix without Path=/');
  }
  if (cookie.sameSite === 'none' && !cookie.secure) return fail('SameSite=None without the Secure attribute');
  if (cookie.partitioned && !cookie.secure) return fail('Partitioned without the Secure attribute');
  return { ok: true, cookie, warnings };
}

/**
 * Parses one `Set-Cookie` header value (RFC 6265bis). Throws `cookies/invalid-set-cookie`
 * with the reason when a browser would ignore it; see `safeParseSetCookie` for a non-throwing form.
 */
export function parseSetCookie(header: string): SetCookie {
  const result = safeParseSetCookie(header);
  if (!result.ok) {
    throw cookiesError('cookies/invalid-set-cookie', `Set-Cookie ignored: ${result.reason}`, {
      details: { reason: result.reason, header: result.header.slice(0, 200) },
    });
  }
  return result.cookie;
}

export interface SetCookieBatch {
  cookies: SetCookie[];
  skipped: { header: string; reason: string }[];
}

/** True for what `parseSetCookieHeaders` reads: a string, an array, `undefined` or `null`. */
export function isSetCookieList(value: unknown): value is string | readonly string[] | undefined | null {
  return value == null || typeof value === 'string' || Array.isArray(value);
}

/**
 * Parses every `Set-Cookie` header of a response: an array (Node's `headers['set-cookie']`,
 * `Headers.getSetCookie()`) or one comma-joined string. Bad entries are skipped with a reason;
 * anything else than a string, an array or nothing throws `cookies/invalid-input`.
 */
export function parseSetCookieHeaders(
  headers: string | readonly string[] | undefined | null,
): SetCookieBatch {
  if (!isSetCookieList(headers)) {
    throw cookiesError(
      'cookies/invalid-input',
      `Set-Cookie headers must be a string or an array of strings, not ${describeType(headers)}`,
    );
  }
  const list = headers == null ? [] : typeof headers === 'string' ? splitSetCookieString(headers) : headers;
  const batch: SetCookieBatch = { cookies: [], skipped: [] };
  for (const header of list) {
    const result = safeParseSetCookie(header);
    if (result.ok) batch.cookies.push(result.cookie);
    else batch.skipped.push({ header: result.header, reason: result.reason });
  }
  return batch;
}

function describeType(value: unknown): string {
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/**
 * Splits a comma-joined `Set-Cookie` string back into headers. A comma starts a new cookie only
 * when `name=` follows it, so the comma inside `Expires=Wed, 21 Oct 2015 …` stays put.
 */
export function splitSetCookieString(joined: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < joined.length; i++) {
    if (joined[i] !== ',') continue;
    const rest = joined.slice(i + 1);
    // Spaces around the name are trimmed (RFC 6265bis §5.6): `, _ga =GA1.2.3` starts a cookie too.
    if (/^\s*[^\s=;,]+\s*=/.test(rest)) {
      const piece = joined.slice(start, i).trim();
      if (piece) parts.push(piece);
      start = i + 1;
    }
  }
  const last = joined.slice(start).trim();
  if (last) parts.push(last);
  return parts;
}

// RFC 6265 §4.1.1 / RFC 9110 token and cookie-octet.
const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const cookieValuePattern = /^("?)[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*\1$/;
const attributeValuePattern = /^[\x20-\x3a\x3c-\x7e]*$/;

/**
 * Serialises a cookie to a `Set-Cookie` header value. Throws `cookies/invalid-cookie` when the
 * name is not a token, the value has characters outside cookie-octet, or an attribute holds `;`.
 */
export function serializeSetCookie(cookie: SetCookie): string {
  const problems: string[] = [];
  if (!tokenPattern.test(cookie.name)) problems.push(`name "${cookie.name}" is not an RFC 9110 token`);
  if (!cookieValuePattern.test(cookie.value)) problems.push('value has characters outside cookie-octet');
  if (cookie.domain !== undefined && (cookie.domain === '' || !attributeValuePattern.test(cookie.domain))) {
    problems.push('domain is empty or holds ";" or control characters');
  }
  if (
    cookie.path !== undefined &&
    (!cookie.path.startsWith('/') || !attributeValuePattern.test(cookie.path))
  ) {
    problems.push('path must start with "/" and hold no ";" or control characters');
  }
  if (cookie.expires !== undefined && Number.isNaN(cookie.expires.getTime()))
    problems.push('expires is an invalid date');
  if (cookie.maxAge !== undefined && !Number.isInteger(cookie.maxAge))
    problems.push('max-age must be an integer');
  if (problems.length > 0) {
    throw cookiesError('cookies/invalid-cookie', `Cannot serialise cookie: ${problems.join('; ')}`, {
      issues: problems.map((message) => ({ path: cookie.name, message })),
    });
  }
  let header = `${cookie.name}=${cookie.value}`;
  if (cookie.expires !== undefined) header += `; Expires=${cookie.expires.toUTCString()}`;
  if (cookie.maxAge !== undefined) header += `; Max-Age=${cookie.maxAge}`;
  if (cookie.domain !== undefined) header += `; Domain=${cookie.domain}`;
  if (cookie.path !== undefined) header += `; Path=${cookie.path}`;
  if (cookie.secure) header += '; Secure';
  if (cookie.httpOnly) header += '; HttpOnly';
  if (cookie.sameSite !== undefined)
    header += `; SameSite=${cookie.sameSite[0]!.toUpperCase()}${cookie.sameSite.slice(1)}`;
  if (cookie.partitioned) header += '; Partitioned';
  return header;
}

const months = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
// biome-ignore lint/suspicious/noControlCharactersInRegex: the RFC 6265 §5.1.1 delimiter set includes HTAB.
const dateDelimiter = /[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+/;

/** The cookie-date algorithm of RFC 6265 §5.1.1 (kept by 6265bis); `undefined` when it fails. */
export function parseCookieDate(text: string): Date | undefined {
  let time: [number, number, number] | undefined;
  let day: number | undefined;
  let month: number | undefined;
  let year: number | undefined;
  for (const token of text.split(dateDelimiter)) {
    if (token === '') continue;
    if (time === undefined) {
      const match = /^(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\D.*)?$/.exec(token);
      if (match) {
        time = [Number(match[1]), Number(match[2]), Number(match[3])];
        continue;
      }
    }
    if (day === undefined) {
      const match = /^(\d{1,2})(?:\D.*)?$/.exec(token);
      if (match) {
        day = Number(match[1]);
        continue;
      }
    }
    if (month === undefined) {
      const index = months.indexOf(token.slice(0, 3).toLowerCase());
      if (index !== -1) {
        month = index;
        continue;
      }
    }
    if (year === undefined) {
      const match = /^(\d{2,4})(?:\D.*)?$/.exec(token);
      if (match) {
        year = Number(match[1]);
      }
    }
  }
  if (time === undefined || day === undefined || month === undefined || year === undefined) return undefined;
  if (year >= 70 && year <= 99) year += 1900;
  else if (year >= 0 && year <= 69) year += 2000;
  const [hour, minute, second] = time;
  if (day < 1 || day > 31 || year < 1601 || hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(Date.UTC(year, month, day, hour, minute, second));
  // Date.UTC rolls Feb 30 over to March: such a date does not exist.
  if (date.getUTCDate() !== day) return undefined;
  date.setUTCFullYear(year);
  return date;
}

function trimWsp(text: string): string {
  return text.replace(/^[ \t]+|[ \t]+$/g, '');
}
