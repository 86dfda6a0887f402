import { Router } from 'express';
import { z } from 'zod';
import type { Policy } from '@privacykit/core';
import type { ConsentLedger } from '@privacykit/consent';
import { render } from '../../render.js';
import { consentOverviewView, subjectProofView } from '../../views/admin/consent.js';
import { HttpError } from '../../http-error.js';

const subjectSchema = z.string().trim().min(1).max(255);

/**
 * Consent in the back office: ledger verification (the whole Merkle log recomputed), statistics
 * per purpose and notice version, and one subject's proof (history and signed receipts, Art 7(1)).
 */
export function adminConsentRoutes(options: { policy: Policy; ledger: ConsentLedger }): Router {
  const { ledger, policy } = options;
  const router = Router();

  router.get('/admin/consent', async (req, res) => {
    const verification = await ledger.verify();
    const stats = await ledger.stats();
    const head = await ledger.treeHead();
    render(req, res, {
      title: 'Consent ledger',
      body: consentOverviewView({ policy, verification, stats, head }),
    });
  });

  router.get('/admin/consent/subject', async (req, res) => {
    const subject = subjectSchema.safeParse(req.query.id);
    if (!subject.success) throw new HttpError(400, 'Give the subject id to look up.');
    const current = await ledger.current(subject.data);
    const history = await ledger.history(subject.data);
    render(req, res, {
      title: 'Consent proof',
      body: subjectProofView({ policy, subjectId: subject.data, current, history }),
    });
  });

  router.get('/admin/consent/receipts/:eventId', async (req, res) => {
    const eventId = z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:~-]{0,63}$/)
      .safeParse(req.params.eventId);
    if (!eventId.success) throw new HttpError(404, 'No such receipt.');
    const receipt = await ledger.receipt(eventId.data);
    res
      .set({
        'Content-Disposition': `attachment; filename="consent-receipt-${eventId.data}.json"`,
        'Cache-Control': 'no-store',
      })
      .type('application/json')
      .send(`${JSON.stringify(receipt, null, 2)}\n`);
  });
  return router;
}
