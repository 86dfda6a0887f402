import session from 'express-session';
import type { RequestHandler } from 'express';
import type { Kysely } from 'kysely';
import type { Clock } from '@privacykit/core';
import { KyselySessionStore } from './session-store.js';

declare module 'express-session' {
  interface SessionData {
    /** Synchronizer token for every POST form (S03). */
    csrf: string;
    /** The signed-in staff member (back office). */
    staffId: string;
    /** When the staff member signed in (epoch ms), for the absolute session lifetime. */
    staffSince: number;
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
    /** Last activity, for the idle timeout. */
    seenAt: number;
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
 * Server-side sessions (S04): the browser only holds an opaque id in `pk_session` (httpOnly,
 * SameSite=Lax, Secure behind HTTPS); data lives in `privacykit_portal_sessions`. `rolling`
 * renews the expiry on every request, so `idleMs` is an idle timeout. Sessions are only stored
 * once something is put in them (a CSRF token for a form, a login).
 */
export function sessions(options: SessionOptions): { middleware: RequestHandler; store: KyselySessionStore } {
  const idleMs = options.idleMs ?? 30 * 60_000;
  const store = new KyselySessionStore(options.db, options.clock, idleMs);
  const middleware = session({
    name: SESSION_COOKIE,
    secret: options.secret,
    store,
    resave: false,
    saveUninitialized: false,
    rolling: true,
    cookie: { httpOnly: true, sameSite: 'lax', secure: options.secure, maxAge: idleMs, path: '/' },
  });
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
