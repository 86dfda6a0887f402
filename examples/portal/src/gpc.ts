import type { Request, RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Policy } from '@privacykit/core';
import { GPC_TAGS, parseGpcHeader } from '@privacykit/consent';
import type { ConsentLedger } from '@privacykit/consent';
import { clearRefusedCookies, readAnyConsentCookie, writeConsentCookie } from './consent-cookie.js';

/**
 * Global Privacy Control (G01): `Sec-GPC` counts only as exactly "1"; when the header arrives
 * several times any "1" counts; absence never means consent.
 */
export function gpcEnabled(req: Request): boolean {
  return parseGpcHeader(req.headersDistinct['sec-gpc']);
}

/** What the visitor is told about their GPC signal on this page (G03). */
export interface GpcNotice {
  /** Purposes whose earlier grant the signal has just ended. */
  applied: string[];
  /** Purposes the subject granted after the signal refused them: their choice is kept. */
  kept: string[];
}

/** The notice set by {@link applyGpcSignal} for this response, if any. */
export function gpcNoticeOf(res: { locals: Record<string, unknown> }): GpcNotice | undefined {
  return res.locals.gpcNotice as GpcNotice | undefined;
}

/**
 * Applies a `Sec-GPC: 1` signal to the ledger for a visitor who has a consent cookie, on any page
 * (G02, hostile case 25): before, the signal counted only inside POST /cookies, so a browser that
 * turned GPC on after "Accept all" kept its advertising grant. The ledger is asked once per
 * subject per notice version — the cookie remembers the version (`g`) — not on every page view;
 * a new choice on the banner clears `g`, so the next signal is weighed against it. (A client that
 * drops the updated cookie asks again each time; the ledger then writes nothing more: a repeated
 * signal is `unchanged`, and a kept grant's conflict is logged once.)
 *
 * A grant the signal ends is shown once (`applied`); a grant given after the signal had refused
 * the purpose is the subject's own later choice, kept as the consent ledger documents, and shown
 * on every page while the browser sends the signal (`kept`, remembered in the cookie's `c`).
 * Applying the signal on a GET is the exception to "GET never mutates": the header is the
 * browser's own statement of its user's preference, not something another site can forge. But
 * the cookie is the client's to make up: a script sending `Sec-GPC: 1` with a fresh random subject
 * on every GET made the ledger append a refusal each time — permanent writes from plain page
 * views. So the ledger is written only when the subject has a grant on record that the signal
 * ends (or keeps, and reports): no grant, nothing to write, and the cookie remembers the version
 * so the next page does not even read. The reads are limited per address like consent choices
 * (`limit` a minute); past it the page shows without the signal being weighed.
 */
export function applyGpcSignal(options: {
  policy: Policy;
  ledger: ConsentLedger;
  secureCookies: (req: Request) => boolean;
  logError: (error: unknown) => void;
  /** Ledger look-ups for the signal per IP per minute (the consent choices' limit). */
  limit: number;
}): RequestHandler[] {
  const { policy, ledger } = options;
  // The purposes the ledger's `applyGpc` would refuse: consent purposes tagged sale, sharing or
  // cross-context advertising.
  const signalled = policy.purposes
    .filter((purpose) => purpose.tags.some((tag) => (GPC_TAGS as readonly string[]).includes(tag)))
    .filter((purpose) => purpose.legalBases.some((basis) => basis.basis === 'consent'))
    .map((purpose) => purpose.id);
  const pending = (req: Request) => {
    if (req.method !== 'GET' || !gpcEnabled(req)) return undefined;
    const cookie = readAnyConsentCookie(req);
    return cookie && cookie.g !== policy.version ? cookie : undefined;
  };
  const limited = rateLimit({
    windowMs: 60_000,
    limit: options.limit,
    // Only the page views that would reach the ledger count.
    skip: (req) => pending(req) === undefined,
    standardHeaders: false,
    legacyHeaders: false,
    validate: { keyGeneratorIpFallback: false },
    // Past the limit the page still shows; the signal is weighed on a later one.
    handler: (_req, res, next) => {
      res.locals.gpcLimited = true;
      next();
    },
  });
  const apply: RequestHandler = async (req, res, next) => {
    if (req.method !== 'GET' || !gpcEnabled(req)) return next();
    const cookie = readAnyConsentCookie(req);
    if (!cookie) return next();
    if (cookie.g === policy.version) {
      if (cookie.c?.length) res.locals.gpcNotice = { applied: [], kept: cookie.c } satisfies GpcNotice;
      return next();
    }
    if (res.locals.gpcLimited) return next();
    try {
      const current = await ledger.current(cookie.s);
      if (!signalled.some((purpose) => current.purposes[purpose]?.state === 'granted')) {
        // Nothing the signal would end: no ledger write, and no look-up on the next page.
        writeConsentCookie(res, { ...cookie, g: policy.version, c: undefined }, options.secureCookies(req));
        return next();
      }
      const outcome = await ledger.applyGpc(cookie.s, req.headersDistinct['sec-gpc'], {
        ...(req.ip ? { evidence: { ip: req.ip } } : {}),
      });
      const refused = outcome.refused.map((decision) => decision.purpose);
      const kept = outcome.conflicts
        .filter((conflict) => conflict.resolution === 'grant-kept')
        .map((conflict) => conflict.purpose);
      const applied = outcome.conflicts
        .filter((conflict) => conflict.resolution === 'signal-applied')
        .map((conflict) => conflict.purpose);
      const choices = { ...cookie.p, ...Object.fromEntries(refused.map((purpose) => [purpose, false])) };
      writeConsentCookie(
        res,
        { ...cookie, p: choices, g: policy.version, ...(kept.length ? { c: kept } : { c: undefined }) },
        options.secureCookies(req),
      );
      clearRefusedCookies(req, res, policy, choices);
      if (applied.length || kept.length) res.locals.gpcNotice = { applied, kept } satisfies GpcNotice;
    } catch (error) {
      // The page still shows; the next view tries again.
      options.logError(error);
    }
    next();
  };
  return [limited, apply];
}
