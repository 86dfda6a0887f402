import { Router } from 'express';
import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';
import { z } from 'zod';
import { isPrivacyKitError, randomToken } from '@privacykit/core';
import type { Policy } from '@privacykit/core';
import type { RequestRecord, RequestService, SubmitRequestInput, VerifyResult } from '@privacykit/requests';
import { downloadHeaders } from '@privacykit/subject-access';
import type { ExportStore } from '@privacykit/subject-access';
import { HttpError } from '../http-error.js';
import type { Mailer } from '../mailer.js';
import type { ReturnCodes } from '../return-codes.js';
import { render } from '../render.js';
import type { RequestExports } from '../request-exports.js';
import { rightFormSchemas, rightForms, toSubmitInput } from '../rights-forms.js';
import { csrfToken, limiter } from '../security.js';
import { regenerateSession, saveSession } from '../session.js';
import { parseForm } from '../validation.js';
import {
  checkInboxView,
  checkRequestCodeView,
  checkRequestView,
  requestStatusView,
  rightFormView,
  rightsIndexView,
  verifyView,
} from '../views/requests.js';

export interface RequestRoutesOptions {
  policy: Policy;
  requests: RequestService;
  exports: ExportStore;
  requestExports: RequestExports;
  limits: { intake: number; verify: number };
  /** Fresh codes for visitors returning from a new session. */
  returnCodes: ReturnCodes;
  mailer: Mailer;
  logError: (error: unknown) => void;
  /** Logs refused object-level access (hostile case 12) without personal data. */
  logRefusal: (event: { what: string; id: string }) => void;
  /**
   * Called once a request is verified, before its status page shows: a withdrawal of consent or
   * an objection to direct marketing takes effect then, not when staff get to it (hostile case 23).
   * A failure is logged, not shown: staff completing the request applies it again.
   */
  onVerified?: (requestId: string) => Promise<void>;
}

const idSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const refSchema = z.string().regex(/^[A-Za-z0-9_-]{24}$/);
const verifySchema = z.union([
  z.object({
    submission: refSchema,
    code: z
      .string()
      .trim()
      .regex(/^\d{6,8}$/, 'enter the code from the email'),
  }),
  z.object({
    token: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9_-]{20,256}$/),
  }),
]);

function methodNotAllowed(allow: string): RequestHandler {
  return (_req, res) => {
    res.set('Allow', allow).status(405).type('text').send('Method Not Allowed');
  };
}

/**
 * The data subject's side of rights requests (Art 12–22): a form per right, a single-use code
 * sent to the registered channel (S01, hostile case 9), the status page — only for the session
 * that verified the request (S05, hostile case 12) — and the export download through a
 * single-use, session-bound link (S06, hostile case 13).
 */
