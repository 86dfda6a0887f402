import { Router } from 'express';
import { privacyNotice } from '@privacykit/core';
import type { Policy } from '@privacykit/core';
import { render } from '../render.js';
import { privacyNoticeView } from '../views/privacy-notice.js';

/** GET /privacy — the Art 13 notice, rendered from the policy the portal enforces. */
export function privacyRoutes(policy: Policy): Router {
  const router = Router();
  const body = privacyNoticeView(privacyNotice(policy));
  router.get('/privacy', (req, res) => {
    render(req, res, { title: 'Privacy notice', body });
  });
  return router;
}
