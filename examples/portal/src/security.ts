import { timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import { HttpError } from './http-error.js';

/**
 * The CSRF token for this browser's forms: an HMAC of its session id (see `sessions()`), so a
 * page with a form stores no session row.
 */
export function csrfToken(req: Request): string {
  return req.csrfToken?.() ?? '';
}

function sameToken(a: unknown, b: string | undefined): boolean {
  if (typeof a !== 'string' || !b) return false;
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function expectedOrigin(req: Request, publicOrigin: string | undefined): string {
  return publicOrigin ?? `${req.protocol}://${req.get('host') ?? ''}`;
}

/**
 * CSRF protection for every state-changing request (S03, ASVS 3.5): the `Origin` (or, failing
 * that, `Referer`) must be this site when present, and the form must carry the session's
 * synchronizer token in `_csrf`. SameSite=Lax on the session cookie is the third layer. GET and
 * HEAD never mutate, so they pass. `exempt` names POST routes whose form carries its own
 * authority instead (a signed single-purpose token mailed to its owner, posted by a mail client).
 */
export function csrfProtection(
  options: { publicOrigin?: string; exempt?: readonly string[] } = {},
): RequestHandler {
  const exempt = new Set(options.exempt ?? []);
  return (req, _res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    if (exempt.has(req.path)) return next();
    const expected = expectedOrigin(req, options.publicOrigin);
    const origin = req.get('origin');
    const referer = req.get('referer');
    let claimed: string | undefined;
    if (origin && origin !== 'null') claimed = origin;
    else if (origin === 'null') claimed = 'null';
    else if (referer) {
      try {
        claimed = new URL(referer).origin;
      } catch {
        claimed = 'invalid';
      }
    }
    if (claimed !== undefined && claimed !== expected) {
      return next(new HttpError(403, 'This form was sent from another site and has been refused.'));
    }
    const body = req.body as Record<string, unknown> | undefined;
    if (!sameToken(body?._csrf, req.csrfExpected)) {
      return next(
        new HttpError(
          403,
          'This form has expired or did not come from this site. Reload the page and try again.',
        ),
      );
    }
    next();
  };
}

export interface RateLimits {
  /** Staff login attempts per IP and account per 15 minutes. */
  login: number;
  /** Failed staff logins per account per hour, from any number of IPs (ASVS 2.2.1: at most 100). */
  loginAccount: number;
  /**
   * Failed staff logins per IP per 15 minutes, whatever the accounts: one address spraying a new
   * email on every try is not slowed by the per-account limits.
   */
  loginAddress: number;
  /** Rights requests filed per IP per hour. */
  intake: number;
  /** Verification-code and download attempts per IP per 15 minutes. */
  verify: number;
  /** Consent choices per IP per minute. */
  consent: number;
}

export const defaultRateLimits: RateLimits = {
  login: 5,
  loginAccount: 100,
  loginAddress: 20,
  intake: 10,
  verify: 10,
  consent: 600,
};

/** A rate limiter that answers with the portal's 429 page (S02, hostile cases 14–15). */
export function limiter(options: {
  windowMs: number;
  limit: number;
  key?: (req: Request) => string;
  /** Count only the requests answered with an error (a failed sign-in, not a successful one). */
  failuresOnly?: boolean;
  message: string;
}): RequestHandler {
  return rateLimit({
    windowMs: options.windowMs,
    limit: options.limit,
    skipSuccessfulRequests: options.failuresOnly ?? false,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    ...(options.key ? { keyGenerator: options.key } : {}),
    validate: { keyGeneratorIpFallback: false },
    // express-rate-limit has set Retry-After already (standardHeaders).
    handler: (_req, _res, next) => next(new HttpError(429, options.message)),
  });
}