export function requestRoutes(options: RequestRoutesOptions): Router {
  const { requests, exports, requestExports, policy } = options;
  const router = Router();
  const offered = new Set<string>(policy.rights.offered);
  const forms = rightForms.filter((form) => offered.has(form.right));
  const intakeLimiter = limiter({
    windowMs: 60 * 60_000,
    limit: options.limits.intake,
    message: 'Too many requests from your connection. Please try again in an hour, or write to our DPO.',
  });
  const verifyLimiter = limiter({
    windowMs: 15 * 60_000,
    limit: options.limits.verify,
    key: (req) => ipKeyGenerator(req.ip ?? ''),
    message: 'Too many attempts. Wait a few minutes and try again.',
  });

  const mine = (req: Request, id: string): boolean => (req.session.requestIds ?? []).includes(id);
  /**
   * The opaque reference this session's "check your inbox" page uses for a request it filed. A new
   * submission (`submissionId`) becomes the handle its codes are checked through: a duplicate's
   * handle has attempts of its own, so wrong guesses through it never lock the request.
   */
  const pendingRef = (req: Request, requestId: string, submissionId?: string): string => {
    const pending = req.session.pendingRequests ?? [];
    const known = pending.find((entry) => entry.requestId === requestId);
    if (known) {
      if (submissionId) {
        req.session.pendingRequests = pending.map((entry) =>
          entry === known ? { ...entry, submissionId } : entry,
        );
      }
      return known.ref;
    }
    const ref = randomToken(18);
    req.session.pendingRequests = [
      ...pending,
      { ref, requestId, ...(submissionId ? { submissionId } : {}) },
    ].slice(-10);
    return ref;
  };

  router.get('/rights', (req, res) => {
    render(req, res, { title: 'Your rights', body: rightsIndexView({ forms, policy }) });
  });

  for (const form of forms) {
    const schema = rightFormSchemas[form.right];
    const submit: RequestHandler = async (req, res) => {
      const values = parseForm(schema, req.body);
      const result = await requests.submit(toSubmitInput(form.right, values));
      // Same page whatever the address, under a reference of this browser's own: no enumeration
      // (S09), and never the id of an open request the submission duplicates (someone else's,
      // perhaps). The code went to the registered channel.
      const ref = pendingRef(req, result.requestId, result.submissionId);
      await saveSession(req);
      res.redirect(303, `/rights/verify?submission=${ref}`);
    };
    router
      .route(`/rights/${form.right}`)
      .get((req, res) => {
        render(req, res, { title: form.title, body: rightFormView({ form, policy, csrf: csrfToken(req) }) });
      })
      .post(intakeLimiter, submit)
      .all(methodNotAllowed('GET, POST'));
    if (form.action !== `/rights/${form.right}`) {
      router.route(form.action).post(intakeLimiter, submit).all(methodNotAllowed('POST'));
    }
  }

  router
    .route('/rights/verify')
    .get((req, res) => {
      const submission = refSchema.safeParse(req.query.submission);
      const token = z
        .string()
        .regex(/^[A-Za-z0-9_-]{20,256}$/)
        .safeParse(req.query.token);
      render(req, res, {
        title: 'Confirm your request',
        body: submission.success
          ? checkInboxView({ submission: submission.data, csrf: csrfToken(req) })
          : verifyView({ token: token.success ? token.data : undefined, csrf: csrfToken(req) }),
      });
    })
    .post(verifyLimiter, async (req, res) => {
      const input = parseForm(verifySchema, req.body);
      let result: VerifyResult;
      if ('token' in input) {
        result = await requests.verify(input);
      } else {
        // Only a request this browser filed: a reference from another session is no use here.
        const pending = req.session.pendingRequests?.find((entry) => entry.ref === input.submission);
        if (!pending) throw new HttpError(400, 'The code or link is not valid for this request.');
        result = await requests.verify(
          pending.submissionId
            ? { submissionId: pending.submissionId, code: input.code }
            : { requestId: pending.requestId, code: input.code },
        );
      }
      if (result.remaining > 0) {
        const ref = pendingRef(req, result.requestId);
        await saveSession(req);
        res.redirect(303, `/rights/verify?submission=${ref}`);
        return;
      }
      if (options.onVerified) await options.onVerified(result.requestId).catch(options.logError);
      await regenerateSession(req);
      req.session.pendingRequests = (req.session.pendingRequests ?? []).filter(
        (entry) => entry.requestId !== result.requestId,
      );
      req.session.requestIds = [...new Set([...(req.session.requestIds ?? []), result.requestId])].slice(-20);
      await saveSession(req);
      res.redirect(303, `/rights/requests/${encodeURIComponent(result.requestId)}`);
    })
    .all(methodNotAllowed('GET, POST'));

  // A returning visitor (new session) re-verifies through the registered channel (S01, S05): the
  // same page whatever the reference and address, a code only when they match a request whose
  // identity was verified, mailed to that request's verified channel, at most 3 an hour.
  const checkSchema = z.object({
    reference: z.string().trim().max(64),
    email: z.string().trim().max(254).email(),
  });
  const codeSchema = z.object({
    code: z
      .string()
      .trim()
      .regex(/^\d{6,8}$/, 'enter the code from the email'),
  });
  router
    .route('/rights/check')
    .get((req, res) => {
      render(req, res, { title: 'Check my request', body: checkRequestView({ csrf: csrfToken(req) }) });
    })
    .post(intakeLimiter, async (req, res) => {
      const form = parseForm(checkSchema, req.body);
      let requestId: string | null = null;
      let channel: string | undefined;
      const reference = idSchema.safeParse(form.reference);
      if (reference.success) {
        try {
          const record = await requests.getForRequester(reference.data, { kind: 'email', value: form.email });
          if (record.identities.some((identity) => identity.kind === 'email' && identity.verified)) {
            channel = await requests.deliveryChannel(record.id);
            requestId = record.id;
          }
        } catch (error) {
          if (!isPrivacyKitError(error)) throw error;
        }
      }
      // Past the request's mails for the hour the challenge is dead too: the same page, no mail,
      // nothing to guess at.
      const { challengeId, code, mail } = await options.returnCodes.issue(requestId);
      if (requestId && channel && mail) {
        // Not awaited: the answer must not take longer when a mail goes out.
        options.mailer
          .send({
            to: channel,
            subject: `${policy.controller.name}: your confirmation code`,
            text: [
              `Someone (we hope you) asked to open request ${requestId} on our privacy centre.`,
              '',
              `Your confirmation code: ${code}`,
              '',
              'It works once, for 10 minutes. If it was not you, ignore this message: nothing is shown without the code.',
            ].join('\n'),
          })
          .catch(options.logError);
      }
      req.session.returnChallenge = challengeId;
      await saveSession(req);
      res.redirect(303, '/rights/check/code');
    })
    .all(methodNotAllowed('GET, POST'));

  router
    .route('/rights/check/code')
    .get((req, res) => {
      render(req, res, {
        title: 'Check my request',
        body: checkRequestCodeView({ csrf: csrfToken(req), pending: Boolean(req.session.returnChallenge) }),
      });
    })
    .post(verifyLimiter, async (req, res) => {
      const form = parseForm(codeSchema, req.body);
      const challengeId = req.session.returnChallenge;
      const requestId = challengeId ? await options.returnCodes.redeem(challengeId, form.code) : undefined;
      if (!requestId) {
        render(req, res, {
          title: 'Check my request',
          status: 400,
          body: checkRequestCodeView({
            csrf: csrfToken(req),
            pending: Boolean(challengeId),
            error:
              'That code is not right, or it has expired or been used. Codes work once, for 10 minutes, and 5 tries.',
          }),
        });
        return;
      }
      await regenerateSession(req);
      delete req.session.returnChallenge;
      req.session.requestIds = [...new Set([...(req.session.requestIds ?? []), requestId])].slice(-20);
      await saveSession(req);
      res.redirect(303, `/rights/requests/${encodeURIComponent(requestId)}`);
    })
    .all(methodNotAllowed('GET, POST'));

  router.get('/rights/requests/:id', async (req, res) => {
    const id = idSchema.safeParse(req.params.id);
    if (!id.success || !mine(req, id.data)) {
      options.logRefusal({ what: 'request-status', id: String(req.params.id).slice(0, 64) });
      throw new HttpError(
        404,
        'No such request in this browser session. Open the link from your confirmation email again.',
      );
    }
    const record = await requests.get(id.data);
    const pkg = await requestExports.latest(record.id);
    render(req, res, {
      title: 'Your request',
      body: requestStatusView({
        record,
        exportReady: Boolean(pkg),
        csrf: csrfToken(req),
        revocableDirective: await activeDirective(record),
      }),
    });
  });

  /**
   * The directive a completed "give" request of this person made, while it is in force: its
   * request page offers to revoke it (LIL art. 85: directives are revocable at any time).
   */
  async function activeDirective(record: RequestRecord): Promise<boolean> {
    const details = record.details as { action?: string } | null;
    if (
      record.right !== 'post-mortem-directives' ||
      record.status !== 'completed' ||
      details?.action !== 'give'
    ) {
      return false;
    }
    const verified = record.identities.filter((identity) => identity.verified);
    if (verified.length === 0) return false;
    const directives = await requests.directivesFor(verified.map(({ kind, value }) => ({ kind, value })));
    return directives.some((directive) => directive.id === record.id && directive.status === 'active');
  }

  // Revoking is a request like giving: a code to the registered channel, then the back office
  // carries it out. Only from this browser's own request page, for a directive still in force.
  router
    .route('/rights/requests/:id/revoke-directive')
    .post(intakeLimiter, async (req, res) => {
      const id = idSchema.safeParse(req.params.id);
      if (!id.success || !mine(req, id.data)) {
        options.logRefusal({ what: 'directive-revoke', id: String(req.params.id).slice(0, 64) });
        throw new HttpError(404, 'No such request in this browser session.');
      }
      const record = await requests.get(id.data);
      if (!(await activeDirective(record))) {
        throw new HttpError(409, 'This request left no directive in force to revoke.');
      }
      const result = await requests.submit({
        right: 'post-mortem-directives',
        channel: 'web',
        identities: record.identities
          .filter((identity) => identity.verified)
          .map(({ kind, value }) => ({ kind, value })),
        details: { action: 'revoke', directiveId: record.id },
      } as SubmitRequestInput);
      const ref = pendingRef(req, result.requestId, result.submissionId);
      await saveSession(req);
      res.redirect(303, `/rights/verify?submission=${ref}`);
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/rights/requests/:id/download')
    .post(verifyLimiter, async (req, res) => {
      const id = idSchema.safeParse(req.params.id);
      if (!id.success || !mine(req, id.data)) {
        options.logRefusal({ what: 'export-link', id: String(req.params.id).slice(0, 64) });
        throw new HttpError(404, 'No such request in this browser session.');
      }
      const pkg = await requestExports.latest(id.data);
      if (!pkg) throw new HttpError(404, 'Your export is not ready yet.');
      const issued = await exports.issueToken(pkg.exportId, { binding: req.sessionID });
      res.redirect(303, `/rights/download/${issued.token}`);
    })
    .all(methodNotAllowed('POST'));

  router.get('/rights/download/:token', verifyLimiter, async (req, res) => {
    let redeemed: Awaited<ReturnType<ExportStore['redeem']>>;
    try {
      redeemed = await exports.redeem(String(req.params.token).slice(0, 256), { binding: req.sessionID });
    } catch (error) {
      if (isPrivacyKitError(error) && error.code.startsWith('subject-access/')) {
        options.logRefusal({ what: `download:${error.code}`, id: '-' });
        throw new HttpError(
          error.code === 'subject-access/token-used' || error.code === 'subject-access/token-expired'
            ? 410
            : 404,
          'This download link is not valid: links work once, for a few minutes, in the browser that asked for them. Ask for a new one from your request page.',
        );
      }
      throw error;
    }
    res.set(downloadHeaders(redeemed.filename, { contentType: redeemed.contentType, bytes: redeemed.bytes }));
    redeemed.stream.pipe(res);
  });

  return router;
}
