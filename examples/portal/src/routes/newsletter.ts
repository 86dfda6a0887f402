import { randomInt } from 'node:crypto';
import { Router } from 'express';
import type { Request } from 'express';
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
import { regenerateSession, saveSession } from '../session.js';
import type { UnsubscribeLinks } from '../unsubscribe.js';
import { parseForm } from '../validation.js';
import { newsletterView, unsubscribeView } from '../views/newsletter.js';

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
 * After the session has ended, the one-click link in every newsletter mail withdraws it
 * (`/newsletter/unsubscribe`, an opaque token for that subject and purpose only); the portal's
 * own confirmation mail carries it, and so must every newsletter the host sends
 * ({@link newsletterUnsubscribeUrl}).
 */
export function newsletterRoutes(options: {
  policy: Policy;
  dataMap: DataMap;
  ledger: ConsentLedger;
  clock: Clock;
  mailer: Mailer;
  logError: (error: unknown) => void;
  limit: number;
  unsubscribe: UnsubscribeLinks;
  /** Origin of links in mail; default the origin the confirming browser used. */
  linkOrigin?: string;
}): Router {
  const { policy, ledger } = options;
  // The mail goes to the address whose code this browser has just entered: the origin it used is
  // the site its owner reached, not one a stranger can put in someone else's mail.
  const originOf = (req: Request) =>
    options.linkOrigin ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`;
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
      const link = newsletterUnsubscribeUrl(originOf(req), options.unsubscribe, pending.subjectId);
      options.mailer
        .send({
          to: pending.email,
          subject: `${policy.controller.name}: you are subscribed to our newsletter`,
          text: [
            'Your subscription to our newsletter is confirmed, and your consent is recorded.',
            '',
            'You can withdraw it at any time, in one click, with this link (it is in every newsletter too):',
            link,
            '',
            'or on the "Your consent" page of our privacy centre, in the browser you signed up with.',
          ].join('\n'),
          headers: unsubscribeHeaders(link),
        })
        .catch(options.logError);
      req.session.newsletterPending = undefined;
      // The session now lists a subject it may withdraw for: a new id, so one planted or seen
      // before the confirmation (session fixation) does not carry that power.
      await regenerateSession(req);
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

  // The one-click unsubscribe of every newsletter mail (RFC 8058). GET only shows the button: mail
  // scanners follow links, and following one must not withdraw anything. The POST needs no session
  // or CSRF token (a mail client posts `List-Unsubscribe=One-Click` from elsewhere): the signed
  // token, which only the mail's recipient has, is the authority, and it can only withdraw.
  // The form sends `t` in the body; a mail client posts to the header's URL, `t` in its query.
  const tokenSchema = z.object({ t: z.string().max(700) });
  const tokenOf = (req: Request) =>
    parseForm(tokenSchema, { t: (req.body as { t?: unknown } | undefined)?.t ?? req.query.t }).t;
  router
    .route('/newsletter/unsubscribe')
    .all((_req, res, next) => {
      // The page names the address the link unsubscribes: no cache keeps it.
      res.set('Cache-Control', 'no-store');
      next();
    })
    .get((req, res) => {
      const done = req.query.done === '1';
      const token = typeof req.query.t === 'string' ? req.query.t : '';
      const subject = done ? undefined : options.unsubscribe.read(token);
      if (!done && !subject) throw new HttpError(404, 'This unsubscribe link is not valid.');
      render(req, res, {
        title: 'Unsubscribe',
        body: unsubscribeView({
          csrf: csrfToken(req),
          ...(subject ? { token, email: subject.replace(/^email:/, '') } : {}),
          done,
        }),
      });
    })
    .post(async (req, res) => {
      const subject = options.unsubscribe.read(tokenOf(req));
      if (!subject) throw new HttpError(404, 'This unsubscribe link is not valid.');
      const status = (await ledger.current(subject)).purposes.newsletter;
      if (status?.state === 'granted') {
        await ledger.withdraw(subject, 'newsletter', {
          source: 'form',
          method: 'click',
          ...(req.ip ? { evidence: { ip: req.ip } } : {}),
        });
      }
      res.redirect(303, '/newsletter/unsubscribe?done=1');
    })
    .all((_req, res) => {
      res.set('Allow', 'GET, POST').status(405).type('text').send('Method Not Allowed');
    });

  return router;
}

/** The unsubscribe link to put in every newsletter mail sent to `subjectId` (`email:<address>`). */
export function newsletterUnsubscribeUrl(origin: string, links: UnsubscribeLinks, subjectId: string): string {
  return `${origin}/newsletter/unsubscribe?t=${encodeURIComponent(links.token(subjectId))}`;
}

/** RFC 2369 / 8058 headers: mail clients show an "Unsubscribe" button that posts the token. */
export function unsubscribeHeaders(link: string): Record<string, string> {
  return { 'List-Unsubscribe': `<${link}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' };
}
