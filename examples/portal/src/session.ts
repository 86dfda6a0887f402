import { createHmac } from 'node:crypto';
import session from 'express-session';
import type { Request, RequestHandler } from 'express';
import type { Kysely } from 'kysely';
import { randomToken } from '@privacykit/core';
import type { Clock } from '@privacykit/core';
import { constantTimeEqual, hmacSha256Hex } from '@privacykit/core/crypto';
import { KyselySessionStore, STORED_SESSION } from './session-store.js';

declare global {
  namespace Express {
    interface Request {
      /**
       * The synchronizer token for this browser's forms (S03), derived from its session id; sets
       * `pk_session` when the browser has none yet (no database row: see {@link sessions}).
       */
      csrfToken?: () => string;
      /** The token a form from this browser must carry; undefined when it sent no valid `pk_session`. */
      csrfExpected?: string;
    }
  }
}

declare module 'express-session' {
  interface SessionData {
    /** The signed-in staff member (back office). */
    staffId: string;
    /** When the staff member signed in (epoch ms), for the absolute session lifetime. */
    staffSince: number;
    /** The member's `passwordStamp` at sign-in: a password changed since ends this session. */
    staffStamp: string;
    /** Rights requests this browser filed and verified: only these are shown to it (S05). */
    requestIds: string[];
    /**
     * Requests this browser filed and has not verified yet, by the opaque reference in the address
     * of their "check your inbox" page. A request's own id is shown only once verified: a duplicate
     * submission is answered with the open request it duplicates, which may be someone else's.
     * Codes are checked through the browser's latest submission (`submissionId`): wrong ones sent
     * through a duplicate count against that submission, never against the request its subject is
     * verifying. (Entries from before `submissionId` existed fall back to the request id.)
     */
    pendingRequests: { ref: string; requestId: string; submissionId?: string }[];
    /** Consent-ledger subjects (`email:…`) this session signed up for the newsletter. */
    consentSubjects: string[];
    /** A newsletter sign-up awaiting the code mailed to its address (double opt-in). */
    newsletterPending: {
      subjectId: string;
      email: string;
      salt: string;
      codeHash: string;
      expiresAt: number;
      tries: number;
    };
    /** The pending "check my request" challenge of a returning visitor. */
    returnChallenge: string;
  }
}

export const SESSION_COOKIE = 'pk_session';

export interface SessionOptions {
  db: Kysely<any>;
  clock: Clock;
  secret: string | string[];
  /** `true` behind HTTPS; `'auto'` trusts `req.secure`. */
  secure: boolean | 'auto';
  /** Idle timeout: a session unused this long is gone (ASVS 7.3.1). Default 30 minutes. */
  idleMs?: number;
}

/**
 * `cookie-signature`'s format, which express-session reads and writes: `<value>.<HMAC-SHA-256 in
 * base64 without padding>`. Written here so the portal can read a session id that has no row.
 */
function sign(value: string, secret: string): string {
  return `${value}.${createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '')}`;
}

/** The session id in a validly signed `pk_session` cookie (any of the secrets), else undefined. */
function signedSessionId(req: Request, secrets: readonly string[]): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at < 0 || part.slice(0, at).trim() !== SESSION_COOKIE) continue;
    let raw: string;
    try {
      raw = decodeURIComponent(part.slice(at + 1).trim());
    } catch {
      return undefined;
    }
    if (!raw.startsWith('s:')) return undefined;
    const value = raw.slice(2, raw.lastIndexOf('.'));
    if (!value) return undefined;
    // The first cookie of the name is the one express-session reads too.
    return secrets.some((secret) => constantTimeEqual(sign(value, secret), raw.slice(2))) ? value : undefined;
  }
  return undefined;
}

const ADOPT = Symbol('privacykit.adoptSessionId');
type WithAdopt = Request & { [ADOPT]?: string };

