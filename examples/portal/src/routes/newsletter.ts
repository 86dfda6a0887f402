import { randomInt } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { randomToken } from '@privacykit/core';
import type { Clock, DataMap, Policy } from '@privacykit/core';
import { constantTimeEqual, hmacSha256Hex } from '@privacykit/core/crypto';
import type { ConsentLedger } from '@privacykit/consent';
import { emailSubjectId } from '../consent-subject.js';
import { HttpError } from '../http-error.js';
import type { Mailer } from '../mailer.js';
import { render } from '../render.js';
import { csrfToken, limiter } from '../security.js';
import { saveSession } from '../session.js';
import { parseForm } from '../validation.js';
import { newsletterView } from '../views/newsletter.js';

const signUpSchema = z.object({
  email: z.string().trim().max(254).email(),
  // Unticked by default; without the tick there is no consent to record (Art 4(11), Recital 32).
  agree: z.literal('yes', { message: 'tick the box to agree to the newsletter' }),
});
const confirmSchema = z.object({
  code: z
    .string()
    .trim()
    .regex(/^\d{8}$/, 'the code is the 8 digits in the email we sent'),
});

/** How long a sign-up's confirmation code is good for, and how many tries it allows. */
export const NEWSLETTER_CONFIRM_MS = 30 * 60_000;
export const NEWSLETTER_CONFIRM_TRIES = 5;

/**
 * Newsletter sign-up (purpose `newsletter`, consent basis), double opt-in: the form only mails a
 * code to the address, and the consent is recorded when this browser enters it. Anyone can type
 * someone else's address, so without that proof a stranger could make (and, being the session
 * that "signed up", withdraw) consent in their name. The decision goes to the consent ledger
 * under `email:<address>` — the subject the access export and the erasure look up from a
 * request's verified email — and this browser session remembers it, so /consent can withdraw it.
 */
export function newsletterRoutes(options: {
  policy: Policy;
  dataMap: DataMap;
  ledger: ConsentLedger;
  clock: Clock;
  mailer: Mailer;
  logError: (error: unknown) => void;
  limit: number;
}): Router {
  const { policy, ledger } = options;
  const router = Router();
  const signUpLimiter = limiter({
    windowMs: 60 * 60_000,
    limit: options.limit,
    message: 'Too many sign-ups from your connection. Please try again in an hour.',
  });

  router
    .route('/newsletter')
    .get((req, res) => {
      render(req, res, {
        title: 'Newsletter',
        body: newsletterView({
          policy,
          csrf: csrfToken(req),
          done: req.query.done === '1',
          ...(req.session.newsletterPending ? { pending: req.session.newsletterPending.email } : {}),
        }),
      });
    })
    .post(signUpLimiter, async (req, res) => {
      const form = parseForm(signUpSchema, req.body);
      const code = String(randomInt(0, 100_000_000)).padStart(8, '0');
      const salt = randomToken(16);
      req.session.newsletterPending = {
        subjectId: emailSubjectId(options.dataMap, form.email),
        email: form.email,
        salt,
        codeHash: hmacSha256Hex(salt, code),
        expiresAt: options.clock.now().getTime() + NEWSLETTER_CONFIRM_MS,
        tries: 0,
      };
      await saveSession(req);
      // Not awaited: the answer must not take longer when a mail goes out.
      options.mailer
        .send({
          to: form.email,
          subject: `${policy.controller.name}: confirm your newsletter subscription`,
          text: [
            'Someone (we hope you) asked to receive our newsletter at this address.',
            '',
            `To confirm, enter this code on the page you signed up on: ${code}`,
            '',
            'It works for 30 minutes. If it was not you, ignore this message: nothing is recorded without the code.',
          ].join('\n'),
        })
        .catch(options.logError);
      res.redirect(303, '/newsletter');
    })
    .all((_req, res) => {
      res.set('Allow', 'GET, POST').status(405).type('text').send('Method Not Allowed');
    });

  router
    .route('/newsletter/confirm')
    .post(signUpLimiter, async (req, res) => {
      const pending = req.session.newsletterPending;
      if (!pending)
        throw new HttpError(409, 'There is no newsletter sign-up to confirm in this browser: sign up first.');
      const expired = pending.expiresAt <= options.clock.now().getTime();
      if (expired || pending.tries >= NEWSLETTER_CONFIRM_TRIES) {
        req.session.newsletterPending = undefined;
        await saveSession(req);
        throw new HttpError(
          400,
          expired
            ? 'This code has expired: sign up again for a new one.'
            : 'Too many wrong codes: sign up again for a new one.',
        );
      }
      const form = parseForm(confirmSchema, req.body);
      // The try is spent before the code is compared.
      pending.tries += 1;
      await saveSession(req);
      if (!constantTimeEqual(hmacSha256Hex(pending.salt, form.code), pending.codeHash)) {
        throw new HttpError(400, 'That code is not the one we sent: check the email and try again.');
      }
      await ledger.record({
        subjectId: pending.subjectId,
        purpose: 'newsletter',
        state: 'granted',
        source: 'form',
        method: 'form-submit',
        ...(req.ip ? { evidence: { ip: req.ip } } : {}),
      });
      req.session.newsletterPending = undefined;
      req.session.consentSubjects = [
        ...new Set([...(req.session.consentSubjects ?? []), pending.subjectId]),
      ].slice(-5);
      await saveSession(req);
      res.redirect(303, '/newsletter?done=1');
    })
    .all((_req, res) => {
      res.set('Allow', 'POST').status(405).type('text').send('Method Not Allowed');
    });

  router
    .route('/newsletter/withdraw')
    .post(async (req, res) => {
      const form = parseForm(z.object({ subject: z.string().max(300) }), req.body);
      // Only subjects this session signed up: no withdrawing someone else's consent by id.
      if (!(req.session.consentSubjects ?? []).includes(form.subject)) {
        throw new HttpError(404, 'No such newsletter consent in this browser session.');
      }
      if (await ledger.mayProcess(form.subject, 'newsletter')) {
        await ledger.withdraw(form.subject, 'newsletter', {
          source: 'form',
          method: 'click',
          ...(req.ip ? { evidence: { ip: req.ip } } : {}),
        });
      }
      res.redirect(303, '/consent?withdrawn=1');
    })
    .all((_req, res) => {
      res.set('Allow', 'POST').status(405).type('text').send('Method Not Allowed');
    });

  return router;
}
