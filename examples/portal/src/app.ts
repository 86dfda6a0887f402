import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { ErrorRequestHandler, Express, Request } from 'express';
import helmet from 'helmet';
import type { Kysely } from 'kysely';
import { isPrivacyKitError, systemClock } from '@privacykit/core';
import type { Clock, DataMap, Policy } from '@privacykit/core';
import { createRequestService } from '@privacykit/requests';
import type { RequestService } from '@privacykit/requests';
import { createExportStore } from '@privacykit/subject-access';
import type { ExportStore } from '@privacykit/subject-access';
import { createConsentLedger } from '@privacykit/consent';
import type { ConsentLedger, EvidenceKeyStore } from '@privacykit/consent';
import { createApprovals } from './approvals.js';
import type { Approvals } from './approvals.js';
import { createStaffAudit } from './audit.js';
import { createReturnCodes } from './return-codes.js';
import { applyConsentRequest, describeConsentOutcome } from './consent-requests.js';
import { createHashGate } from './hash-gate.js';
import { createHousekeeping } from './housekeeping.js';
import type { Housekeeping } from './housekeeping.js';
import { applyGpcSignal } from './gpc.js';
import { createUnsubscribeLinks } from './unsubscribe.js';
import { hmacSha256Hex } from '@privacykit/core/crypto';
import { recordCookieChoice } from './consent-recorder.js';
import { consentRoutes } from './routes/consent.js';
import { newsletterRoutes } from './routes/newsletter.js';
import { emailSubjectId } from './consent-subject.js';
import { adminConsentRoutes } from './routes/admin/consent.js';
import { adminRecordRoutes } from './routes/admin/record.js';
import { adminRetentionRoutes } from './routes/admin/retention.js';
import { createRetentionEngine } from '@privacykit/retention';
import { retentionSchedule } from './retention-schedule.js';
import { DEFAULT_UNVERIFIED_REQUEST_DAYS, requestLogDueAt } from './request-log-retention.js';
import { adminErasureRoutes } from './routes/admin/erasure.js';
import { adminCookieRoutes } from './routes/admin/cookies.js';
import type { CookieScanner } from './routes/admin/cookies.js';
import { csrfField } from './views/layout.js';
import type { StaffAudit } from './audit.js';
import { dataMap as demoDataMap } from './data-map.js';
import { scanOriginsOf } from './scan-origins.js';
import { HttpError } from './http-error.js';
import { outboxMailer, purgeOutbox } from './mailer.js';
import type { Mailer } from './mailer.js';
import { render } from './render.js';
import { authRoutes, requireStaff } from './routes/auth.js';
import { officeRoutes } from './routes/admin/office.js';
import { adminRequestRoutes } from './routes/admin/requests.js';
import { requestRoutes } from './routes/requests.js';
import { createRequestExports } from './request-exports.js';
import type { RequestExports } from './request-exports.js';
import { cookieRoutes } from './routes/cookies.js';
import type { CookieChoice } from './routes/cookies.js';
import { privacyRoutes } from './routes/privacy.js';
import { csrfProtection, defaultRateLimits } from './security.js';
import type { RateLimits } from './security.js';
import { sessions } from './session.js';
import { createStaffDirectory } from './staff.js';
import type { StaffDirectory } from './staff.js';
import { html } from './views/html.js';

