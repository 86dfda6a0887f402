import { Router } from 'express';
import { recordOfProcessing } from '@privacykit/core';
import type { Policy } from '@privacykit/core';
import { render } from '../../render.js';
import { recordView } from '../../views/admin/record.js';

/** GET /admin/record — the Art 30(1) record of processing activities, derived from the policy. */
export function adminRecordRoutes(policy: Policy): Router {
  const router = Router();
  const record = recordOfProcessing(policy);
  router.get('/admin/record', (req, res) => {
    render(req, res, { title: 'Record of processing (Art 30)', body: recordView(record) });
  });
  router.get('/admin/record.json', (_req, res) => {
    res.set('Content-Disposition', 'attachment; filename="record-of-processing.json"').json(record);
  });
  return router;
}
