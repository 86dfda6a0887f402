import { z } from 'zod';

/**
 * One site the back office may scan, as configured: `scheme://host[:port]`, http(s) only, no
 * credentials, path, query or fragment. Read back as the URL's canonical origin (lower-case host,
 * default port dropped), which is what a scan target is compared with.
 */
export const scanOriginSchema = z
  .string()
  .trim()
  .transform((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a URL` });
      return z.NEVER;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not an http:// or https:// origin` });
      return z.NEVER;
    }
    if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) {
      ctx.addIssue({
        code: 'custom',
        message: `"${value}" must be an origin only (scheme://host[:port]), without credentials, path or query`,
      });
      return z.NEVER;
    }
    return url.origin;
  });

/**
 * The origins a portal may scan: `scanOrigins` when given, else the portal's own public origin,
 * else none (every scan is refused). Throws on a malformed entry: a configuration error should stop
 * the portal at start, not surface as a refused scan later.
 */
export function scanOriginsOf(config: { scanOrigins?: readonly string[]; publicOrigin?: string }): string[] {
  const configured = config.scanOrigins ?? (config.publicOrigin ? [config.publicOrigin] : []);
  const parsed = z.array(scanOriginSchema).safeParse(configured);
  if (!parsed.success) {
    throw new Error(`Invalid scanOrigins: ${parsed.error.issues[0]?.message ?? 'invalid value'}`);
  }
  return [...new Set(parsed.data)];
}

/** A page address checked against the allow-list: the URL to hand to the browser, or why not. */
export type ScanTarget =
  | { allowed: true; url: string }
  | {
      allowed: false;
      problem: 'too-long' | 'unparsable' | 'scheme' | 'credentials' | 'origin';
      /** 400 for a malformed address, 403 for a well-formed one the portal may not scan. */
      status: 400 | 403;
      reason: string;
    };

/**
 * Checks a page address a staff member asked to scan. The scan runs in the server's browser, so an
 * unchecked address is a server-side request forgery (OWASP ASVS 12.6.1): only pages on a
 * configured origin are scanned, never a non-http(s) scheme or an address carrying credentials.
 * The returned `url` is the parsed, serialised form, so the browser loads exactly what was checked.
 */
export function checkScanTarget(input: string, origins: readonly string[]): ScanTarget {
  const value = input.trim();
  if (value.length > 2000) {
    return {
      allowed: false,
      problem: 'too-long',
      status: 400,
      reason: 'the address is longer than 2000 characters',
    };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return {
      allowed: false,
      problem: 'unparsable',
      status: 400,
      reason: 'enter a full http:// or https:// address',
    };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return {
      allowed: false,
      problem: 'scheme',
      status: 400,
      reason: 'only http:// and https:// pages can be scanned',
    };
  }
  if (url.username || url.password) {
    return {
      allowed: false,
      problem: 'credentials',
      status: 400,
      reason: 'an address with a user name or password in it cannot be scanned',
    };
  }
  if (!origins.includes(url.origin)) {
    return {
      allowed: false,
      problem: 'origin',
      status: 403,
      reason:
        origins.length === 0
          ? 'no site is configured for scanning (set scanOrigins, or SCAN_ORIGINS / PUBLIC_ORIGIN for server.ts)'
          : `${url.origin} is not one of the sites this portal may scan (${origins.join(', ')})`,
    };
  }
  return { allowed: true, url: url.href };
}
