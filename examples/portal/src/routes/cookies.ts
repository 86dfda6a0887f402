import { Router } from 'express';
import type { Request } from 'express';
import { z } from 'zod';
import type { Clock, Policy } from '@privacykit/core';
import {
  bannerPurposes,
  clearRefusedCookies,
  newSubjectId,
  readAnyConsentCookie,
  readConsentCookie,
  writeConsentCookie,
} from '../consent-cookie.js';
import { gpcEnabled } from '../gpc.js';
import { render } from '../render.js';
import { csrfToken, limiter } from '../security.js';
import { parseForm } from '../validation.js';
import { preferenceCentreView } from '../views/cookies.js';

/** A choice made on the banner or the preference centre, handed to the consent ledger. */
export interface CookieChoice {
  subjectId: string;
  /** Purpose id → granted. */
  choices: Record<string, boolean>;
  source: 'banner' | 'form';
  /** Purposes refused because the browser sent `Sec-GPC: 1`. */
  gpcRefused: string[];
  userAgent?: string;
  ip?: string;
}

export interface CookieRoutesOptions {
  policy: Policy;
  clock: Clock;
  recordChoice: (choice: CookieChoice) => Promise<void>;
  secureCookies: (req: Request) => boolean;
  /** Consent choices per IP per minute (`RateLimits.consent`). */
  limit: number;
}

const localPath = z
  .string()
  .max(200)
  .regex(/^\/(?![/\\])[A-Za-z0-9/_.~%-]*$/)
  .catch('/');

/**
 * The cookie banner's target and the preference centre (ePrivacy Art 5(3), K02–K06): POST /cookies
 * with `choice=accept-all | refuse-all | save`; GET /cookies shows every purpose with its cookies.
 * A purpose not chosen counts as refused (silence is refusal). GPC refuses advertising purposes
 * whatever the form says (G02).
 */
export function cookieRoutes(options: CookieRoutesOptions): Router {
  const { policy, clock } = options;
  const router = Router();
  const purposes = bannerPurposes(policy);
  const formSchema = z.object({
    choice: z.enum(['accept-all', 'refuse-all', 'save']),
    return: localPath.optional(),
    ...Object.fromEntries(
      purposes.map((p) => [`purpose_${p.id}`, z.enum(['granted', 'refused']).optional()]),
    ),
  });

  router.get('/.well-known/gpc.json', (_req, res) => {
    res.json({ gpc: true, lastUpdate: policy.effectiveDate });
  });

  const consentLimiter = limiter({
    windowMs: 60_000,
    limit: options.limit,
    message: 'Too many cookie choices from your connection. Please wait a minute and try again.',
  });

  router
    .route('/cookies')
    .get((req, res) => {
      const current = readConsentCookie(req, policy);
      render(req, res, {
        title: 'Cookie settings',
        body: preferenceCentreView({
          policy,
          purposes,
          current: current?.p,
          gpc: gpcEnabled(req),
          saved: req.query.saved === '1',
          csrf: csrfToken(req),
        }),
      });
    })
    .post(consentLimiter, async (req, res) => {
      const form = parseForm(formSchema, req.body) as { choice: string; return?: string } & Record<
        string,
        string | undefined
      >;
      const gpc = gpcEnabled(req);
      const choices: Record<string, boolean> = {};
      const gpcRefused: string[] = [];
      for (const purpose of purposes) {
        let granted =
          form.choice === 'accept-all'
            ? true
            : form.choice === 'refuse-all'
              ? false
              : form[`purpose_${purpose.id}`] === 'granted';
        if (gpc && purpose.gpcSensitive) {
          if (granted) gpcRefused.push(purpose.id);
          granted = false;
        }
        choices[purpose.id] = granted;
      }
      // The same subject whatever notice the earlier choice answered: a re-ask after a notice
      // change continues this browser's history, and its refusal ends the grants it replaces.
      const previous = readAnyConsentCookie(req);
      const subjectId = previous?.s ?? newSubjectId();
      await options.recordChoice({
        subjectId,
        choices,
        source: form.choice === 'save' ? 'form' : 'banner',
        gpcRefused,
        userAgent: req.get('user-agent')?.slice(0, 200),
        ip: req.ip,
      });
      const secure = options.secureCookies(req);
      writeConsentCookie(
        res,
        { v: 1, s: subjectId, p: choices, n: policy.version, t: clock.now().toISOString() },
        secure,
      );
      clearRefusedCookies(req, res, policy, choices);
      const back = form.choice === 'save' ? '/cookies?saved=1' : (form.return ?? '/');
      res.redirect(303, back);
    })
    .all((_req, res) => {
      res.set('Allow', 'GET, POST').status(405).type('text').send('Method Not Allowed');
    });

  return router;
}