/** What the portal needs from the outside world; `server.ts` wires the real ones, tests their own. */
export interface AppDeps {
  db: Kysely<any>;
  policy: Policy;
  /** The host application's data map (default: the demo schema's). */
  dataMap?: DataMap;
  clock?: Clock;
  /** Outgoing mail; default: the development outbox table shown at /admin/outbox. */
  mailer?: Mailer;
  /** Signs the session cookie. Required outside tests; rotate by passing `[new, old]`. */
  sessionSecret: string | string[];
  /** Public origin (`https://privacy.example.com`) when behind a proxy; else taken from the request. */
  publicOrigin?: string;
  /**
   * Where links in mail point when `publicOrigin` is unset (`server.ts`: the address it listens
   * on, for development). With neither, a confirmation mail gives the token to paste instead of a
   * link: an origin taken from the request's Host header would let anyone put their own site in
   * someone else's confirmation mail.
   */
  linkOrigin?: string;
  /** Set `Secure` on cookies: `true` behind HTTPS, `'auto'` (default) when the request is HTTPS. */
  secureCookies?: boolean | 'auto';
  /** scrypt's N for staff password hashes (default 2^17, the OWASP minimum); tests lower it. */
  staffPasswordCost?: number;
  /** Express `trust proxy` (default false): set it when a reverse proxy terminates TLS. */
  trustProxy?: boolean | number | string;
  rateLimits?: Partial<RateLimits>;
  /**
   * Password hashes (sign-in, password change) running at once, and sign-ins waiting for one;
   * past both a sign-in gets 503 with Retry-After (default 2 and 16: scrypt takes 128 MiB each).
   */
  signInConcurrency?: { running?: number; waiting?: number };
  /** How often expired sessions, return codes, outbox mail and export packages are purged (default 10 minutes). */
  housekeepingIntervalMs?: number;
  /** Idle session timeout in ms (default 30 minutes). */
  sessionIdleMs?: number;
  /** Absolute lifetime of a staff sign-in in ms, however active (default 12 hours). */
  staffSessionMaxMs?: number;
  /** The consent ledger (default: one on `db` with keys generated and stored there; pass your own keys in production). */
  ledger?: ConsentLedger;
  /**
   * Where the default ledger keeps its evidence keys (default: in its state rows, beside the
   * evidence): a store outside `db`'s backups makes a shredding outlive a restore (hostile case 21).
   */
  evidenceKeys?: EvidenceKeyStore;
  /** HMAC key for returning visitors' codes (default: derived from the session secret). */
  codeSecret?: string;
  /** Runs back-office cookie scans (default: `scanSite` in the system Chromium). */
  cookieScanner?: CookieScanner;
  /**
   * The only origins (`https://shop.example`) whose pages the back office may scan; any other
   * address is refused before a browser starts (no server-side request forgery). Default:
   * `publicOrigin` alone, or none when it is unset. Invalid entries throw here, at start.
   */
  scanOrigins?: readonly string[];
  /**
   * Days after receipt when a rights request never verified loses its personal data, on the
   * retention sweep (default 30: the policy gives no period for abandoned submissions).
   */
  unverifiedRequestDays?: number;
  /** Called for unexpected errors (the response never shows them). */
  logError?: (error: unknown) => void;
  /** Called when object-level authorisation refuses an id (hostile case 12); no personal data. */
  logRefusal?: (event: { what: string; id: string }) => void;
}

/** Services built from the deps, shared by the route groups. */
export interface PortalServices {
  staff: StaffDirectory;
  audit: StaffAudit;
  approvals: Approvals;
  mailer: Mailer;
  requests: RequestService;
  ledger: ConsentLedger;
  exports: ExportStore;
  requestExports: RequestExports;
}

const publicDir = fileURLToPath(new URL('../public', import.meta.url));

/**
 * Library error codes that are the visitor's or the staff member's doing, by HTTP status: an
 * allow-list. Any other code — a database, data map, policy or key-store failure, a corrupt
 * export, a code added to a package later — is the portal's own fault: 500, logged, never
 * blamed on the request as a 400.
 */
