import { Router } from 'express';
import { privacyNotice } from '@privacykit/core';
import type { Policy } from '@privacykit/core';
import { layout } from '../views/layout.js';
import { privacyNoticeView } from '../views/privacy-notice.js';

/** GET /privacy — the Art 13 notice, rendered from the policy the portal enforces. */
export function privacyRoutes(policy: Policy): Router {
  const router = Router();
  const notice = privacyNotice(policy);
  const page = layout({
    title: 'Privacy notice',
    body: privacyNoticeView(notice),
    site: policy.controller.name,
  });
  router.get('/privacy', (_req, res) => {
    res.type('html').send(page);
  });
  return router;
}