/**
 * Server-side sessions (S04): the browser only holds an opaque id in `pk_session` (httpOnly,
 * SameSite=Lax, Secure behind HTTPS); data lives in `privacykit_portal_sessions`. `rolling`
 * renews the expiry on every request, so `idleMs` is an idle timeout.
 *
 * A row is stored only once something is put in the session (a sign-up awaiting its code, a filed
 * request, a login). A form still needs a CSRF token bound to the browser, so a visitor without a
 * session gets a signed `pk_session` id and no row: the token is an HMAC of that id, and a row
 * created later (on the POST that needs one) takes the same id, so the forms already on screen
 * keep working. Before this, every cookieless page view stored a session for the banner's token,
 * and the table grew with every crawler hit.
 */
export function sessions(options: SessionOptions): { middleware: RequestHandler; store: KyselySessionStore } {
  const idleMs = options.idleMs ?? 30 * 60_000;
  const secrets = [options.secret].flat();
  const csrfKey = hmacSha256Hex(secrets[0] ?? '', 'privacykit-portal/csrf');
  const csrfOf = (sid: string) => hmacSha256Hex(csrfKey, sid);
  const store = new KyselySessionStore(options.db, options.clock, idleMs);
  const inner = session({
    name: SESSION_COOKIE,
    secret: secrets,
    store,
    resave: false,
    saveUninitialized: false,
    rolling: true,
    // A signed id without a row (see above) is kept rather than replaced, once, when the session
    // is first loaded; a regenerated session (login, verification) always gets a fresh one.
    genid: (req) => {
      const adopt = (req as WithAdopt)[ADOPT];
      (req as WithAdopt)[ADOPT] = undefined;
      return adopt ?? randomToken(24);
    },
    cookie: { httpOnly: true, sameSite: 'lax', secure: options.secure, maxAge: idleMs, path: '/' },
  });
  const middleware: RequestHandler = (req, res, next) => {
    const fromCookie = signedSessionId(req, secrets);
    (req as WithAdopt)[ADOPT] = fromCookie;
    inner(req, res, (error?: unknown) => {
      const adopted = (req as WithAdopt)[ADOPT] === undefined && fromCookie !== undefined;
      (req as WithAdopt)[ADOPT] = undefined;
      if (error) return next(error);
      // Loaded from a row (the id was not adopted): the store deletes the row if it empties.
      if (req.session && fromCookie === req.sessionID && !adopted) {
        Object.defineProperty(req.session, STORED_SESSION, { value: true, enumerable: false });
      }
      req.csrfExpected = fromCookie === undefined ? undefined : csrfOf(fromCookie);
      let cookieSet = false;
      req.csrfToken = () => {
        const sid = req.sessionID;
        if (sid !== fromCookie && !cookieSet) {
          // No valid cookie came with this request: give the browser the id its token is bound to.
          const secure = options.secure === 'auto' ? req.secure : options.secure;
          if (!secure || req.secure) {
            res.cookie(SESSION_COOKIE, `s:${sign(sid, secrets[0] ?? '')}`, {
              httpOnly: true,
              sameSite: 'lax',
              secure,
              maxAge: idleMs,
              path: '/',
            });
          }
          cookieSet = true;
        }
        return csrfOf(sid);
      };
      next();
    });
  };
  return { middleware, store };
}

/** Issues a new session id keeping the data (on login, verification): no session fixation. */
export function regenerateSession(req: Parameters<RequestHandler>[0]): Promise<void> {
  const keep = { ...req.session } as Record<string, unknown>;
  delete keep.cookie;
  return new Promise((resolve, reject) =>
    req.session.regenerate((error) => {
      if (error) return reject(error);
      Object.assign(req.session, keep);
      resolve();
    }),
  );
}

export function destroySession(req: Parameters<RequestHandler>[0]): Promise<void> {
  return new Promise((resolve, reject) =>
    req.session.destroy((error) => (error ? reject(error) : resolve())),
  );
}

/**
 * Stores the session now. Call it before redirecting after a change: express-session otherwise
 * saves while the response ends, and a browser following the redirect can arrive first.
 */
export function saveSession(req: Parameters<RequestHandler>[0]): Promise<void> {
  return new Promise((resolve, reject) => req.session.save((error) => (error ? reject(error) : resolve())));
}