const clientErrors: ReadonlyArray<[RegExp, number]> = [
  [
    /^(requests\/(not-found|directive-not-found)|erasure\/plan-not-found|retention\/(hold|run)-not-found|consent\/unknown-event|subject-access\/(export-unknown|token-unknown|token-binding-mismatch))$/,
    404,
  ],
  // A redacted request's personal data is gone for good (the request log's retention).
  [/^(subject-access\/token-used|[a-z-]+\/token-expired|requests\/(verification-expired|redacted))$/, 410],
  // Too many wrong codes: wait.
  [/^requests\/(verification-locked|verification-throttled)$/, 429],
  // A state the request does not fit (a transition, a plan another worker holds, a hold).
  [
    /^(requests\/(illegal-transition|extension-too-late|extension-limit|intake-conflict|directive-revoked|write-conflict)|consent\/(notice-version-conflict|notice-outdated|duplicate-event|write-conflict)|erasure\/(plan-locked|lease-lost|plan-already-run|plan-superseded|changed-while-planning|held-since-planning|identities-purged|notification-already-delivered|notifications-pending|not-verified|write-conflict)|retention\/(hold-already-released|write-conflict))$/,
    409,
  ],
  // The evidence key store did not answer: nothing was written; try again.
  [/^(consent\/key-store-failed|cookies\/scanner-unavailable)$/, 503],
  [
    /^([a-z-]+\/invalid-input|input\/invalid|requests\/(reason-required|extension-reasons-required|verification-failed|identity-unverified|delivery-address-mismatch|proof-required|not-executor)|consent\/(invalid-decision|invalid-subject|bundled-purposes|[a-z-]+-not-consent|condition-of-service|explicit-consent-required|parental-authorisation-required|method-source-mismatch|unknown-purpose|not-consent-purpose|unknown-notice-(version|hash|language))|erasure\/no-identities|subject-access\/no-identity|retention\/(invalid-hold|invalid-fact)|cookies\/(invalid-cookie|invalid-set-cookie|invalid-csv))$/,
    400,
  ],
];

/** A library's error code → the HTTP status the portal answers with; unlisted codes are 500. */
export function statusForCode(code: string): number {
  return clientErrors.find(([pattern]) => pattern.test(code))?.[1] ?? 500;
}

