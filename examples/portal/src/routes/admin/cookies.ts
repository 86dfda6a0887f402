import { Router } from 'express';
import type { Response } from 'express';
import { z } from 'zod';
import type { Clock, DeclaredCookie, Policy } from '@privacykit/core';
import { createClassifier, overridesFromPolicy } from '@privacykit/cookies';
import type { Classifier } from '@privacykit/cookies';
import type { ScanOptions, ScanResult } from '@privacykit/cookies/scan';
import type { StaffAudit } from '../../audit.js';
import { HttpError } from '../../http-error.js';
import { currentStaff, render } from '../../render.js';
import { createScanJobs } from '../../scan-jobs.js';
import { checkScanTarget } from '../../scan-origins.js';
import { csrfToken } from '../../security.js';
import type { StaffMember } from '../../staff.js';
import { parseForm } from '../../validation.js';
import { cookiesOfficeView, scanJobView } from '../../views/admin/cookies.js';
import type { CookieFinding, CookieScanOutcome } from '../../views/admin/cookies.js';

/** Runs a scan; the default is `scanSite` from `@privacykit/cookies/scan` (system Chromium). */
export type CookieScanner = (url: string, options: ScanOptions) => Promise<ScanResult>;

const defaultScanner: CookieScanner = async (url, options) => {
  // Loaded on first use: the back office starts without Chromium; only a scan needs it.
  const { scanSite } = await import('@privacykit/cookies/scan');
  return scanSite(url, options);
};

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

function signedIn(res: Response): StaffMember {
  const staff = currentStaff(res);
  if (!staff) throw new HttpError(401, 'Please sign in.');
  return staff;
}

/**
 * Cookies in the back office (ePrivacy Art 5(3), GDPR Art 13): the declared inventory, a cookie
 * name classified with its evidence (the policy's declarations first, then the knowledge base),
 * and a scan of a page in headless Chromium with its violations. A scan loads only pages on the
 * configured `scanOrigins` (anything else would let staff make the server fetch any address), runs
 * in the background (`202` with the scan's page) and is audited when asked for, refused and settled.
 */
export function adminCookieRoutes(options: {
  policy: Policy;
  audit: StaffAudit;
  clock: Clock;
  /** Canonical origins (`scanOriginsOf`) whose pages may be scanned. */
  scanOrigins: readonly string[];
  logError: (error: unknown) => void;
  scanner?: CookieScanner;
  classifier?: Classifier;
}): Router {
  const { policy, audit, scanOrigins: origins } = options;
  const scanner = options.scanner ?? defaultScanner;
  const classifier =
    options.classifier ?? createClassifier({ overrides: overridesFromPolicy(policy.cookies) });
  const jobs = createScanJobs<CookieScanOutcome>({
    clock: options.clock,
    logError: options.logError,
    async run(job) {
      let result: ScanResult;
      try {
        result = await scanner(job.url, {
          classifier,
          banner: {
            accept: '[data-privacykit-consent="accept"]',
            refuse: '[data-privacykit-consent="refuse"]',
          },
          timeoutMs: 20_000,
          // The check before the scan is on the address asked for; this keeps the browser's pages
          // on those origins through redirects and script navigations too (SSRF).
          allowedOrigins: origins,
        });
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code;
        if (code === 'cookies/scanner-unavailable' || code === 'cookies/invalid-input') {
          throw new HttpError(code === 'cookies/invalid-input' ? 400 : 503, (error as Error).message);
        }
        throw new HttpError(502, 'The page could not be scanned (unreachable, or too slow to load).');
      }
      return { result, findings: findingsOf(policy, result) };
    },
    async onSettled(job) {
      await audit.record({
        actor: `staff:${job.requestedBy.email}`,
        action: job.status === 'done' ? 'cookies.scan.done' : 'cookies.scan.failed',
        target: job.url.slice(0, 200),
        detail: (job.outcome ? `${job.outcome.findings.length} violations` : (job.error ?? '')).slice(0, 200),
      });
    },
  });
  const router = Router();

  router.get('/admin/cookies', (req, res) => {
    render(req, res, {
      title: 'Cookies',
      body: cookiesOfficeView({ policy, origins, csrf: csrfToken(req) }),
    });
  });

  router.get('/admin/cookies/classify', (req, res) => {
    const name = nameSchema.safeParse(req.query.name);
    if (!name.success) {
      render(req, res, {
        title: 'Cookies',
        status: 400,
        body: cookiesOfficeView({
          policy,
          origins,
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
        origins,
        csrf: csrfToken(req),
        name: name.data,
        classification: classifier.classify({ name: name.data }),
      }),
    });
  });

  router.post('/admin/cookies/scan', async (req, res) => {
    const staff = signedIn(res);
    const form = parseForm(z.object({ url: z.string() }), req.body);
    const target = checkScanTarget(form.url, origins);
    if (!target.allowed) {
      // A well-formed address off the list is someone trying to reach another host: keep a trace.
      if (target.problem === 'origin') {
        await audit.record({
          actor: `staff:${staff.email}`,
          action: 'cookies.scan.refused',
          target: form.url.trim().slice(0, 200),
          detail: 'origin not in scanOrigins',
        });
      }
      render(req, res, {
        title: 'Cookies',
        status: target.status,
        body: cookiesOfficeView({
          policy,
          origins,
          csrf: csrfToken(req),
          // Never echo a password back into the page.
          url: target.problem === 'credentials' ? undefined : form.url.slice(0, 2000),
          error: `This page cannot be scanned: ${target.reason}.`,
        }),
      });
      return;
    }
    const job = jobs.start({ url: target.url, requestedBy: { id: staff.id, email: staff.email } });
    if (!job) throw new HttpError(429, 'Too many scans are waiting. Try again when one has finished.');
    await audit.record({
      actor: `staff:${staff.email}`,
      action: 'cookies.scan',
      target: target.url.slice(0, 200),
      detail: `scan ${job.id}`,
    });
    const location = `/admin/cookies/scans/${job.id}`;
    // 202: the scan takes seconds in a browser; its page shows progress, then the result.
    res.location(location).set('Refresh', `2; url=${location}`);
    render(req, res, { title: 'Cookie scan', status: 202, body: scanJobView(job, location) });
  });

  router.get('/admin/cookies/scans/:id', (req, res) => {
    const staff = signedIn(res);
    const job = jobs.get(req.params.id);
    // A scan's page is for whoever asked for it, and for administrators.
    if (!job || (job.requestedBy.id !== staff.id && staff.role !== 'admin')) {
      throw new HttpError(404, 'No such scan (finished scans are kept for a while only).');
    }
    const location = `/admin/cookies/scans/${job.id}`;
    if (job.status === 'queued' || job.status === 'running') res.set('Refresh', '2');
    render(req, res, { title: 'Cookie scan', body: scanJobView(job, location) });
  });

  return router;
}
