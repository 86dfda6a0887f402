import type { Request, Response } from 'express';
import type { Policy } from '@privacykit/core';
import { bannerPurposes, readConsentCookie } from './consent-cookie.js';
import type { BannerPurpose } from './consent-cookie.js';
import { gpcEnabled, gpcNoticeOf } from './gpc.js';
import { csrfToken } from './security.js';
import type { StaffMember } from './staff.js';
import type { SafeHtml } from './views/html.js';
import { layout } from './views/layout.js';
import type { PageContext } from './views/layout.js';

const purposesCache = new WeakMap<Policy, BannerPurpose[]>();

/** The signed-in staff member, set by `loadStaff` in app.ts. */
export function currentStaff(res: Response): StaffMember | undefined {
  return res.locals.staff as StaffMember | undefined;
}

export function pageContext(req: Request, res: Response, policy: Policy): PageContext {
  let purposes = purposesCache.get(policy);
  if (!purposes) {
    purposes = bannerPurposes(policy);
    purposesCache.set(policy, purposes);
  }
  const choice = readConsentCookie(req, policy);
  const gpc = gpcEnabled(req);
  const staff = currentStaff(res);
  const notice = gpcNoticeOf(res);
  const nameOf = (id: string) => policy.purposes.find((purpose) => purpose.id === id)?.name ?? id;
  return {
    site: policy.controller.name,
    csrfToken: csrfToken(req),
    showBanner: !choice && !req.path.startsWith('/admin'),
    bannerPurposes: purposes,
    analytics: choice?.p['audience-measurement'] === true,
    gpc,
    ...(notice && !req.path.startsWith('/admin')
      ? { gpcNotice: { applied: notice.applied.map(nameOf), kept: notice.kept.map(nameOf) } }
      : {}),
    staff: staff ? { name: staff.name, role: staff.role } : undefined,
    path: req.path,
  };
}

/** Sends a full page: the body in the layout, with banner, CSRF token and navigation. */
export function render(
  req: Request,
  res: Response,
  options: { title: string; body: SafeHtml; status?: number },
): void {
  const policy = res.locals.policy as Policy;
  res
    .status(options.status ?? 200)
    .type('html')
    .send(layout({ title: options.title, body: options.body, context: pageContext(req, res, policy) }));
}