function statusOf(error: unknown): number {
  if (error instanceof HttpError) return error.status;
  if (isPrivacyKitError(error)) return statusForCode(error.code);
  const status = (error as { status?: unknown; statusCode?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) return status;
  return 500;
}

/**
 * The reference privacy centre as an Express 5 app. It never listens: `server.ts` does, and tests
 * drive the returned app on an ephemeral port.
 */
export function createApp(deps: AppDeps): Express & { housekeeping: Housekeeping } {
  const { db, policy, logError = (error) => console.error(error) } = deps;
  const clock = deps.clock ?? systemClock;
  const logRefusal = deps.logRefusal ?? ((event) => console.warn(`refused ${event.what} ${event.id}`));
  const limits = { ...defaultRateLimits, ...deps.rateLimits };
  const dataMap = deps.dataMap ?? demoDataMap;
  const scanOrigins = scanOriginsOf(deps);
  const unverifiedRequestDays = deps.unverifiedRequestDays ?? DEFAULT_UNVERIFIED_REQUEST_DAYS;
  const tenant = policy.tenant;
  const mailer = deps.mailer ?? outboxMailer({ db, tenant, clock });
  const linkOrigin = deps.publicOrigin ?? deps.linkOrigin;
  const sessionSecrets = [deps.sessionSecret].flat();
  const staff = createStaffDirectory({
    db,
    tenant,
    clock,
    ...(deps.staffPasswordCost ? { passwordCost: deps.staffPasswordCost } : {}),
  });
  const services: PortalServices = {
    staff,
    audit: createStaffAudit({ db, tenant, clock }),
    approvals: createApprovals({ db, tenant, clock, staff }),
    mailer,
    requests: createRequestService({
      db,
      policy,
      clock,
      mailer,
      dataMap,
      // Challenges go only to the channel registered for an identity (hostile case 9): an email
      // is its own channel; a customer number reaches the email on that customer's account.
      lookupRegisteredChannel: async ({ kind, value }) => {
        if (kind === 'email') return value;
        if (kind !== 'customerNumber') return null;
        const row = await db
          .selectFrom('customers')
          .select('email')
          .where('tenant', '=', tenant)
          .where('customer_number', '=', value)
          .executeTakeFirst();
        return row ? String(row.email) : null;
      },
      ...(linkOrigin
        ? {
            verificationLink: (token: string) =>
              `${linkOrigin}/rights/verify?token=${encodeURIComponent(token)}`,
          }
        : { verificationPage: 'the "Confirm your request" page of our privacy centre (/rights/verify)' }),
      onDeliveryError: logError,
    }),
    ledger:
      deps.ledger ??
      createConsentLedger({
        db,
        policy,
        clock,
        evidence: { ip: 'truncate' },
        ...(deps.evidenceKeys ? { evidenceKeys: deps.evidenceKeys } : {}),
      }),
    exports: createExportStore({ db, clock, tenant }),
    requestExports: createRequestExports({ db, tenant, clock }),
  };
  const secureSetting = deps.secureCookies ?? 'auto';
  const secureCookies = (req: Request) => (secureSetting === 'auto' ? req.secure : secureSetting);

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy ?? false);
  app.locals.policy = policy;
  app.use((_req, res, next) => {
    res.locals.policy = policy;
    next();
  });

  // Security headers (ASVS 14, S12): no inline script or style, nothing loaded from elsewhere.
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          connectSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
          objectSrc: ["'none'"],
        },
      },
      // The same answer as frame-ancestors 'none' for browsers that only read X-Frame-Options
      // (helmet's default, SAMEORIGIN, let this site frame its own back office).
      xFrameOptions: { action: 'deny' },
      referrerPolicy: { policy: 'same-origin' },
      strictTransportSecurity: secureSetting === true,
    }),
  );
  // 'auto' (HTTPS as the proxy reports it): HSTS on the requests that came over TLS, as the
  // cookies' Secure flag. (Over plain HTTP a browser ignores it anyway, RFC 6797 §8.1.)
  if (secureSetting === 'auto') {
    app.use((req, res, next) => {
      if (req.secure) res.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
      next();
    });
  }
  app.use(express.static(publicDir, { index: false, maxAge: '1h' }));
  app.use(express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 100 }));
  const { middleware: sessionMiddleware, store: sessionStore } = sessions({
    db,
    clock,
    secret: deps.sessionSecret,
    secure: secureSetting,
    idleMs: deps.sessionIdleMs,
  });
  app.use(sessionMiddleware);
  const staffSessionMaxMs = deps.staffSessionMaxMs ?? 12 * 60 * 60_000;
  app.use(async (req, res, next) => {
    if (req.session.staffId) {
      // Absolute lifetime (ASVS 7.3.2): the idle timeout alone lets a session in steady use, or a
      // stolen one kept warm, last for ever. Past it the staff member signs in again.
      const since = req.session.staffSince;
      if (typeof since !== 'number' || clock.now().getTime() - since >= staffSessionMaxMs) {
        delete req.session.staffId;
        delete req.session.staffSince;
        delete req.session.staffStamp;
      } else {
        const member = await services.staff.get(req.session.staffId);
        // A password changed since this session signed in (by its owner, in another session)
        // ends it: before, the creator of an account stayed signed in as it after its owner
        // replaced the password the creator had chosen.
        // So does an account an administrator disabled since (it left, its password leaked).
        if (member && !member.disabledAt && member.passwordStamp === req.session.staffStamp) {
          res.locals.staff = member;
        } else {
          delete req.session.staffId;
          delete req.session.staffSince;
          delete req.session.staffStamp;
        }
      }
    }
    next();
  });
  // Back-office pages show personal data (requests, mail, the audit trail), and so do a visitor's
  // own request and consent pages (their details, their history): no browser or proxy cache
  // keeps them, so they are not there to read after sign-out or on a shared computer (ASVS
  // 14.2.2, 14.3.2).
  app.use(['/admin', '/rights', '/consent'], (_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  app.use(csrfProtection({ publicOrigin: deps.publicOrigin, exempt: ['/newsletter/unsubscribe'] }));
  app.use(
    applyGpcSignal({
      policy,
      ledger: services.ledger,
      secureCookies,
      logError: (error) => logError(error),
      limit: limits.consent,
    }),
  );

  app.get('/', (_req, res) => res.redirect(303, '/privacy'));
  app.get('/healthz', async (_req, res) => {
    await db.selectNoFrom((eb) => eb.lit(1).as('ok')).execute();
    res.json({ status: 'ok', time: clock.now().toISOString(), policyVersion: policy.version });
  });
  app.use(privacyRoutes(policy));
  app.use(
    cookieRoutes({
      policy,
      clock,
      secureCookies,
      limit: limits.consent,
      recordChoice: (choice: CookieChoice) => recordCookieChoice(services.ledger, choice),
    }),
  );
  app.use(consentRoutes({ policy, clock, ledger: services.ledger, secureCookies }));
  app.use(
    newsletterRoutes({
      policy,
      dataMap,
      ledger: services.ledger,
      clock,
      mailer,
      logError,
      limit: limits.intake,
      unsubscribe: createUnsubscribeLinks(sessionSecrets),
      ...(linkOrigin ? { linkOrigin } : {}),
    }),
  );
  const returnCodes = createReturnCodes({
    db,
    tenant,
    clock,
    secret: deps.codeSecret ?? hmacSha256Hex(sessionSecrets[0] ?? '', 'privacykit-portal/return-codes'),
  });
  // A withdrawal of consent or an objection to direct marketing, applied to the ledger when the
  // requester verifies it and again (idempotently) when staff complete it.
  const consentRequest = async (record: Parameters<typeof applyConsentRequest>[0]['record']) =>
    applyConsentRequest({ ledger: services.ledger, policy, dataMap, record });
  app.use(
    requestRoutes({
      policy,
      requests: services.requests,
      exports: services.exports,
      requestExports: services.requestExports,
      limits,
      returnCodes,
      mailer,
      logError,
      logRefusal: (event) => logRefusal(event),
      onVerified: async (requestId) => {
        const record = await services.requests.get(requestId);
        const outcome = await consentRequest(record);
        if (outcome) {
          await services.audit.record({
            actor: 'requester',
            action: 'consent.request-applied',
            target: requestId,
            detail: describeConsentOutcome(policy, outcome).slice(0, 500),
          });
        }
      },
    }),
  );
  app.use(
    authRoutes({
      clock,
      staff: services.staff,
      audit: services.audit,
      loginLimit: limits.login,
      loginAccountLimit: limits.loginAccount,
      loginAddressLimit: limits.loginAddress,
      hashGate: createHashGate({
        running: deps.signInConcurrency?.running ?? 2,
        waiting: deps.signInConcurrency?.waiting ?? 16,
      }),
    }),
  );
  app.use('/admin', requireStaff);
  app.use(
    officeRoutes({
      db,
      policy,
      staff: services.staff,
      audit: services.audit,
      links: [
        {
          href: '/admin/requests',
          label: 'Rights requests',
          text: 'the queue with deadlines; approve, refuse, extend, export, erase',
        },
        {
          href: '/admin/consent',
          label: 'Consent ledger',
          text: 'verification, statistics, a subject’s proof',
        },
        {
          href: '/admin/retention',
          label: 'Retention',
          text: 'the schedule in words, dry run, sweep, holds, certificates, backlog',
        },
        {
          href: '/admin/cookies',
          label: 'Cookies',
          text: 'the declared inventory, classification with evidence, a page scan and its violations',
        },
        { href: '/admin/record', label: 'Record of processing', text: 'the Art 30 record, from the policy' },
        {
          href: '/admin/outbox',
          label: 'Mail outbox',
          text: 'mail sent by the portal in development',
          adminOnly: true,
        },
        { href: '/admin/audit', label: 'Audit trail', text: 'who did what, when', adminOnly: true },
        {
          href: '/admin/staff',
          label: 'Staff accounts',
          text: 'administrators and privacy officers',
          adminOnly: true,
        },
      ],
    }),
  );

  app.use(adminConsentRoutes({ policy, ledger: services.ledger }));
  app.use(adminRecordRoutes(policy));
  app.use(
    adminCookieRoutes({
      policy,
      audit: services.audit,
      clock,
      scanOrigins,
      logError,
      scanner: deps.cookieScanner,
    }),
  );
  // One retention engine: its legal holds also keep the rows they cover out of erasures.
  const retention = createRetentionEngine({ db, policy, dataMap, clock, schedule: retentionSchedule });
  app.use(
    adminRetentionRoutes({
      policy,
      audit: services.audit,
      retention,
      requests: services.requests,
      requestLog: {
        dueAt: requestLogDueAt(policy, { unverifiedDays: unverifiedRequestDays }),
        unverifiedDays: unverifiedRequestDays,
      },
    }),
  );
  app.use(
    adminErasureRoutes({
      db,
      policy,
      dataMap,
      clock,
      requests: services.requests,
      ledger: services.ledger,
      audit: services.audit,
      approvals: services.approvals,
      holds: retention,
    }),
  );
  app.use(
    adminRequestRoutes({
      db,
      policy,
      dataMap,
      clock,
      requests: services.requests,
      exports: services.exports,
      requestExports: services.requestExports,
      audit: services.audit,
      approvals: services.approvals,
      mailer,
      applyConsentRequest: consentRequest,
      // Identified subjects are `email:<address>` in the ledger (newsletter consent, imports).
      extraActions: (record, csrf) =>
        record.right === 'erasure' && record.status === 'in-progress'
          ? html`<form method="post" action="/admin/requests/${record.id}/erasure">${csrfField(csrf)}<p>Computes what would be erased and what the law makes us keep. Nothing changes yet.</p><button type="submit">Preview the erasure</button></form>`
          : html``,
      consentHistoryFor: async (identities) =>
        (
          await Promise.all(
            (identities.email ?? []).map((email) => services.ledger.history(emailSubjectId(dataMap, email))),
          )
        ).flat(),
      consentRecordsFor: async (identities) =>
        (
          await Promise.all(
            (identities.email ?? []).map((email) =>
              services.ledger.consentRecords(emailSubjectId(dataMap, email)),
            ),
          )
        ).flat(),
    }),
  );

  app.use((req, res) => {
    render(req, res, {
      title: 'Not found',
      status: 404,
      body: html`<h1>Page not found</h1><p><a href="/privacy">Read the privacy notice</a>.</p>`,
    });
  });

  const onError: ErrorRequestHandler = (error, req, res, _next) => {
    const status = statusOf(error);
    // Server-side failures are logged; an HttpError is an answer the portal chose (a busy 503).
    if (status >= 500 && !(error instanceof HttpError)) logError(error);
    if (error instanceof HttpError && error.retryAfter !== undefined && !res.headersSent) {
      res.set('Retry-After', String(error.retryAfter));
    }
    const message =
      status === 500
        ? 'Something went wrong on our side. Please try again later.'
        : error instanceof HttpError || isPrivacyKitError(error)
          ? error.message
          : 'The request could not be understood.';
    const title =
      status >= 500
        ? 'Sorry'
        : status === 403
          ? 'Refused'
          : status === 429
            ? 'Too many requests'
            : status === 404
              ? 'Not found'
              : status === 409
                ? 'Conflict'
                : status === 410
                  ? 'Gone'
                  : 'Bad request';
    if (res.headersSent) return;
    try {
      render(req, res, { title, status, body: html`<h1>${title}</h1><p>${message}</p>` });
    } catch {
      res.status(status).type('text').send(message);
    }
  };
  app.use(onError);

  // What the portal keeps only for a while, purged on a timer that runs while the server does.
  const housekeeping = createHousekeeping({
    intervalMs: deps.housekeepingIntervalMs ?? 10 * 60_000,
    logError,
    tasks: [
      { name: 'sessions', run: () => sessionStore.purgeExpired() },
      { name: 'returnCodes', run: () => returnCodes.purge() },
      { name: 'outbox', run: () => purgeOutbox(db, tenant, clock) },
      { name: 'exports', run: async () => (await services.exports.purgeExpired()).packages },
    ],
  });
  // Started with the server `app.listen` makes and stopped when it closes; a host that mounts the
  // app on a server of its own calls `app.housekeeping.start()` and `.stop()` itself.
  const listen = app.listen.bind(app) as (...args: unknown[]) => Server;
  const portal = Object.assign(app, { housekeeping });
  portal.listen = ((...args: unknown[]) => {
    const server = listen(...args);
    server.once('listening', () => housekeeping.start());
    server.once('close', () => void housekeeping.stop());
    return server;
  }) as Express['listen'];
  return portal;
}
