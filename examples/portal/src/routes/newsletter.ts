import { Router } from 'express';
import { z } from 'zod';
import type { DataMap, Policy } from '@privacykit/core';
import type { ConsentLedger } from '@privacykit/consent';
import { emailSubjectId } from '../consent-subject.js';
import { HttpError } from '../http-error.js';
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

/**
 * Newsletter sign-up (purpose `newsletter`, consent basis): the decision goes to the consent
 * ledger under `email:<address>` — the subject the access export and the erasure look up from a
 * request's verified email — and this browser session remembers it, so /consent can withdraw it.
 */
export function newsletterRoutes(options: {
  policy: Policy;
  dataMap: DataMap;
  ledger: ConsentLedger;
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
        body: newsletterView({ policy, csrf: csrfToken(req), done: req.query.done === '1' }),
      });
    })
    .post(signUpLimiter, async (req, res) => {
      const form = parseForm(signUpSchema, req.body);
      const subjectId = emailSubjectId(options.dataMap, form.email);
      await ledger.record({
        subjectId,
        purpose: 'newsletter',
        state: 'granted',
        source: 'form',
        method: 'form-submit',
        ...(req.ip ? { evidence: { ip: req.ip } } : {}),
      });
      req.session.consentSubjects = [...new Set([...(req.session.consentSubjects ?? []), subjectId])].slice(
        -5,
      );
      await saveSession(req);
      res.redirect(303, '/newsletter?done=1');
    })
    .all((_req, res) => {
      res.set('Allow', 'GET, POST').status(405).type('text').send('Method Not Allowed');
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
