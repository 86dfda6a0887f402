import { Router } from 'express';
import { z } from 'zod';
import type { Clock, Policy } from '@privacykit/core';
import type { ConsentLedger } from '@privacykit/consent';
import type { Request } from 'express';
import {
  bannerPurposes,
  clearRefusedCookies,
  readAnyConsentCookie,
  writeConsentCookie,
} from '../consent-cookie.js';
import { HttpError } from '../http-error.js';
import { render } from '../render.js';
import { csrfToken } from '../security.js';
import { consentHistoryView } from '../views/consent.js';
import { html } from '../views/html.js';
import { newsletterConsentsView } from '../views/newsletter.js';

const eventIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:~-]{0,63}$/);

/**
 * The visitor's own consent record (Art 7(1), 15): current choices, the full history, a signed
 * receipt per decision, and `POST /withdraw` — withdrawing everything in one click, as easy as
 * accepting was (Art 7(3), C05). The visitor is known only by the pseudonymous id in `pk_consent`.
 */
export function consentRoutes(options: {
  policy: Policy;
  clock: Clock;
  ledger: ConsentLedger;
  secureCookies: (req: Request) => boolean;
}): Router {
  const { policy, ledger, clock } = options;
  const router = Router();
  const purposes = bannerPurposes(policy);

  // A choice made under an earlier notice is still this browser's: its history, receipts and
  // withdrawal stay reachable after the notice changes (Art 7(3)); only the banner asks again.
  router.get('/consent', async (req, res) => {
    const cookie = readAnyConsentCookie(req);
    const current = cookie ? await ledger.current(cookie.s) : undefined;
    const history = cookie ? await ledger.history(cookie.s) : [];
    const newsletter = await Promise.all(
      (req.session.consentSubjects ?? []).map(async (subjectId) => ({
        subjectId,
        status: (await ledger.current(subjectId)).purposes.newsletter,
      })),
    );
    render(req, res, {
      title: 'Your consent',
      body: html`${consentHistoryView({
        policy,
        current,
        history,
        csrf: csrfToken(req),
        withdrawn: req.query.withdrawn === '1',
      })}${newsletterConsentsView({ entries: newsletter, csrf: csrfToken(req) })}`,
    });
  });

  router.get('/consent/receipts/:eventId', async (req, res) => {
    const cookie = readAnyConsentCookie(req);
    const eventId = eventIdSchema.safeParse(req.params.eventId);
    if (!cookie || !eventId.success) throw new HttpError(404, 'No such receipt.');
    const history = await ledger.history(cookie.s);
    // Object-level check: only receipts of this browser's own decisions (S05).
    if (!history.some((entry) => entry.eventId === eventId.data && entry.kind === 'decision')) {
      throw new HttpError(404, 'No such receipt.');
    }
    const receipt = await ledger.receipt(eventId.data);
    res
      .set({
        'Content-Disposition': `attachment; filename="consent-receipt-${eventId.data}.json"`,
        'Cache-Control': 'no-store',
      })
      .type('application/json')
      .send(`${JSON.stringify(receipt, null, 2)}\n`);
  });

  router.get('/consent/public-key', async (_req, res) => {
    res.type('text/plain').send(await ledger.publicKey());
  });

  router
    .route('/withdraw')
    .post(async (req, res) => {
      const cookie = readAnyConsentCookie(req);
      if (cookie) {
        const current = await ledger.current(cookie.s);
        // Every standing grant, valid or awaiting re-consent after a notice change.
        for (const [purpose, status] of Object.entries(current.purposes)) {
          if (status.state === 'granted') {
            await ledger.withdraw(cookie.s, purpose, {
              source: 'form',
              method: 'click',
              evidence: req.ip ? { ip: req.ip } : undefined,
            });
          }
        }
        // Refusing everything is a complete answer under any notice: stored under the current one,
        // so the banner does not ask again at once; every purpose's cookies are expired.
        const choices = Object.fromEntries(
          [...Object.keys(cookie.p), ...purposes.map((purpose) => purpose.id)].map((id) => [id, false]),
        );
        writeConsentCookie(
          res,
          { v: 1, s: cookie.s, p: choices, n: policy.version, t: clock.now().toISOString() },
          options.secureCookies(req),
        );
        clearRefusedCookies(req, res, policy, choices);
      }
      res.redirect(303, '/consent?withdrawn=1');
    })
    .all((_req, res) => {
      res.set('Allow', 'POST').status(405).type('text').send('Method Not Allowed');
    });

  return router;
}
