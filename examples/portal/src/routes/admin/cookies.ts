import { Router } from 'express';
import type { Response } from 'express';
import { z } from 'zod';
import type { DeclaredCookie, Policy } from '@privacykit/core';
import { createClassifier, overridesFromPolicy } from '@privacykit/cookies';
import type { Classifier } from '@privacykit/cookies';
import type { ScanOptions, ScanResult } from '@privacykit/cookies/scan';
import type { StaffAudit } from '../../audit.js';
import { HttpError } from '../../http-error.js';
import { currentStaff, render } from '../../render.js';
import { csrfToken } from '../../security.js';
import { parseForm } from '../../validation.js';
import { cookiesOfficeView } from '../../views/admin/cookies.js';
import type { CookieFinding } from '../../views/admin/cookies.js';

/** Runs a scan; the default is `scanSite` from `@privacykit/cookies/scan` (system Chromium). */
export type CookieScanner = (url: string, options: ScanOptions) => Promise<ScanResult>;

const defaultScanner: CookieScanner = async (url, options) => {
  // Loaded on first use: the back office starts without Chromium; only a scan needs it.
  const { scanSite } = await import('@privacykit/cookies/scan');
  return scanSite(url, options);
};

/** Only http(s) addresses: no file:, data:, javascript: or chrome: pages for the server's browser. */
export const scanUrlSchema = z
  .string()
  .trim()
  .max(2000)
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
    } catch {
      return false;
    }
  }, 'enter an http:// or https:// address');

const nameSchema = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, "a cookie name is letters, digits and !#$%&'*+-.^_`|~");

export function isDeclared(cookies: readonly DeclaredCookie[], name: string): boolean {
  return cookies.some((declared) =>
    declared.prefix ? name.startsWith(declared.name) : name === declared.name,
  );
}

/**
 * What a scan shows against the policy: the scanner's own violations (cookies or storage needing
 * consent before a choice or after a refusal) and every cookie found that the policy does not
 * declare (the notice must list it, Art 13; the banner cannot ask for it).
 */
export function findingsOf(policy: Policy, scan: ScanResult): CookieFinding[] {
  const findings: CookieFinding[] = scan.violations.map((v) => ({
    kind: 'consent',
    name: v.name,
    domain: v.domain,
    phases: [...v.phases],
    reason: v.reason,
  }));
  const undeclared = new Map<string, CookieFinding>();
  for (const phase of scan.phases) {
    for (const cookie of phase.cookies) {
      if (isDeclared(policy.cookies, cookie.name)) continue;
      const key = `${cookie.name}\u0000${cookie.domain}`;
      const seen = undeclared.get(key);
      if (seen) seen.phases.push(phase.phase);
      else
        undeclared.set(key, {
          kind: 'undeclared',
          name: cookie.name,
          domain: cookie.domain,
          phases: [phase.phase],
          reason: `not in the policy's cookie list (classified ${cookie.classification.category}${cookie.classification.vendor ? `, ${cookie.classification.vendor}` : ''})`,
        });
    }
  }
  return [...findings, ...undeclared.values()];
}

function actor(res: Response): string {
  const staff = currentStaff(res);
  if (!staff) throw new HttpError(401, 'Please sign in.');
  return `staff:${staff.email}`;
}

/**
 * Cookies in the back office (ePrivacy Art 5(3), GDPR Art 13): the declared inventory, a cookie
 * name classified with its evidence (the policy's declarations first, then the knowledge base),
 * and a scan of a page in headless Chromium with its violations. Scans are audited.
 */
export function adminCookieRoutes(options: {
  policy: Policy;
  audit: StaffAudit;
  scanner?: CookieScanner;
  classifier?: Classifier;
}): Router {
  const { policy, audit } = options;
  const scanner = options.scanner ?? defaultScanner;
  const classifier =
    options.classifier ?? createClassifier({ overrides: overridesFromPolicy(policy.cookies) });
  const router = Router();

  router.get('/admin/cookies', (req, res) => {
    render(req, res, { title: 'Cookies', body: cookiesOfficeView({ policy, csrf: csrfToken(req) }) });
  });

  router.get('/admin/cookies/classify', (req, res) => {
    const name = nameSchema.safeParse(req.query.name);
    if (!name.success) {
      render(req, res, {
        title: 'Cookies',
        status: 400,
        body: cookiesOfficeView({
          policy,
          csrf: csrfToken(req),
          error: `Please check the cookie name: ${name.error.issues[0]?.message ?? 'invalid'}.`,
        }),
      });
      return;
    }
    render(req, res, {
      title: 'Cookies',
      body: cookiesOfficeView({
        policy,
        csrf: csrfToken(req),
        name: name.data,
        classification: classifier.classify({ name: name.data }),
      }),
    });
  });

  router.post('/admin/cookies/scan', async (req, res) => {
    const form = parseForm(z.object({ url: scanUrlSchema }), req.body);
    const by = actor(res);
    let result: ScanResult;
    try {
      result = await scanner(form.url, {
        classifier,
        banner: {
          accept: '[data-privacykit-consent="accept"]',
          refuse: '[data-privacykit-consent="refuse"]',
        },
        timeoutMs: 20_000,
      });
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (code === 'cookies/scanner-unavailable' || code === 'cookies/invalid-input') {
        throw new HttpError(code === 'cookies/invalid-input' ? 400 : 503, (error as Error).message);
      }
      throw new HttpError(502, 'The page could not be scanned (unreachable, or too slow to load).');
    }
    const findings = findingsOf(policy, result);
    await audit.record({
      actor: by,
      action: 'cookies.scan',
      target: form.url.slice(0, 200),
      detail: `${findings.length} violations`,
    });
    render(req, res, {
      title: 'Cookie scan',
      body: cookiesOfficeView({ policy, csrf: csrfToken(req), url: form.url, scan: { result, findings } }),
    });
  });

  return router;
}
