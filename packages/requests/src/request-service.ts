import { canonicalJson, newId, randomDigits, randomToken, systemClock, zodIssues } from '@privacykit/core';
import type { Clock, DataMap, Policy } from '@privacykit/core';
import { engineOf, retryWriteConflicts, writeTransaction } from '@privacykit/core/db';
import { constantTimeEqual, hmacSha256Hex, sha256Hex } from '@privacykit/core/crypto';
import { sql } from 'kysely';
import type { ExpressionBuilder, Kysely } from 'kysely';
import { z } from 'zod';
import {
  addCalendarDays,
  addCalendarMonths,
  calendarDaysBetween,
  civilDateIn,
  isValidZone,
  nextWorkingDay,
} from './deadline.js';
import type { CivilDate } from './deadline.js';
import { requestsError } from './errors.js';
import {
  identityLookupHash,
  looksLikeEmail,
  normaliseRequestIdentity,
  requestIdentitySchema,
} from './identity.js';
import type { RequestIdentity } from './identity.js';
import type { Mailer, MailMessage } from './mailer.js';
import { describeRemedies, remediesFor } from './remedies.js';
import type { Remedy } from './remedies.js';
import {
  amendmentSummary,
  mergeDuplicateDetails,
  requestChannelSchema,
  requestDetailsSchemas,
  requestRightSchema,
} from './request-details.js';
import type { PostMortemDetails, RequestChannel, RequestDetails, RequestRight } from './request-details.js';
import { assertTransition, finalStatuses, isFinalStatus, requestStatusSchema } from './state-machine.js';
import type { RequestStatus } from './state-machine.js';
import type { ChallengeRow, IdentityRow, RequestRow, RequestsTables } from './tables.js';

/**
 * Art 12(5) "manifestly excessive" threshold: more than `maxRequests` requests received within
 * `windowDays` whose identity was verified. Only verified requests count: anyone can type a
 * victim's address, and unverified submissions naming it must not get the victim's own request
 * refused.
 */
export interface ExcessiveThreshold {
  maxRequests: number;
  windowDays: number;
}

/**
 * At most `maxMails` challenge mails (codes and links) to one identity within `windowHours`,
 * counted from the first mail of the window, whoever submitted: a flood of unverified
 * submissions naming an address sends it a bounded number of mails.
 */
export interface MailThrottle {
  maxMails: number;
  windowHours: number;
}

/**
 * At most `maxFailures` wrong one-time codes for one identity, across all its requests, within
 * `windowHours` (counted from the first of them); further codes for it are refused until the
 * window ends. Links are never refused: their tokens cannot be guessed, and only the channel
 * receives them, so the subject always has a way in.
 */
export interface CodeGuessLimit {
  maxFailures: number;
  windowHours: number;
}

/** How {@link RequestService.pruneThrottles} deletes. */
export interface PruneThrottlesOptions {
  /** Counter rows deleted per statement, 1–5,000 (default 500): each batch holds its locks briefly. */
  batchSize?: number;
}

/**
 * What {@link RedactOptions.dueAt} is asked about: a request not yet redacted that is closed
 * (completed, denied, cancelled) or was never verified (received, identity-pending).
 */
export interface RedactionCandidate {
  id: string;
  right: RequestRight;
  status: RequestStatus;
  receivedAt: Date;
  /** When it reached its final status; null for a request never verified (it is still open). */
  closedAt: Date | null;
}

/** How {@link RequestService.redact} chooses and works. */
export interface RedactOptions {
  /**
   * When the request's personal data is due to go: redacted once this instant has passed (by the
   * service's clock); null or undefined keeps it. Called for every closed or never-verified
   * request not yet redacted, so it decides per right and per status (e.g. one year after
   * closure for access, thirty days after receipt when never verified). Open verified requests
   * are never asked about, nor redacted.
   */
  dueAt: (request: RedactionCandidate) => Date | null | undefined;
  /** Requests read, and redacted in one transaction, per batch: 1–5,000 (default 500). */
  batchSize?: number;
  /** Count what is due and change nothing. */
  dryRun?: boolean;
}

/** What {@link RequestService.redact} did (or, on a dry run, would do). */
export interface RedactResult {
  /** Requests redacted: `closed + unverified`. */
  redacted: number;
  /** Of them, requests that were closed. */
  closed: number;
  /** Of them, requests never verified: the redaction also closed them as `cancelled`. */
  unverified: number;
}

export interface RequestServiceOptions {
  /** The host's database, migrated with `migrate(db, [requestMigrations])`. */
  db: Kysely<any>;
  /** The controller's policy: tenant, zone (deadlines), supervisory authority (remedies), purposes. */
  policy: Policy;
  clock?: Clock;
  /** Sends verification challenges and notices; without it, nothing is mailed (the host delivers). */
  mailer?: Mailer;
  /**
   * Key of the HMACs over codes, tokens and identities (≥ 32 bytes recommended). When omitted a
   * random per-tenant key is created in `privacykit_requests_secrets` on first use; passing one
   * from a secret store keeps the key away from the hashes it protects.
   */
  secret?: string | Uint8Array;
  /**
   * The channel registered for an identity (an email address from the host's account records),
   * or nothing when none is known. Without this callback, an email identity is its own channel.
   * Challenges go only there (hostile case 9: never to an address taken from the request alone).
   */
  lookupRegisteredChannel?: (
    identity: RequestIdentity,
  ) => Promise<string | null | undefined> | string | null | undefined;
  /** Normalise identities exactly as the data map declares (core's `normaliseIdentity`). */
  dataMap?: DataMap;
  /** Digits of the one-time code, 6–8 (default 6). */
  codeDigits?: number;
  /** Minutes a challenge stays valid, at most 10 (default 10). */
  codeTtlMinutes?: number;
  /** Wrong codes before the request's verification locks, at most 5 (default 5). */
  maxVerificationAttempts?: number;
  /** Stop the Art 12(3) clock while identity is being checked (default false). */
  pauseWhileVerifying?: boolean;
  /** Same right + same identity within this many days returns the open request (default 7). */
  duplicateWindowDays?: number;
  /** Default: more than 10 verified requests from one identity within 30 days. */
  excessive?: ExcessiveThreshold;
  /** Default: at most 5 challenge mails per identity within 24 hours. */
  mailThrottle?: MailThrottle;
  /** Default: at most 10 wrong codes per identity, across its requests, within 24 hours. */
  codeGuessLimit?: CodeGuessLimit;
  /** Public holidays of the controller: deadlines falling on them (or weekends) move to the next working day. */
  holidays?: readonly CivilDate[];
  /** Move deadlines off weekends (default: true when `holidays` is given). */
  skipWeekends?: boolean;
  /** Builds the verification link from its token; the mail shows the bare token otherwise. */
  verificationLink?: (token: string) => string;
  /**
   * Without `verificationLink`: where the subject pastes the token, named in the mail ("Or paste
   * this confirmation token on <verificationPage>: …"), e.g. `the "Confirm your request" page of
   * our privacy centre (/rights/verify)`.
   */
  verificationPage?: string;
  /** Called when a mail cannot be sent (the failure is also audited, without the address). */
  onDeliveryError?: (error: unknown) => void;
}

const submitBase = z.object({
  identities: z.array(requestIdentitySchema).min(1).max(10),
  channel: requestChannelSchema.default('web'),
  /** When the request reached the controller (a letter opened days ago); now when omitted. */
  receivedAt: z.union([z.date(), z.iso.datetime({ offset: true })]).optional(),
  /** Where the requester asks the answer to go: must be one of their own email identities (hostile case 11). */
  deliverTo: z.string().trim().min(1).max(320).optional(),
});

export const submitRequestSchema = z.discriminatedUnion('right', [
  submitBase.extend({ right: z.literal('access'), details: requestDetailsSchemas.access.default({}) }),
  submitBase.extend({
    right: z.literal('portability'),
    details: requestDetailsSchemas.portability.default({ format: 'json' }),
  }),
  submitBase.extend({ right: z.literal('rectification'), details: requestDetailsSchemas.rectification }),
  submitBase.extend({ right: z.literal('erasure'), details: requestDetailsSchemas.erasure.default({}) }),
  submitBase.extend({ right: z.literal('restriction'), details: requestDetailsSchemas.restriction }),
  submitBase.extend({ right: z.literal('objection'), details: requestDetailsSchemas.objection }),
  submitBase.extend({
    right: z.literal('withdraw-consent'),
    details: requestDetailsSchemas['withdraw-consent'],
  }),
  submitBase.extend({
    right: z.literal('post-mortem-directives'),
    details: requestDetailsSchemas['post-mortem-directives'],
  }),
]);
export type SubmitRequestInput = z.input<typeof submitRequestSchema>;

/**
 * What `submit` answers. The shape and path are the same whether or not an identity is known to
 * the controller (no account enumeration): show the requester only "check your registered
 * channel". `duplicateOf` and `excessive` are for the host, not for an unverified requester.
 */
export interface SubmitResult {
  requestId: string;
  /**
   * This submission's own handle: verify through it (`verify({ submissionId, code })`) when the
   * submitter is not known to be the request's subject. A duplicate is answered with the open
   * request, which may be someone else's; wrong codes sent through a duplicate's handle lock that
   * handle only, never the request its subject is verifying.
   */
  submissionId: string;
  status: RequestStatus;
  /** Set when an open request for the same right and identity already existed: its id. */
  duplicateOf: string | null;
  /**
   * Art 12(5): the identity's verified requests within the window already reached the threshold
   * when this request was created; no challenge was mailed.
   */
  excessive: boolean;
  /**
   * A challenge this submission would have mailed was held back: the identity had its
   * `mailThrottle` of mails within the window. A code or link mailed earlier, still live, works;
   * otherwise submitting again once the window has passed mails a fresh one. Answered the same
   * whether or not the identity is known (the budget is counted either way).
   */
  mailThrottled: boolean;
}

/** What `resendChallenge` answers (the same whatever the identity). */
export interface ResendResult {
  /** No fresh challenge was mailed: the identity had its `mailThrottle` of mails within the window. */
  mailThrottled: boolean;
}

export const verifyInputSchema = z.union([
  z.object({ requestId: z.string().min(1).max(64), code: z.string().max(64) }).strict(),
  z.object({ submissionId: z.string().min(1).max(64), code: z.string().max(64) }).strict(),
  z.object({ token: z.string().min(1).max(256) }).strict(),
]);
export type VerifyInput = z.infer<typeof verifyInputSchema>;

export interface VerifyResult {
  requestId: string;
  status: RequestStatus;
  /** Identities of the request still to be verified. */
  remaining: number;
}

const actor = z.string().trim().min(1).max(255);

export const extendInputSchema = z
  .object({
    months: z.union([z.literal(1), z.literal(2)]),
    reasons: z.array(z.string()).default([]),
    by: actor,
  })
  .strict();
export type ExtendInput = z.input<typeof extendInputSchema>;

export const transitionInputSchema = z
  .object({
    to: requestStatusSchema,
    by: actor,
    /** Why, in staff's words; required for a denial (Art 12(4)). Never put personal data here. */
    reason: z.string().trim().max(2000).optional(),
  })
  .strict();
export type TransitionInput = z.input<typeof transitionInputSchema>;

export const listFilterSchema = z
  .object({
    /** Open requests whose deadline has passed (in the controller's zone). */
    overdue: z.boolean().optional(),
    /** Open requests due strictly before this civil date (or instant, read in the controller's zone). */
    dueBefore: z.union([z.string(), z.date()]).optional(),
    status: z.array(requestStatusSchema).optional(),
    right: requestRightSchema.optional(),
    limit: z.number().int().positive().max(10_000).optional(),
  })
  .strict();
export type ListFilter = z.input<typeof listFilterSchema>;

export type RequestOutcome =
  | { status: 'completed'; at: string; summary: string | null }
  /** `reason` is null only once the request is redacted (staff text may name the subject). */
  | { status: 'denied'; at: string; reason: string | null; remedies: Remedy[] }
  | { status: 'cancelled'; at: string; reason: string | null };

export interface RequestIdentityState {
  kind: string;
  /** Normalised value. */
  value: string;
  verified: boolean;
  verifiedAt: string | null;
}

/** A rights request as the back office sees it. */
export interface RequestRecord {
  id: string;
  tenant: string;
  right: RequestRight;
  /** What the subject asked for; null once the request is redacted. */
  details: RequestDetails | null;
  channel: RequestChannel;
  receivedAt: string;
  /** Civil date of receipt in the controller's zone. */
  receivedDate: CivilDate;
  status: RequestStatus;
  /** One month from receipt (Art 12(3)). */
  deadline: CivilDate;
  extension: { months: number; reasons: string[] };
  /** Set once extended: receipt + 1 + extension months. */
  extendedDeadline: CivilDate | null;
  /** Days the clock stood still while identity was checked (when pausing is on). */
  pausedDays: number;
  /** The date that counts: extended deadline (or deadline) plus paused days. */
  effectiveDeadline: CivilDate;
  identities: RequestIdentityState[];
  assignee: string | null;
  outcome: RequestOutcome | null;
  /**
   * The open request this one duplicates, when it was created while that one was open: only
   * requests that concurrent submissions created before intake was atomic, linked by migration
   * `0003_duplicate_links` (audited as `marked-duplicate`). A duplicate submission creates no
   * request: it is answered with the open one and recorded in that one's audit trail
   * (`duplicate-submission`).
   */
  duplicateOf: string | null;
  excessive: boolean;
  verificationLocked: boolean;
  createdAt: string;
  updatedAt: string;
  /** When the request reached its final status (completed, denied, cancelled); null while open. */
  closedAt: string | null;
  /**
   * When `redact` removed its personal data: identity values (`''`), details (`null`), extension
   * reasons, the outcome's free text, challenges, submissions and the audit's free text. What is
   * left proves the request was answered, and when (Art 5(2), 12(3)–(4)).
   */
  redactedAt: string | null;
}

/** One audited step (S07: UTC, no personal data beyond what staff typed in `reason`). */
export interface RequestAuditEntry {
  seq: number;
  requestId: string;
  at: string;
  by: string;
  action: string;
  from: RequestStatus | null;
  to: RequestStatus | null;
  reason: string | null;
  data: Record<string, unknown> | null;
}

/** A subject's request history, for their access export (Art 15, R14). No secrets, no hashes. */
export interface RequestHistory {
  requests: Array<Omit<RequestRecord, 'verificationLocked'>>;
  audit: RequestAuditEntry[];
}

export interface PostMortemDirective {
  id: string;
  requestId: string;
  kind: 'general' | 'particular';
  instructions: string;
  executor: { name: string; email: string } | null;
  status: 'active' | 'revoked';
  createdAt: string;
  revokedAt: string | null;
}

export interface RequestService {
  /** Records a request (any right, any channel) and sends challenges to the registered channels. */
  submit(input: SubmitRequestInput): Promise<SubmitResult>;
  /**
   * Checks a one-time code (with the submission's handle, or the request id) or a link token.
   * Wrong codes through a duplicate submission's handle count against that handle, not the request.
   */
  verify(input: VerifyInput): Promise<VerifyResult>;
  /**
   * Mails fresh challenges for a request still waiting for verification, within each identity's
   * `mailThrottle` (same answer whatever the identity).
   */
  resendChallenge(requestId: string): Promise<ResendResult>;
  /** Art 12(3) extension by one or two further months, with reasons, while the first month runs. */
  extend(requestId: string, input: ExtendInput): Promise<RequestRecord>;
  /** Moves a request along the state machine, audited. */
  transition(requestId: string, input: TransitionInput): Promise<RequestRecord>;
  assign(requestId: string, input: { assignee: string | null; by: string }): Promise<RequestRecord>;
  /** @throws `requests/not-found` */
  get(requestId: string): Promise<RequestRecord>;
  /** Object-level authorisation (S05): the request only if it belongs to this verified identity. */
  getForRequester(
    requestId: string,
    verifiedIdentity: RequestIdentity | readonly RequestIdentity[],
  ): Promise<RequestRecord>;
  list(filter?: ListFilter): Promise<RequestRecord[]>;
  /** Open requests due within `days` days from today (default 7), overdue ones excluded. */
  dueSoon(options?: { days?: number }): Promise<RequestRecord[]>;
  audit(requestId: string): Promise<RequestAuditEntry[]>;
  /** The verified channel answers go to; the only delivery address there is (hostile case 11). */
  deliveryChannel(requestId: string): Promise<string>;
  /** Requests and their audit for a subject's access export. */
  historyFor(identities: readonly RequestIdentity[]): Promise<RequestHistory>;
  /** Post-mortem directives the subject gave (LIL art. 85). */
  directivesFor(identities: readonly RequestIdentity[]): Promise<PostMortemDirective[]>;
  /**
   * Deletes this tenant's per-identity counters (`mailThrottle`, `codeGuessLimit`) whose every
   * window has ended, in batches of `batchSize`; returns how many were deleted. Such a row holds
   * nothing the limits need (the identity's next use opens a fresh window) but a keyed hash of the
   * identity (Art 5(1)(e) storage limitation). A row with a window still open is never deleted:
   * that would give its identity a fresh budget. The service also runs it by itself, at most once
   * an hour, after a `submit`, `verify` or `resendChallenge`; call it from a scheduler to bound the
   * rows' lifetime when the service may sit idle.
   */
  pruneThrottles(options?: PruneThrottlesOptions): Promise<number>;
  /**
   * Storage limitation of the request log itself (Art 5(1)(e)): strips the personal data of every
   * closed or never-verified request that `dueAt` says is due, keeping the skeleton that proves
   * it was answered, and when (Art 5(2), 12(3)–(4)): id, right, channel, status, dates,
   * deadlines, extension months, outcome category (and remedies of a denial), assignee, and the
   * audit's actions, actors, status changes and timestamps. Removed: identity values and their
   * lookup hashes (so `historyFor`, `getForRequester` and duplicate checks no longer find it),
   * details, extension reasons, the outcome's text, challenges, submissions, the audit's reasons
   * and free data. A never-verified request is also closed as `cancelled` (it can no longer be
   * verified). Post-mortem directives are never touched. One transaction per batch: a request is
   * either wholly redacted or untouched. Idempotent. Also prunes ended counters
   * (`pruneThrottles`), which may hold the same identities' hashes.
   *
   * @throws `requests/invalid-input` on a bad `batchSize`, or when `dueAt` answers something
   * other than a valid Date, null or undefined.
   */
  redact(options: RedactOptions): Promise<RedactResult>;
  /**
   * Resolves once the mails started by earlier calls have been handed to the mailer, and the
   * counters' background prune they started has ended.
   */
  whenIdle(): Promise<void>;
}

type Db = Kysely<RequestsTables>;
/** A kysely bound to one open transaction. */
type Tx = Kysely<RequestsTables>;

/** Whose attempts a code spends: the request's own, or those of a duplicate submission's handle. */
type AttemptsOf = { kind: 'request' } | { kind: 'submission'; submissionId: string };

/** A concurrent submission took an intake slot after this one's duplicate check: check again. */
class IntakeRace extends Error {
  override message = 'a concurrent submission took the intake slot';
}

/** Attempts of a submission that keeps losing intake races before its error is thrown. */
const INTAKE_ATTEMPTS = 5;

/** A service prunes its ended counters by itself at most this often (by its clock). */
const PRUNE_INTERVAL_MS = 3_600_000;
const PRUNE_BATCH_SIZE = 500;
/** Keys of one batch, bound as parameters: well under every engine's limit (SQLite 32,766). */
const PRUNE_MAX_BATCH_SIZE = 5_000;

/** Statuses of a request never verified: `redact` may strip and close it. */
const UNVERIFIED_STATUSES: readonly RequestStatus[] = ['received', 'identity-pending'];

/**
 * Audit actions whose `data` holds only counts, kinds, positions, dates and staff ids — never what
 * a subject or staff typed — and is kept by `redact`. Every other action's data is removed.
 */
const AUDIT_DATA_KEPT_ON_REDACTION = [
  'submitted',
  'challenge-withheld',
  'flagged-excessive',
  'identity-verified',
  'extended',
  'assigned',
  'marked-duplicate',
  'redacted',
];

/** An options or input argument that is no object: a typed error, not a TypeError on its first field. */
function objectArgument(value: unknown, method: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw requestsError(
      'requests/invalid-input',
      `${method} takes an object, got ${value === null ? 'null' : typeof value}`,
    );
  }
}

/** A request id as every method takes it: text (anything else reached SQL as a binding error). */
function requestIdArgument(requestId: unknown): void {
  if (typeof requestId !== 'string') {
    throw requestsError(
      'requests/invalid-input',
      `a request id is text, got ${requestId === null ? 'null' : typeof requestId}`,
    );
  }
}

function invalid(error: z.ZodError, what: string): never {
  const issues = zodIssues(error);
  throw requestsError(
    'requests/invalid-input',
    `invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    { issues },
  );
}

/**
 * What makes two open submissions of one identity the same request: the right — except for
 * post-mortem directives, where each directive given, revoked or carried out is a request of its
 * own and only the very same one sent again is a duplicate (a revocation must never be swallowed
 * by the open directive it revokes). Held by the identity's intake slot (`dedupe_right`, ≤ 32).
 */
function dedupeKeyOf(right: RequestRight, details: RequestDetails): string {
  if (right !== 'post-mortem-directives') return right;
  return `pmd:${sha256Hex(canonicalJson(details)).slice(0, 16)}`;
}

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/**
 * Creates the rights-request service: intake for every right, identity verification through a
 * registered channel, the Art 12(3) deadline, extensions, the state machine and its audit
 * (Art 12, 15–22, 5(2); LIL art. 85 directives).
 *
 * @throws PrivacyKitError `requests/invalid-options` or `requests/invalid-zone` on bad options.
 */
export function createRequestService(options: RequestServiceOptions): RequestService {
  const { policy, mailer } = options;
  const db = options.db as unknown as Db;
  const clock = options.clock ?? systemClock;
  const tenant = policy.tenant;
  const zone = policy.zone;
  const codeDigits = options.codeDigits ?? 6;
  const ttlMinutes = options.codeTtlMinutes ?? 10;
  const maxAttempts = options.maxVerificationAttempts ?? 5;
  const duplicateWindowDays = options.duplicateWindowDays ?? 7;
  const excessive = options.excessive ?? { maxRequests: 10, windowDays: 30 };
  const mailThrottle = options.mailThrottle ?? { maxMails: 5, windowHours: 24 };
  const codeGuessLimit = options.codeGuessLimit ?? { maxFailures: 10, windowHours: 24 };
  const pauseWhileVerifying = options.pauseWhileVerifying ?? false;
  const workingDays =
    options.holidays !== undefined || options.skipWeekends
      ? { holidays: options.holidays ?? [], skipWeekends: options.skipWeekends ?? true }
      : undefined;

  if (!isValidZone(zone)) throw requestsError('requests/invalid-zone', `unknown time zone "${zone}"`);
  if (!Number.isInteger(codeDigits) || codeDigits < 6 || codeDigits > 8)
    throw requestsError('requests/invalid-options', 'codeDigits must be 6, 7 or 8');
  if (!(ttlMinutes > 0 && ttlMinutes <= 10))
    throw requestsError('requests/invalid-options', 'codeTtlMinutes must be above 0 and at most 10');
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 5)
    throw requestsError('requests/invalid-options', 'maxVerificationAttempts must be 1 to 5');
  if (!(duplicateWindowDays >= 0) || !(excessive.maxRequests >= 1) || !(excessive.windowDays > 0))
    throw requestsError('requests/invalid-options', 'invalid duplicate or excessive thresholds');
  if (
    !Number.isInteger(mailThrottle.maxMails) ||
    mailThrottle.maxMails < 1 ||
    !(mailThrottle.windowHours > 0)
  )
    throw requestsError(
      'requests/invalid-options',
      'mailThrottle needs a whole maxMails of at least 1 and windowHours above 0',
    );
  if (
    !Number.isInteger(codeGuessLimit.maxFailures) ||
    codeGuessLimit.maxFailures < 1 ||
    !(codeGuessLimit.windowHours > 0)
  )
    throw requestsError(
      'requests/invalid-options',
      'codeGuessLimit needs a whole maxFailures of at least 1 and windowHours above 0',
    );
  if (options.secret !== undefined && options.secret.length < 16)
    throw requestsError('requests/invalid-options', 'secret must have at least 16 bytes');

  const pending = new Set<Promise<void>>();

  let secretPromise: Promise<string | Uint8Array> | undefined;
  const secret = (): Promise<string | Uint8Array> => {
    if (options.secret !== undefined) return Promise.resolve(options.secret);
    secretPromise ??= loadOrCreateSecret().catch((error: unknown) => {
      secretPromise = undefined;
      throw error;
    });
    return secretPromise;
  };

  async function loadOrCreateSecret(): Promise<string> {
    const existing = await db
      .selectFrom('privacykit_requests_secrets')
      .select('secret')
      .where('tenant', '=', tenant)
      .executeTakeFirst();
    if (existing) return existing.secret;
    try {
      await db
        .insertInto('privacykit_requests_secrets')
        .values({ tenant, secret: randomToken(32), created_at: clock.now().toISOString() })
        .execute();
    } catch {
      // Another process created it first: read theirs.
    }
    const created = await db
      .selectFrom('privacykit_requests_secrets')
      .select('secret')
      .where('tenant', '=', tenant)
      .executeTakeFirstOrThrow();
    return created.secret;
  }

  const now = () => clock.now();
  const today = () => civilDateIn(now(), zone);
  const roll = (date: CivilDate) => (workingDays ? nextWorkingDay(date, workingDays) : date);

  function deadlines(receivedDate: CivilDate, extensionMonths: number, pausedDays: number) {
    const deadline = roll(addCalendarMonths(receivedDate, 1));
    const extendedDeadline =
      extensionMonths > 0 ? roll(addCalendarMonths(receivedDate, 1 + extensionMonths)) : null;
    const effectiveDeadline = roll(
      addCalendarDays(addCalendarMonths(receivedDate, 1 + extensionMonths), pausedDays),
    );
    const firstMonthEnds = roll(addCalendarDays(addCalendarMonths(receivedDate, 1), pausedDays));
    return { deadline, extendedDeadline, effectiveDeadline, firstMonthEnds };
  }

  function normalised(identity: RequestIdentity): RequestIdentity {
    return { kind: identity.kind, value: normaliseRequestIdentity(identity, options.dataMap) };
  }

  async function hashesOf(identities: readonly RequestIdentity[]): Promise<string[]> {
    const key = await secret();
    return identities.map((identity) => {
      const n = normalised(identity);
      return identityLookupHash(key, n.kind, n.value);
    });
  }

  const budgets = {
    mail: {
      count: 'mails',
      start: 'mail_window_start',
      limit: mailThrottle.maxMails,
      hours: mailThrottle.windowHours,
    },
    failure: {
      count: 'failures',
      start: 'failure_window_start',
      limit: codeGuessLimit.maxFailures,
      hours: codeGuessLimit.windowHours,
    },
  } as const;

  /**
   * Takes one from the identity's budget — a challenge mail (`mailThrottle`) or a wrong code
   * (`codeGuessLimit`) — in one conditional update, so concurrent callers cannot both take the
   * last one; false when the window's budget is spent. A window opens with its first use and
   * closes `windowHours` later. The identity's row is created by its first use, in the caller's
   * transaction: a submission, resend or verification that fails leaves no counter behind
   * (Art 5(1)(c)).
   */
  async function takeFromBudget(
    trx: Tx,
    which: keyof typeof budgets,
    hash: string,
    at: Date,
  ): Promise<boolean> {
    // Read without a lock first: on MySQL an update of a missing row locks the gap around it, and
    // two transactions for new identities in that gap would then deadlock on their inserts.
    const existing = await trx
      .selectFrom('privacykit_requests_identity_limits')
      .select('lookup_hash')
      .where('tenant', '=', tenant)
      .where('lookup_hash', '=', hash)
      .executeTakeFirst();
    if (!existing) await createLimitRow(trx, hash);
    if (await takeOne(trx, which, hash, at)) return true;
    if (!existing) return false;
    // Spent — or gone: `pruneThrottles` deletes a row whose windows have all ended, and may have
    // done so since it was read here. Then the row is created afresh; a spent one stays as it is.
    await createLimitRow(trx, hash);
    return takeOne(trx, which, hash, at);
  }

  /** One from the budget of the identity's row, unless its window's is spent; false then, or without a row. */
  async function takeOne(trx: Tx, which: keyof typeof budgets, hash: string, at: Date): Promise<boolean> {
    const { count, start, limit, hours } = budgets[which];
    const cutoff = new Date(at.getTime() - hours * 3_600_000).toISOString();
    const taken = await trx
      .updateTable('privacykit_requests_identity_limits')
      // MySQL assigns left to right, each seeing the columns set before it: the count goes first,
      // so both read the window start as it was.
      .set((eb) => {
        const fresh = eb.or([eb(start, 'is', null), eb(start, '<=', cutoff)]);
        return {
          [count]: eb
            .case()
            .when(fresh)
            .then(sql<number>`1`)
            .else(eb(count, '+', 1))
            .end(),
          [start]: eb.case().when(fresh).then(sql<string>`${at.toISOString()}`).else(eb.ref(start)).end(),
        } as never;
      })
      .where('tenant', '=', tenant)
      .where('lookup_hash', '=', hash)
      .where((eb) => eb.or([eb(start, 'is', null), eb(start, '<=', cutoff), eb(count, '<', limit)]))
      .executeTakeFirst();
    return Number(taken.numUpdatedRows) === 1;
  }

  /**
   * The identity's row, with no window open, unless it exists; the caller's update then takes from
   * it. On MySQL a duplicate key takes the existing row's exclusive lock (`on duplicate key
   * update`, a no-op): `insert ignore` would take a shared one, and two transactions holding it
   * would deadlock on their updates when a third created the row before them.
   */
  async function createLimitRow(trx: Tx, hash: string): Promise<void> {
    const insert = trx
      .insertInto('privacykit_requests_identity_limits')
      .values({ tenant, lookup_hash: hash, mail_window_start: null, mails: 0 });
    if (engineOf(trx) === 'mysql')
      await insert.onDuplicateKeyUpdate((eb) => ({ lookup_hash: eb.ref('lookup_hash') })).execute();
    else await insert.onConflict((oc) => oc.columns(['tenant', 'lookup_hash']).doNothing()).execute();
  }

  /**
   * `pruneThrottles`: this tenant's counter rows whose every window has ended, by the very test
   * `takeFromBudget` opens a fresh window with (start null or at most `windowHours` ago). In
   * batches in key order: each batch's keys are read without a lock, then deleted in one statement
   * on the primary key that checks again that every window has ended, so a row a concurrent use
   * reopened meanwhile stays. Portable: no `delete … limit` (SQLite, PostgreSQL) and no subquery
   * on the table being deleted from (MySQL).
   */
  async function pruneThrottles(input: PruneThrottlesOptions = {}): Promise<number> {
    objectArgument(input, 'pruneThrottles');
    const batchSize = input.batchSize ?? PRUNE_BATCH_SIZE;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > PRUNE_MAX_BATCH_SIZE)
      throw requestsError(
        'requests/invalid-input',
        `batchSize must be a whole number from 1 to ${PRUNE_MAX_BATCH_SIZE}`,
      );
    const at = now().getTime();
    const ended = (eb: ExpressionBuilder<RequestsTables, 'privacykit_requests_identity_limits'>) =>
      eb.and(
        Object.values(budgets).map(({ start, hours }) =>
          eb.or([eb(start, 'is', null), eb(start, '<=', new Date(at - hours * 3_600_000).toISOString())]),
        ),
      );
    let deleted = 0;
    let after: string | undefined;
    for (;;) {
      const batch = await db
        .selectFrom('privacykit_requests_identity_limits')
        .select('lookup_hash')
        .where('tenant', '=', tenant)
        .$if(after !== undefined, (qb) => qb.where('lookup_hash', '>', after as string))
        .where(ended)
        .orderBy('lookup_hash')
        .limit(batchSize)
        .execute();
      if (batch.length === 0) break;
      const result = await db
        .deleteFrom('privacykit_requests_identity_limits')
        .where('tenant', '=', tenant)
        .where(
          'lookup_hash',
          'in',
          batch.map((row) => row.lookup_hash),
        )
        .where(ended)
        .executeTakeFirst();
      deleted += Number(result.numDeletedRows);
      if (batch.length < batchSize) break;
      after = batch[batch.length - 1]?.lookup_hash;
    }
    return deleted;
  }

  /**
   * `redact`: candidates (not redacted, closed or never verified) are read in id order, in
   * batches, without a lock; `dueAt` picks the due ones; each batch's due requests are then locked
   * and checked again (a verify may have moved one on meanwhile) and stripped in one transaction.
   */
  async function redact(input: RedactOptions): Promise<RedactResult> {
    if (typeof input?.dueAt !== 'function')
      throw requestsError('requests/invalid-input', 'redact needs a dueAt function');
    const batchSize = input.batchSize ?? PRUNE_BATCH_SIZE;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > PRUNE_MAX_BATCH_SIZE)
      throw requestsError(
        'requests/invalid-input',
        `batchSize must be a whole number from 1 to ${PRUNE_MAX_BATCH_SIZE}`,
      );
    const at = now();
    const candidateStatuses = [...finalStatuses, ...UNVERIFIED_STATUSES];
    const isDue = (
      row: Pick<RequestRow, 'id' | 'request_right' | 'status' | 'received_at' | 'closed_at'>,
    ) => {
      const status = requestStatusSchema.parse(row.status);
      if (!candidateStatuses.includes(status)) return false;
      const due = input.dueAt({
        id: row.id,
        right: requestRightSchema.parse(row.request_right),
        status,
        receivedAt: new Date(row.received_at),
        closedAt: isFinalStatus(status) && row.closed_at ? new Date(row.closed_at) : null,
      });
      if (due === null || due === undefined) return false;
      if (!(due instanceof Date) || Number.isNaN(due.getTime()))
        throw requestsError('requests/invalid-input', `dueAt answered no valid Date for request ${row.id}`);
      return due.getTime() <= at.getTime();
    };
    const result: RedactResult = { redacted: 0, closed: 0, unverified: 0 };
    const count = (rows: readonly Pick<RequestRow, 'status'>[]) => {
      for (const row of rows) {
        if (UNVERIFIED_STATUSES.includes(row.status as RequestStatus)) result.unverified += 1;
        else result.closed += 1;
        result.redacted += 1;
      }
    };
    let after: string | undefined;
    for (;;) {
      const batch = await db
        .selectFrom('privacykit_requests_requests')
        .select(['id', 'request_right', 'status', 'received_at', 'closed_at'])
        .where('tenant', '=', tenant)
        .where('redacted_at', 'is', null)
        .where('status', 'in', candidateStatuses)
        .$if(after !== undefined, (qb) => qb.where('id', '>', after as string))
        .orderBy('id')
        .limit(batchSize)
        .execute();
      if (batch.length === 0) break;
      const due = batch.filter(isDue);
      if (due.length > 0) {
        if (input.dryRun) count(due);
        else
          count(
            await writeTransaction(db, (trx) =>
              redactBatch(
                trx,
                due.map((row) => row.id),
                isDue,
                at,
              ),
            ),
          );
      }
      if (batch.length < batchSize) break;
      after = batch[batch.length - 1]?.id;
    }
    // The counters of the identities just stripped hold their hashes too; those whose windows
    // have ended go (a live window stays: it still bounds mails and guesses).
    if (!input.dryRun && result.redacted > 0) await pruneThrottles();
    return result;
  }

  /** Strips these requests, locked and checked again; returns the rows stripped (as they were). */
  async function redactBatch(
    trx: Tx,
    ids: readonly string[],
    isDue: (row: RequestRow) => boolean,
    at: Date,
  ): Promise<RequestRow[]> {
    const locked = await trx
      .selectFrom('privacykit_requests_requests')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', 'in', ids)
      .where('redacted_at', 'is', null)
      .orderBy('id')
      .$if(engineOf(trx) !== 'sqlite', (qb) => qb.forUpdate())
      .execute();
    const rows = locked.filter(isDue);
    if (rows.length === 0) return [];
    const iso = at.toISOString();
    const stripped = rows.map((row) => row.id);
    for (const row of rows) {
      const unverified = UNVERIFIED_STATUSES.includes(row.status as RequestStatus);
      await trx
        .updateTable('privacykit_requests_requests')
        .set({
          details: 'null',
          extension_reasons: '[]',
          outcome: JSON.stringify(
            unverified
              ? { status: 'cancelled', at: iso, reason: null }
              : strippedOutcome(parseJson(row.outcome) as RequestOutcome | null, row),
          ),
          ...(unverified ? { status: 'cancelled', closed_at: iso } : {}),
          redacted_at: iso,
          updated_at: iso,
        })
        .where('tenant', '=', tenant)
        .where('id', '=', row.id)
        .execute();
    }
    await trx
      .updateTable('privacykit_requests_identities')
      .set({ value: '', lookup_hash: '', channel: null, dedupe_right: null })
      .where('tenant', '=', tenant)
      .where('request_id', 'in', stripped)
      .execute();
    await trx
      .deleteFrom('privacykit_requests_challenges')
      .where('tenant', '=', tenant)
      .where('request_id', 'in', stripped)
      .execute();
    await trx
      .deleteFrom('privacykit_requests_submissions')
      .where('tenant', '=', tenant)
      .where('request_id', 'in', stripped)
      .execute();
    await trx
      .updateTable('privacykit_requests_audit')
      .set({ reason: null })
      .where('tenant', '=', tenant)
      .where('request_id', 'in', stripped)
      .where('reason', 'is not', null)
      .execute();
    await trx
      .updateTable('privacykit_requests_audit')
      .set({ data: null })
      .where('tenant', '=', tenant)
      .where('request_id', 'in', stripped)
      .where('action', 'not in', AUDIT_DATA_KEPT_ON_REDACTION)
      .where('data', 'is not', null)
      .execute();
    await trx
      .insertInto('privacykit_requests_audit')
      .values(
        rows.map((row) => {
          const unverified = UNVERIFIED_STATUSES.includes(row.status as RequestStatus);
          return {
            tenant,
            request_id: row.id,
            occurred_at: iso,
            actor: 'system',
            action: 'redacted',
            from_status: unverified ? row.status : null,
            to_status: unverified ? 'cancelled' : null,
            reason: null,
            data: JSON.stringify({ category: unverified ? 'unverified' : 'closed' }),
          };
        }),
      )
      .execute();
    return rows;
  }

  /** The outcome's category, time and (for a denial) remedies; without the text staff wrote. */
  function strippedOutcome(outcome: RequestOutcome | null, row: RequestRow): RequestOutcome {
    const at = outcome?.at ?? row.closed_at ?? row.updated_at;
    const status = (outcome?.status ?? row.status) as RequestOutcome['status'];
    switch (status) {
      case 'completed':
        return { status, at, summary: null };
      case 'denied':
        return {
          status,
          at,
          reason: null,
          remedies: outcome?.status === 'denied' ? outcome.remedies : remediesFor(policy),
        };
      case 'cancelled':
        return { status, at, reason: null };
    }
  }

  /** When the service last started pruning by itself (its clock's milliseconds). */
  let lastPrune: number | undefined;
  let pruning = false;

  /**
   * Starts `pruneThrottles` in the background when the last one started an interval ago or more
   * (or never did, in this instance) and has ended: the caller neither waits for it nor sees it
   * fail. A prune that fails is tried again an interval later; `whenIdle` waits for one that runs.
   */
  function pruneInBackground(): void {
    const at = now().getTime();
    if (pruning || (lastPrune !== undefined && at - lastPrune < PRUNE_INTERVAL_MS)) return;
    lastPrune = at;
    pruning = true;
    const task = pruneThrottles().then(
      () => undefined,
      () => undefined,
    );
    const tracked = task.finally(() => {
      pruning = false;
      pending.delete(tracked);
    });
    pending.add(tracked);
  }

  /** `call`'s answer or error, unchanged, once it has started the background prune if due. */
  async function thenPrune<R>(call: Promise<R>): Promise<R> {
    try {
      return await call;
    } finally {
      pruneInBackground();
    }
  }

  const takeMail = (trx: Tx, hash: string, at: Date) => takeFromBudget(trx, 'mail', hash, at);

  async function audit(
    trx: Tx | Db,
    entry: {
      requestId: string;
      by: string;
      action: string;
      from?: RequestStatus | null;
      to?: RequestStatus | null;
      reason?: string | null;
      data?: Record<string, unknown> | null;
    },
  ): Promise<void> {
    await trx
      .insertInto('privacykit_requests_audit')
      .values({
        tenant,
        request_id: entry.requestId.slice(0, 64),
        occurred_at: now().toISOString(),
        actor: entry.by,
        action: entry.action,
        from_status: entry.from ?? null,
        to_status: entry.to ?? null,
        reason: entry.reason ?? null,
        data: entry.data ? JSON.stringify(entry.data) : null,
      })
      .execute();
  }

  function deliver(message: MailMessage): void {
    if (!mailer) return;
    const task = mailer
      .send(message)
      .then(() => undefined)
      .catch((error: unknown) => {
        options.onDeliveryError?.(error);
      });
    const tracked = task.finally(() => pending.delete(tracked));
    pending.add(tracked);
  }

  async function deliverAndAudit(requestId: string, messages: MailMessage[], action: string): Promise<void> {
    if (!mailer) return;
    for (const message of messages) {
      try {
        await mailer.send(message);
        await audit(db, { requestId, by: 'system', action: `${action}-sent` });
      } catch (error) {
        options.onDeliveryError?.(error);
        await audit(db, { requestId, by: 'system', action: `${action}-failed` });
      }
    }
  }

  async function loadRow(trx: Tx | Db, requestId: string): Promise<RequestRow | undefined> {
    requestIdArgument(requestId);
    return trx
      .selectFrom('privacykit_requests_requests')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', requestId)
      .executeTakeFirst();
  }

  /**
   * The request's row, locked until the transaction ends (PostgreSQL, MySQL: `FOR UPDATE`; SQLite's
   * `writeTransaction` holds the write lock already): a second read-then-write waits for this one
   * and reads what it wrote. Every change that decides from the row it read starts here.
   */
  async function lockRow(trx: Tx, requestId: string): Promise<RequestRow | undefined> {
    requestIdArgument(requestId);
    if (engineOf(trx) === 'sqlite') return loadRow(trx, requestId);
    return trx
      .selectFrom('privacykit_requests_requests')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', requestId)
      .forUpdate()
      .executeTakeFirst();
  }

  async function identitiesOf(trx: Tx | Db, requestIds: readonly string[]): Promise<IdentityRow[]> {
    if (requestIds.length === 0) return [];
    return trx
      .selectFrom('privacykit_requests_identities')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('request_id', 'in', requestIds)
      .orderBy('request_id')
      .orderBy('position')
      .execute();
  }

  function toRecord(row: RequestRow, identities: readonly IdentityRow[]): RequestRecord {
    return {
      id: row.id,
      tenant: row.tenant,
      right: requestRightSchema.parse(row.request_right),
      details: parseJson(row.details) as RequestDetails | null,
      channel: requestChannelSchema.parse(row.channel),
      receivedAt: row.received_at,
      receivedDate: row.received_date,
      status: requestStatusSchema.parse(row.status),
      deadline: row.deadline,
      extension: {
        months: Number(row.extension_months),
        reasons: (parseJson(row.extension_reasons) as string[] | null) ?? [],
      },
      extendedDeadline: row.extended_deadline,
      pausedDays: Number(row.paused_days),
      effectiveDeadline: row.effective_deadline,
      identities: identities
        .filter((identity) => identity.request_id === row.id)
        .map((identity) => ({
          kind: identity.kind,
          value: identity.value,
          verified: identity.verified_at !== null,
          verifiedAt: identity.verified_at,
        })),
      assignee: row.assignee,
      outcome: parseJson(row.outcome) as RequestOutcome | null,
      duplicateOf: row.duplicate_of,
      excessive: Number(row.excessive) === 1,
      verificationLocked: Number(row.verification_locked) === 1,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      closedAt: row.closed_at ?? null,
      redactedAt: row.redacted_at ?? null,
    };
  }

  function redactedError() {
    return requestsError(
      'requests/redacted',
      'the personal data of this request was removed (storage limitation): it is kept only as a record that it was answered',
    );
  }

  /** @throws `requests/redacted` when `redact` has stripped the request: nothing more can be done with it. */
  function refuseRedacted(row: RequestRow): void {
    if (row.redacted_at) throw redactedError();
  }

  async function load(trx: Tx | Db, requestId: string): Promise<RequestRecord> {
    const row = await loadRow(trx, requestId);
    if (!row) throw requestsError('requests/not-found', 'no such request');
    return toRecord(row, await identitiesOf(trx, [row.id]));
  }

  async function records(rows: readonly RequestRow[]): Promise<RequestRecord[]> {
    const identities = await identitiesOf(
      db,
      rows.map((row) => row.id),
    );
    return rows.map((row) => toRecord(row, identities));
  }

  /**
   * Issues one challenge (a code and a link) per unverified identity of `identities` (or of
   * `only` among them); returns the mails to send once the transaction commits, and how many
   * identities' mails the `mailThrottle` held back. With `amendment`, they confirm the request
   * together with the details of a duplicate submission, which join it only when one of them is
   * used (`verify`). `budgetTaken`: the caller already took these identities' mails.
   */
  async function issueChallenges(
    trx: Tx,
    requestId: string,
    identities: readonly IdentityRow[],
    issue: {
      amendment?: { right: RequestRight; details: RequestDetails };
      mailed?: boolean;
      only?: ReadonlySet<string>;
      budgetTaken?: boolean;
    } = {},
  ): Promise<{ mails: MailMessage[]; held: number }> {
    const { amendment, mailed = true, only, budgetTaken = false } = issue;
    const key = await secret();
    const issuedAt = now();
    const expires = new Date(issuedAt.getTime() + ttlMinutes * 60_000).toISOString();
    const mails: MailMessage[] = [];
    const due = identities.filter(
      (identity) => identity.verified_at === null && (only === undefined || only.has(identity.id)),
    );
    // The budget is taken whether or not the identity has a channel: the answer (`mailThrottled`)
    // must not tell a known address from an unknown one. In hash order, so two transactions
    // taking the same identities' budgets never wait on each other in a cycle.
    const mailable = new Set<string>();
    if (mailed) {
      for (const identity of [...due].sort((a, b) => (a.lookup_hash < b.lookup_hash ? -1 : 1))) {
        if (budgetTaken || (await takeMail(trx, identity.lookup_hash, issuedAt))) mailable.add(identity.id);
      }
    }
    for (const identity of due) {
      const id = newId(issuedAt);
      // Without a registered channel, or when nothing is mailed (a flood flagged as excessive, a
      // mail the throttle held back), nobody will receive the code; the challenge is still
      // written (same work, same answer) but with an unguessable secret instead of digits,
      // which no one could guess.
      const sent = identity.channel !== null && mailable.has(identity.id);
      const code = sent ? randomDigits(codeDigits) : randomToken(32);
      const token = randomToken(32);
      await trx
        .insertInto('privacykit_requests_challenges')
        .values({
          id,
          tenant,
          request_id: requestId,
          identity_id: identity.id,
          code_hash: hmacSha256Hex(key, `code\u0000${id}\u0000${code}`),
          token_hash: hmacSha256Hex(key, `token\u0000${token}`),
          created_at: issuedAt.toISOString(),
          expires_at: expires,
          consumed_at: null,
          amendment: amendment ? JSON.stringify(amendment.details) : null,
        })
        .execute();
      if (!sent || !identity.channel) continue;
      // Without a link the mail says what the token is and where it goes: "confirm with this
      // link" followed by a bare token left the subject nothing to click.
      const link = options.verificationLink?.(token);
      const where = options.verificationPage ? ` on ${options.verificationPage}` : '';
      const tokenLine = (prefix: string) =>
        link === undefined ? `Or paste this confirmation token${where}: ${token}` : `${prefix}${link}`;
      const expiry = `The code and ${link === undefined ? 'token' : 'link'} expire in ${ttlMinutes} minutes and work once.`;
      mails.push(
        amendment
          ? {
              to: identity.channel,
              subject: `Confirm the details added to your ${policy.controller.name} privacy request`,
              text: [
                `Someone sent a ${policy.controller.name} privacy request linked to this address again, adding ${amendmentSummary(amendment.right, amendment.details)}.`,
                '',
                `To confirm the request with what was added, use this confirmation code: ${code}`,
                tokenLine('Or this link: '),
                '',
                `${expiry} A code from an earlier message confirms the request without the additions.`,
                'If you did not send it, ignore this message: nothing is added and nothing will be disclosed.',
              ].join('\n'),
            }
          : {
              to: identity.channel,
              subject: `Confirm your ${policy.controller.name} privacy request`,
              text: [
                `Someone asked ${policy.controller.name} to act on a privacy request linked to this address.`,
                ...(identities.length > 1
                  ? [
                      `The request also names ${identities.length - 1} other identit${identities.length === 2 ? 'y' : 'ies'}, each confirmed separately: if they are not all yours, do not confirm it.`,
                    ]
                  : []),
                '',
                `Your confirmation code: ${code}`,
                tokenLine('Or confirm with this link: '),
                '',
                expiry,
                'If you did not make this request, ignore this message: nothing will be disclosed.',
              ].join('\n'),
            },
      );
    }
    return { mails, held: mailed ? due.length - mailable.size : 0 };
  }

  /**
   * The requests, of `requestIds`, that name no identity outside `hashes`: the only ones a
   * submission naming `hashes` can be a duplicate of. A request that also names someone else
   * is another person's (an attacker who added the victim's email to their own): answering the
   * victim's submission with it would have the victim verify it, and its answer would go to
   * the other identity's channel.
   */
  async function namedWithin(trx: Tx, requestIds: readonly string[], hashes: readonly string[]) {
    const unique = [...new Set(requestIds)];
    if (unique.length === 0) return new Set<string>();
    const named = new Set(hashes);
    const outside = new Set(
      (await identitiesOf(trx, unique))
        .filter((identity) => !named.has(identity.lookup_hash))
        .map((identity) => identity.request_id),
    );
    return new Set(unique.filter((id) => !outside.has(id)));
  }

  /**
   * Replaces a pending request's expired codes with fresh ones, once however many duplicates ask
   * at the same time: the expired codes are spent in one conditional update, and only the
   * transaction whose update spent them mints and mails new ones. A concurrent duplicate's update
   * waits for that transaction and then finds nothing left to spend (under `READ COMMITTED` and
   * MySQL's locking reads alike; SQLite intakes never overlap), so the subject gets one code.
   * Every unverified identity of a pending request holds an unspent code, so "nothing spent"
   * means another duplicate already replaced them.
   */
  async function supersedeExpiredChallenges(
    trx: Tx,
    requestId: string,
    at: Date,
  ): Promise<{ mails: MailMessage[]; held: number }> {
    const spent = await trx
      .updateTable('privacykit_requests_challenges')
      .set({ consumed_at: at.toISOString() })
      .where('tenant', '=', tenant)
      .where('request_id', '=', requestId)
      .where('consumed_at', 'is', null)
      .where('expires_at', '<=', at.toISOString())
      .executeTakeFirst();
    if (Number(spent.numUpdatedRows) === 0) return { mails: [], held: 0 };
    const identities = await identitiesOf(trx, [requestId]);
    const issued = await issueChallenges(trx, requestId, identities);
    const pending = identities.filter((identity) => identity.verified_at === null).length;
    if (issued.held < pending) {
      await audit(trx, {
        requestId,
        by: 'system',
        action: 'challenge-resent',
        reason: 'a duplicate submission arrived after the codes had expired',
      });
    }
    if (issued.held > 0) await auditWithheld(trx, requestId, issued.held);
    return issued;
  }

  /** A challenge the `mailThrottle` held back, audited without saying whose. */
  async function auditWithheld(trx: Tx, requestId: string, identities: number): Promise<void> {
    await audit(trx, {
      requestId,
      by: 'system',
      action: 'challenge-withheld',
      reason: 'the identity had its challenge mails for the window',
      data: { identities, ...mailThrottle },
    });
  }

  async function noticeChannels(requestId: string): Promise<string[]> {
    const identities = await identitiesOf(db, [requestId]);
    const verified = identities.filter((identity) => identity.verified_at !== null && identity.channel);
    const chosen = verified.length > 0 ? verified : identities.filter((identity) => identity.channel);
    return [...new Set(chosen.map((identity) => identity.channel as string))];
  }

  function checkPolicyReferences(input: z.infer<typeof submitRequestSchema>): void {
    const known = new Set(policy.purposes.map((purpose) => purpose.id));
    let purposes: readonly string[] = [];
    if (input.right === 'withdraw-consent') purposes = input.details.purposes;
    if (input.right === 'objection') purposes = input.details.purposes ?? [];
    const unknown = purposes.filter((purpose) => !known.has(purpose));
    if (unknown.length > 0) {
      throw requestsError('requests/invalid-input', `unknown purpose(s): ${unknown.join(', ')}`, {
        issues: unknown.map((purpose) => ({
          path: 'details.purposes',
          message: `unknown purpose "${purpose}"`,
        })),
      });
    }
  }

  function checkPostMortem(details: PostMortemDetails): void {
    if (details.action !== 'execute') return;
    if (!details.proofOfDeath) {
      throw requestsError('requests/proof-required', 'carrying out a directive needs proof of death');
    }
    if (details.requester === 'heir' && !details.proofOfStanding) {
      throw requestsError('requests/proof-required', 'an heir must prove their standing (LIL art. 85-II)');
    }
    if (details.requester === 'executor' && !details.directiveId) {
      throw requestsError('requests/invalid-input', 'an executor acts on a directive: give its id');
    }
  }

  async function submit(raw: SubmitRequestInput): Promise<SubmitResult> {
    const parsed = submitRequestSchema.safeParse(raw);
    if (!parsed.success) invalid(parsed.error, 'request');
    const input = parsed.data;
    checkPolicyReferences(input);
    if (input.right === 'post-mortem-directives') checkPostMortem(input.details);

    const identities = input.identities.map(normalised);
    for (const identity of identities) {
      if (identity.kind === 'email' && !looksLikeEmail(identity.value)) {
        throw requestsError('requests/invalid-input', 'an email identity must look like an address', {
          issues: [{ path: 'identities', message: 'expected an email address' }],
        });
      }
    }
    const unique = new Map(
      identities.map((identity) => [`${identity.kind}\u0000${identity.value}`, identity]),
    );
    if (unique.size !== identities.length) {
      throw requestsError('requests/invalid-input', 'the same identity is given twice');
    }
    if (input.deliverTo !== undefined) {
      const target = normaliseRequestIdentity({ kind: 'email', value: input.deliverTo });
      const own = identities.some((identity) => identity.kind === 'email' && identity.value === target);
      if (!own) {
        throw requestsError(
          'requests/delivery-address-mismatch',
          'answers are only sent to the verified channel of the requester, never to another address',
        );
      }
    }

    const receivedAt = input.receivedAt ? new Date(input.receivedAt) : now();
    // A request is received before it is entered. One dated later would never fall due (its
    // deadline that far off), and would hold its duplicate slot as long. A few minutes' clock
    // skew between the host and this server is tolerated.
    if (receivedAt.getTime() > now().getTime() + 5 * 60_000) {
      throw requestsError(
        'requests/invalid-input',
        'receivedAt is in the future: a request is entered once received',
        {
          issues: [{ path: 'receivedAt', message: 'must not be later than now' }],
        },
      );
    }
    const receivedDate = civilDateIn(receivedAt, zone);
    const received = receivedAt.toISOString();
    // The registered channel of each identity, looked up the same way whether it exists or not.
    const channels: (string | null)[] = [];
    for (const identity of identities) {
      const found = options.lookupRegisteredChannel
        ? await options.lookupRegisteredChannel(identity)
        : identity.kind === 'email'
          ? identity.value
          : null;
      channels.push(found ? found.trim() : null);
    }
    const key = await secret();
    const hashes = identities.map((identity) => identityLookupHash(key, identity.kind, identity.value));
    // The identities' mail counters are created where a mail is taken, inside the transaction
    // (`takeFromBudget`): written before it, they would outlive a submission that then fails.

    const at = now();
    const dedupeKey = dedupeKeyOf(input.right, input.details);
    const result = await intakeTransaction(async (trx) => {
      const since = new Date(at.getTime() - duplicateWindowDays * 86_400_000).toISOString();
      const duplicate = await trx
        .selectFrom('privacykit_requests_requests as r')
        .innerJoin('privacykit_requests_identities as i', 'i.request_id', 'r.id')
        .select([
          'r.id',
          'r.excessive',
          'r.status',
          'r.details',
          'r.received_at',
          'r.extension_months',
          'r.paused_days',
        ])
        .where('r.tenant', '=', tenant)
        .where('i.tenant', '=', tenant)
        .where('i.lookup_hash', 'in', hashes)
        .where('r.request_right', '=', input.right)
        .where('r.status', 'not in', [...finalStatuses])
        .where('r.received_at', '>=', since)
        // A request locked after wrong codes answers no new submission: the subject's fresh one
        // gets a request and a code of its own. Else anyone who learnt a request's reference
        // could lock it with five guesses and leave its subject no way on for the whole window.
        .where('r.verification_locked', '=', 0)
        .orderBy('r.received_at')
        .orderBy('r.id')
        .execute()
        .then(async (candidates) => {
          const within = await namedWithin(
            trx,
            candidates.map((candidate) => candidate.id),
            hashes,
          );
          return candidates.find(
            (candidate) =>
              within.has(candidate.id) &&
              (input.right !== 'post-mortem-directives' ||
                dedupeKeyOf(input.right, parseJson(candidate.details) as RequestDetails) === dedupeKey),
          );
        });

      const requestId = duplicate?.id ?? newId(at);

      if (duplicate) {
        // Nothing the subject sent is dropped, and nothing it says joins the request unproven: a
        // submission is unverified, and anyone can name someone else's email. Details that differ
        // from the open request are kept in the audit entry. Those that would add to a request
        // still awaiting verification (new corrections, more purposes) are also mailed to its
        // channel as their own code, and join only when that code is used; otherwise a stranger
        // could slip a corrected address into a request its subject then verifies, and staff
        // would apply it. A request its subject has verified is never rewritten by a submission.
        const stored = parseJson(duplicate.details) as RequestDetails;
        const differs = JSON.stringify(stored) !== JSON.stringify(input.details);
        const pending = duplicate.status === 'identity-pending';
        const adds = differs && mergeDuplicateDetails(input.right, stored, input.details) !== undefined;
        // A duplicate is not a request of its own and proves nothing, so it never counts towards
        // Art 12(5) nor flags the request; a request flagged when it was created mails nothing.
        const alreadyFlagged = Number(duplicate.excessive) === 1;
        const confirm = adds && pending && !alreadyFlagged;
        let issued: { mails: MailMessage[]; held: number } = { mails: [], held: 0 };
        if (confirm) {
          // The latest additions replace earlier unconfirmed ones: each resubmission must not add
          // another live code to guess against (the subject's own stays).
          await trx
            .updateTable('privacykit_requests_challenges')
            .set({ consumed_at: at.toISOString() })
            .where('tenant', '=', tenant)
            .where('request_id', '=', requestId)
            .where('consumed_at', 'is', null)
            .where('amendment', 'is not', null)
            .execute();
          issued = await issueChallenges(trx, requestId, await identitiesOf(trx, [requestId]), {
            amendment: { right: input.right, details: input.details },
          });
        } else if (pending && !alreadyFlagged) {
          // A lost code: re-send when nothing live is outstanding, but never to feed a flood.
          const live = await trx
            .selectFrom('privacykit_requests_challenges')
            .select('id')
            .where('tenant', '=', tenant)
            .where('request_id', '=', requestId)
            .where('consumed_at', 'is', null)
            .where('expires_at', '>', at.toISOString())
            .executeTakeFirst();
          if (!live) issued = await supersedeExpiredChallenges(trx, requestId, at);
        }
        // The same request received earlier (a letter entered after the subject also wrote
        // online): the month runs from the first receipt (Art 12(3)), so the request takes it.
        const earlier = received < String(duplicate.received_at);
        if (earlier) {
          const { deadline, extendedDeadline, effectiveDeadline } = deadlines(
            receivedDate,
            Number(duplicate.extension_months),
            Number(duplicate.paused_days),
          );
          await trx
            .updateTable('privacykit_requests_requests')
            .set({
              received_at: received,
              received_date: receivedDate,
              deadline,
              extended_deadline: extendedDeadline,
              effective_deadline: effectiveDeadline,
            })
            .where('tenant', '=', tenant)
            .where('id', '=', requestId)
            .execute();
        }
        await audit(trx, {
          requestId,
          by: 'subject',
          action: 'duplicate-submission',
          data: {
            channel: input.channel,
            // A receipt the host dated (a letter, a call) is on the record, earlier or not.
            ...(input.receivedAt !== undefined ? { receivedAt: received } : {}),
            ...(earlier ? { earlierReceipt: { from: String(duplicate.received_at), to: received } } : {}),
            ...(differs
              ? {
                  details: input.details,
                  merged: false,
                  unverified: true,
                  ...(confirm && issued.held === 0 ? { confirmationMailed: true } : {}),
                }
              : {}),
            ...(issued.held > 0 ? { mailThrottled: true } : {}),
          },
        });
        if (confirm && issued.held > 0) await auditWithheld(trx, requestId, issued.held);
        const submissionId = await recordSubmission(trx, requestId, true, at);
        return {
          mails: issued.mails,
          result: {
            requestId,
            submissionId,
            status: requestStatusSchema.parse(duplicate.status),
            duplicateOf: requestId,
            excessive: alreadyFlagged,
            mailThrottled: issued.held > 0,
          },
        };
      }

      // The intake slots (a unique index over tenant, identity and right) make "no duplicate, so
      // create" atomic: a concurrent identical submission cannot create a second request. A slot
      // still held by a request the check above passed over (closed, or received before the
      // window) is released; one held by a request it would have returned was taken by a
      // submission that committed since: check again. (A request locked after wrong codes, or
      // one naming an identity this submission does not, is passed over too.)
      const holders = await trx
        .selectFrom('privacykit_requests_identities as i')
        .innerJoin('privacykit_requests_requests as r', 'r.id', 'i.request_id')
        .select(['i.id', 'i.request_id', 'r.status', 'r.received_at', 'r.verification_locked'])
        .where('i.tenant', '=', tenant)
        .where('r.tenant', '=', tenant)
        .where('i.lookup_hash', 'in', hashes)
        .where('i.dedupe_right', '=', dedupeKey)
        .orderBy('i.lookup_hash')
        .execute();
      const holdersWithin = await namedWithin(
        trx,
        holders.map((holder) => holder.request_id),
        hashes,
      );
      for (const holder of holders) {
        const passedOver =
          isFinalStatus(requestStatusSchema.parse(holder.status)) ||
          holder.received_at < since ||
          Number(holder.verification_locked) === 1 ||
          !holdersWithin.has(holder.request_id);
        if (!passedOver) throw new IntakeRace();
        await trx
          .updateTable('privacykit_requests_identities')
          .set({ dedupe_right: null })
          .where('tenant', '=', tenant)
          .where('id', '=', holder.id)
          .where('dedupe_right', '=', dedupeKey)
          .execute();
      }

      // Art 12(5) counts the requests the identity proved it made: only those whose identity
      // was verified through its channel. Unverified submissions naming someone (anyone can type
      // a victim's address) must never get the victim's own request refused.
      const windowStart = new Date(at.getTime() - excessive.windowDays * 86_400_000).toISOString();
      const counts = await trx
        .selectFrom('privacykit_requests_identities as i')
        .innerJoin('privacykit_requests_requests as r', 'r.id', 'i.request_id')
        .select(['i.lookup_hash', (eb) => eb.fn.countAll<number>().as('n')])
        .where('i.tenant', '=', tenant)
        .where('r.tenant', '=', tenant)
        .where('i.lookup_hash', 'in', hashes)
        .where('i.verified_at', 'is not', null)
        .where('r.received_at', '>=', windowStart)
        .groupBy('i.lookup_hash')
        .execute();
      // This request would be one more than the verified ones counted.
      const flagged = counts.some((count) => Number(count.n) >= excessive.maxRequests);

      const { deadline, effectiveDeadline } = deadlines(receivedDate, 0, 0);
      await trx
        .insertInto('privacykit_requests_requests')
        .values({
          id: requestId,
          tenant,
          request_right: input.right,
          details: JSON.stringify(input.details),
          channel: input.channel,
          received_at: received,
          received_date: receivedDate,
          status: 'received',
          deadline,
          extension_months: 0,
          extension_reasons: '[]',
          extended_deadline: null,
          pause_while_verifying: pauseWhileVerifying ? 1 : 0,
          paused_days: 0,
          effective_deadline: effectiveDeadline,
          assignee: null,
          outcome: null,
          duplicate_of: null,
          excessive: flagged ? 1 : 0,
          verification_failures: 0,
          verification_locked: 0,
          created_at: at.toISOString(),
          updated_at: at.toISOString(),
          closed_at: null,
          redacted_at: null,
        })
        .execute();
      const identityRows: IdentityRow[] = identities.map((identity, position) => ({
        id: newId(at),
        tenant,
        request_id: requestId,
        position,
        kind: identity.kind,
        value: identity.value,
        lookup_hash: hashes[position] as string,
        channel: channels[position] ?? null,
        verified_at: null,
        dedupe_right: dedupeKey,
      }));
      // In hash order, so two submissions naming the same identities in another order take the
      // slots in the same order (a conflict, never a deadlock).
      const slotOrder = [...identityRows].sort((a, b) => (a.lookup_hash < b.lookup_hash ? -1 : 1));
      await trx.insertInto('privacykit_requests_identities').values(slotOrder).execute();
      await audit(trx, {
        requestId,
        by: 'subject',
        action: 'submitted',
        to: 'received',
        data: { right: input.right, channel: input.channel, identityKinds: identities.map((i) => i.kind) },
      });
      if (flagged)
        await audit(trx, { requestId, by: 'system', action: 'flagged-excessive', data: { ...excessive } });
      await trx
        .updateTable('privacykit_requests_requests')
        .set({ status: 'identity-pending' })
        .where('id', '=', requestId)
        .where('tenant', '=', tenant)
        .execute();
      await audit(trx, {
        requestId,
        by: 'system',
        action: 'transition',
        from: 'received',
        to: 'identity-pending',
        reason: 'challenge sent to the registered channels',
      });
      const issued = await issueChallenges(trx, requestId, identityRows, { mailed: !flagged });
      if (issued.held > 0) await auditWithheld(trx, requestId, issued.held);
      const submissionId = await recordSubmission(trx, requestId, false, at);
      return {
        mails: issued.mails,
        result: {
          requestId,
          submissionId,
          status: 'identity-pending' as const,
          duplicateOf: null,
          excessive: flagged,
          mailThrottled: issued.held > 0,
        },
      };
    });
    // Delivery is not awaited: the answer takes the same time whether a channel exists or not.
    for (const mail of result.mails) deliver(mail);
    return result.result;
  }

  /** The handle a submission verifies through (`verify({ submissionId, code })`). */
  async function recordSubmission(trx: Tx, requestId: string, duplicate: boolean, at: Date): Promise<string> {
    const id = newId(at);
    await trx
      .insertInto('privacykit_requests_submissions')
      .values({
        id,
        tenant,
        request_id: requestId,
        duplicate: duplicate ? 1 : 0,
        verification_failures: 0,
        verification_locked: 0,
        created_at: at.toISOString(),
      })
      .execute();
    return id;
  }

  /**
   * The transaction of `submit`, run again when a concurrent identical submission won the race
   * for an intake slot: the rerun's duplicate check finds the winner's request, so the loser
   * gets exactly the answer a sequential duplicate gets. Every attempt rolls back whole, so a
   * submission that loses every one stores nothing and fails with `requests/intake-conflict`.
   */
  async function intakeTransaction<R>(work: (trx: Tx) => Promise<R>): Promise<R> {
    return retriedTransaction(work, (error) =>
      requestsError(
        'requests/intake-conflict',
        `the request was not recorded: concurrent submissions for the same identity and right won the race for its intake slot ${INTAKE_ATTEMPTS} times in a row; nothing was stored, submit it again`,
        { cause: error, details: { attempts: INTAKE_ATTEMPTS } },
      ),
    );
  }

  /** A write transaction run again (whole) when it lost to a concurrent one; `giveUp` after the last. */
  async function retriedTransaction<R>(
    work: (trx: Tx) => Promise<R>,
    giveUp: (error: unknown) => Error,
  ): Promise<R> {
    return retryWriteConflicts(() => writeTransaction(db, work), {
      attempts: INTAKE_ATTEMPTS,
      giveUp,
      lost: (error) => error instanceof IntakeRace,
    });
  }

  async function resendChallenge(requestId: string): Promise<ResendResult> {
    // MySQL may still break a deadlock between resends of neighbouring requests (gap locks on
    // the challenges' index): the loser runs again, whole.
    const issued = await retriedTransaction(
      async (trx): Promise<{ mails: MailMessage[]; held: number }> => {
        // Locked: two resends at once (two tabs) must not both consume the live code and mint one each.
        const row = await lockRow(trx, requestId);
        if (row?.status !== 'identity-pending' || Number(row.verification_locked) === 1)
          return { mails: [], held: 0 };
        if (Number(row.excessive) === 1) return { mails: [], held: 0 };
        // Each identity's mail is taken from its budget first: an identity whose mail the
        // throttle holds back keeps its live code (the subject may have it), and gets no new one.
        const at = now();
        const identities = await identitiesOf(trx, [requestId]);
        const pending = identities
          .filter((identity) => identity.verified_at === null)
          .sort((a, b) => (a.lookup_hash < b.lookup_hash ? -1 : 1));
        const allowed = new Set<string>();
        for (const identity of pending) {
          if (await takeMail(trx, identity.lookup_hash, at)) allowed.add(identity.id);
        }
        const held = pending.length - allowed.size;
        if (held > 0) await auditWithheld(trx, requestId, held);
        if (allowed.size === 0) return { mails: [], held };
        await trx
          .updateTable('privacykit_requests_challenges')
          .set({ consumed_at: at.toISOString() })
          .where('tenant', '=', tenant)
          .where('request_id', '=', requestId)
          .where('identity_id', 'in', [...allowed])
          .where('consumed_at', 'is', null)
          .execute();
        await audit(trx, { requestId, by: 'subject', action: 'challenge-resent' });
        const { mails } = await issueChallenges(trx, requestId, identities, {
          only: allowed,
          budgetTaken: true,
        });
        return { mails, held };
      },
      (error) =>
        requestsError(
          'requests/write-conflict',
          `no new code was sent: concurrent changes to request ${requestId} won ${INTAKE_ATTEMPTS} times in a row; nothing was changed, ask again`,
          { cause: error, details: { attempts: INTAKE_ATTEMPTS } },
        ),
    );
    for (const mail of issued.mails) deliver(mail);
    return { mailThrottled: issued.held > 0 };
  }

  function failed() {
    return requestsError('requests/verification-failed', 'the code or link is not valid for this request');
  }

  function lockedError() {
    return requestsError('requests/verification-locked', 'too many wrong codes: verification is locked');
  }

  const throttledError = () =>
    requestsError(
      'requests/verification-throttled',
      'too many wrong codes for this identity lately: codes are refused for now, but the link in the email still works',
    );

  /** Where the attempts a code spends are counted: the request's row, or a duplicate submission's. */
  function attemptsRow(requestId: string, via: AttemptsOf) {
    return via.kind === 'request'
      ? { table: 'privacykit_requests_requests' as const, id: requestId }
      : { table: 'privacykit_requests_submissions' as const, id: via.submissionId };
  }

  /**
   * Takes one of the request's attempts, and one of each unverified identity's `codeGuessLimit`,
   * before a code is compared, with conditional updates in the transaction that then records the
   * outcome, so guesses sent in parallel cannot slip past either (hostile case 14): each waits for
   * the one holding the attempts' row. The identity's budget spans its requests: a fresh
   * submission does not bring fresh guesses. When either is spent it throws, and the transaction
   * takes nothing. A right code gives its attempts back. An identity's counter row is created by
   * its first wrong-code attempt here, so a verification that fails leaves none behind.
   */
  async function reserveAttempt(
    trx: Tx,
    requestId: string,
    via: AttemptsOf,
    hashes: readonly string[],
  ): Promise<void> {
    const at = now();
    const { table, id } = attemptsRow(requestId, via);
    const reserved = await trx
      .updateTable(table)
      .set((eb) => ({ verification_failures: eb('verification_failures', '+', 1) }))
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      // A request's own attempts only while it waits for verification.
      .$if(via.kind === 'request', (qb) => qb.where(sql.ref('status'), '=', 'identity-pending'))
      .where('verification_locked', '=', 0)
      .where('verification_failures', '<', maxAttempts)
      .executeTakeFirst();
    if (Number(reserved.numUpdatedRows) !== 1) {
      const row = await loadRow(trx, requestId);
      if (row?.status !== 'identity-pending') throw failed();
      throw lockedError();
    }
    for (const hash of [...new Set(hashes)].sort()) {
      if (!(await takeFromBudget(trx, 'failure', hash, at))) throw throttledError();
    }
  }

  /** The right code's attempt goes back to whoever it was taken from. */
  async function giveBackAttempt(trx: Tx, requestId: string, via: AttemptsOf): Promise<void> {
    const { table, id } = attemptsRow(requestId, via);
    await trx
      .updateTable(table)
      .set((eb) => ({ verification_failures: eb('verification_failures', '-', 1) }))
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .where('verification_failures', '>', 0)
      .execute();
  }

  /** The guess was right: its identities' budgets get their wrong-code attempt back. */
  async function giveBackGuesses(trx: Tx, hashes: readonly string[]): Promise<void> {
    const hashList = [...new Set(hashes)].sort();
    if (hashList.length === 0) return;
    await trx
      .updateTable('privacykit_requests_identity_limits')
      .set((eb) => ({ failures: eb('failures', '-', 1) }))
      .where('tenant', '=', tenant)
      .where('lookup_hash', 'in', hashList)
      .where('failures', '>', 0)
      .execute();
  }

  /**
   * A wrong code: counted where its attempt was taken, which locks after `maxAttempts`; true when
   * that is now locked. Through a duplicate submission's handle only that handle locks; the
   * request is left as it is: its subject may be verifying it with their own code, and the
   * duplicate may be a stranger's (anyone can submit someone else's address).
   */
  async function recordFailure(trx: Tx, requestId: string, via: AttemptsOf): Promise<boolean> {
    const { table, id } = attemptsRow(requestId, via);
    const duplicate = via.kind === 'submission';
    const row = await trx
      .selectFrom(table)
      .select('verification_failures')
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .$if(engineOf(trx) !== 'sqlite', (qb) => qb.forUpdate())
      .executeTakeFirst();
    const failures = Number(row?.verification_failures ?? 0);
    await audit(trx, {
      requestId,
      by: 'subject',
      action: 'verification-failed',
      data: duplicate ? { failures, via: 'duplicate-submission' } : { failures },
    });
    if (failures < maxAttempts) return false;
    const lockedNow = await trx
      .updateTable(table)
      .set(
        (duplicate
          ? { verification_locked: 1 }
          : { verification_locked: 1, updated_at: now().toISOString() }) as never,
      )
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .where('verification_locked', '=', 0)
      .executeTakeFirst();
    if (Number(lockedNow.numUpdatedRows) === 1) {
      await audit(trx, {
        requestId,
        by: 'system',
        action: duplicate ? 'duplicate-submission-locked' : 'verification-locked',
        reason: duplicate
          ? `${failures} wrong codes through a duplicate submission; the request itself is not locked`
          : `${failures} wrong codes`,
      });
    }
    return true;
  }

  async function verify(raw: VerifyInput): Promise<VerifyResult> {
    const parsed = verifyInputSchema.safeParse(raw);
    if (!parsed.success) invalid(parsed.error, 'verification');
    const input = parsed.data;
    const key = await secret();
    const at = now().toISOString();

    let requestId: string;
    /** A link's challenge, found by its token. */
    let linked: string | undefined;
    /** A code's: what it is compared with, and where its attempts are taken. */
    let guess:
      | { code: string; via: AttemptsOf; live: readonly ChallengeRow[]; guessed: readonly string[] }
      | undefined;
    if ('token' in input) {
      const tokenHash = hmacSha256Hex(key, `token\u0000${input.token}`);
      const challenge = await db
        .selectFrom('privacykit_requests_challenges')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('token_hash', '=', tokenHash)
        .executeTakeFirst();
      if (!challenge || !constantTimeEqual(challenge.token_hash, tokenHash)) throw failed();
      const row = await loadRow(db, challenge.request_id);
      if (row?.status !== 'identity-pending') throw failed();
      if (Number(row.verification_locked) === 1) throw lockedError();
      if (challenge.consumed_at !== null) throw failed();
      if (challenge.expires_at <= at) {
        throw requestsError('requests/verification-expired', 'the link has expired: ask for a new one');
      }
      requestId = row.id;
      linked = challenge.id;
    } else {
      let via: AttemptsOf;
      let row: RequestRow | undefined;
      if ('submissionId' in input) {
        const submission = await db
          .selectFrom('privacykit_requests_submissions')
          .selectAll()
          .where('tenant', '=', tenant)
          .where('id', '=', input.submissionId)
          .executeTakeFirst();
        if (!submission) throw failed();
        row = await loadRow(db, submission.request_id);
        if (row?.status !== 'identity-pending') throw failed();
        if (Number(submission.duplicate) === 1) {
          via = { kind: 'submission', submissionId: submission.id };
          if (Number(submission.verification_locked) === 1) throw lockedError();
        } else {
          via = { kind: 'request' };
        }
      } else {
        row = await loadRow(db, input.requestId);
        via = { kind: 'request' };
      }
      if (row?.status !== 'identity-pending') throw failed();
      if (Number(row.verification_locked) === 1) throw lockedError();
      const open = await db
        .selectFrom('privacykit_requests_challenges')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('request_id', '=', row.id)
        .where('consumed_at', 'is', null)
        .execute();
      const live = open.filter((challenge) => challenge.expires_at > at);
      if (open.length > 0 && live.length === 0) {
        throw requestsError('requests/verification-expired', 'the code has expired: ask for a new one');
      }
      // Every unverified identity's code is compared, so each of their budgets pays for a guess.
      const guessed = (await identitiesOf(db, [row.id]))
        .filter((identity) => identity.verified_at === null)
        .map((identity) => identity.lookup_hash);
      requestId = row.id;
      guess = { code: input.code.trim(), via, live, guessed };
    }

    // One transaction from the attempt taken to the outcome recorded: a verification that fails
    // anywhere, right code or wrong, takes no attempt and leaves no counter row behind.
    const outcome = await writeTransaction(
      db,
      async (trx): Promise<{ status: RequestStatus; remaining: number } | { wrong: 'failed' | 'locked' }> => {
        // The request's row first, as every other change to it, whichever attempts a code spends:
        // a link, a code through a duplicate's handle and one through the request never wait on
        // each other in opposite orders.
        await lockRow(trx, requestId);
        let challengeId = linked;
        if (guess) {
          await reserveAttempt(trx, requestId, guess.via, guess.guessed);
          // Compare against every live challenge so the time taken does not tell which one matched.
          let match: string | undefined;
          for (const challenge of guess.live) {
            const equal = constantTimeEqual(
              challenge.code_hash,
              hmacSha256Hex(key, `code\u0000${challenge.id}\u0000${guess.code}`),
            );
            if (equal && match === undefined) match = challenge.id;
          }
          // The wrong code's attempts stay taken: this transaction commits them with its record.
          if (match === undefined)
            return { wrong: (await recordFailure(trx, requestId, guess.via)) ? 'locked' : 'failed' };
          challengeId = match;
        }
        if (challengeId === undefined) throw failed();
        const consumed = await trx
          .updateTable('privacykit_requests_challenges')
          .set({ consumed_at: at })
          .where('tenant', '=', tenant)
          .where('id', '=', challengeId)
          .where('consumed_at', 'is', null)
          .executeTakeFirst();
        if (Number(consumed.numUpdatedRows) !== 1) throw failed();
        if (guess) {
          // The attempts reserved for this right code are given back.
          await giveBackAttempt(trx, requestId, guess.via);
          await giveBackGuesses(trx, guess.guessed);
        }
        const challenge = await trx
          .selectFrom('privacykit_requests_challenges')
          .select(['identity_id', 'amendment'])
          .where('id', '=', challengeId)
          .executeTakeFirstOrThrow();
        if (challenge.amendment !== null)
          await amend(trx, requestId, parseJson(challenge.amendment) as RequestDetails);
        await trx
          .updateTable('privacykit_requests_identities')
          .set({ verified_at: at })
          .where('tenant', '=', tenant)
          .where('id', '=', challenge.identity_id)
          .where('verified_at', 'is', null)
          .execute();
        // Other challenges of the same identity are spent too: one verification per identity.
        await trx
          .updateTable('privacykit_requests_challenges')
          .set({ consumed_at: at })
          .where('tenant', '=', tenant)
          .where('identity_id', '=', challenge.identity_id)
          .where('consumed_at', 'is', null)
          .execute();
        const identities = await identitiesOf(trx, [requestId]);
        const position = identities.find((identity) => identity.id === challenge.identity_id)?.position;
        await audit(trx, {
          requestId,
          by: 'subject',
          action: 'identity-verified',
          data: { identity: position, method: 'token' in input ? 'link' : 'code' },
        });
        const remaining = identities.filter((identity) => identity.verified_at === null).length;
        if (remaining > 0) return { status: 'identity-pending' as RequestStatus, remaining };
        await moveToVerified(
          trx,
          requestId,
          'subject',
          'every identity verified through its registered channel',
        );
        return { status: 'verified' as RequestStatus, remaining: 0 };
      },
    );
    if ('wrong' in outcome) throw outcome.wrong === 'locked' ? lockedError() : failed();
    return { requestId, ...outcome };
  }

  /**
   * The details of a duplicate submission join its request: their code was used, so whoever
   * sent them controls the request's channel. Merged into the details as they are now (another
   * confirmed submission may have added to them since).
   */
  async function amend(trx: Tx, requestId: string, details: RequestDetails): Promise<void> {
    const row = await lockRow(trx, requestId);
    if (!row) throw requestsError('requests/not-found', 'no such request');
    const right = requestRightSchema.parse(row.request_right);
    const merged = mergeDuplicateDetails(right, parseJson(row.details) as RequestDetails, details);
    if (merged) {
      await trx
        .updateTable('privacykit_requests_requests')
        .set({ details: JSON.stringify(merged), updated_at: now().toISOString() })
        .where('tenant', '=', tenant)
        .where('id', '=', requestId)
        .execute();
    }
    await audit(trx, {
      requestId,
      by: 'subject',
      action: 'details-amended',
      data: { details, merged: merged !== undefined },
    });
  }

  async function moveToVerified(trx: Tx, requestId: string, by: string, reason: string): Promise<void> {
    const row = await lockRow(trx, requestId);
    if (!row) throw requestsError('requests/not-found', 'no such request');
    const from = requestStatusSchema.parse(row.status);
    assertTransition(from, 'verified');
    let pausedDays = 0;
    if (Number(row.pause_while_verifying) === 1) {
      // Paused from the day the identity was first asked for (the first code sent), not from
      // receipt: a letter entered weeks after it arrived must not gain those weeks.
      const first = await trx
        .selectFrom('privacykit_requests_challenges')
        .select((eb) => eb.fn.min('created_at').as('at'))
        .where('tenant', '=', tenant)
        .where('request_id', '=', requestId)
        .executeTakeFirst();
      const asked = first?.at ? civilDateIn(new Date(String(first.at)), zone) : row.received_date;
      const from = asked > row.received_date ? asked : row.received_date;
      pausedDays = Math.max(0, calendarDaysBetween(from, today()));
    }
    const { effectiveDeadline } = deadlines(row.received_date, Number(row.extension_months), pausedDays);
    const updated = await trx
      .updateTable('privacykit_requests_requests')
      .set({
        status: 'verified',
        paused_days: pausedDays,
        effective_deadline: effectiveDeadline,
        updated_at: now().toISOString(),
      })
      .where('tenant', '=', tenant)
      .where('id', '=', requestId)
      .where('status', '=', from)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) !== 1) {
      throw requestsError('requests/illegal-transition', 'the request changed meanwhile');
    }
    await audit(trx, {
      requestId,
      by,
      action: 'transition',
      from,
      to: 'verified',
      reason,
      data: pausedDays > 0 ? { pausedDays, effectiveDeadline } : null,
    });
  }

  async function extend(requestId: string, raw: ExtendInput): Promise<RequestRecord> {
    objectArgument(raw, 'extend');
    const reasonsGiven = (raw as { reasons?: unknown }).reasons;
    if (
      !Array.isArray(reasonsGiven) ||
      reasonsGiven.filter((reason) => typeof reason === 'string' && reason.trim().length > 0).length === 0
    ) {
      throw requestsError(
        'requests/extension-reasons-required',
        'an extension must give the subject its reasons (Art 12(3))',
      );
    }
    const parsed = extendInputSchema.safeParse(raw);
    if (!parsed.success) invalid(parsed.error, 'extension');
    const input = parsed.data;
    const reasons = input.reasons.map((reason) => reason.trim()).filter((reason) => reason.length > 0);
    const record = await writeTransaction(db, async (trx) => {
      const row = await lockRow(trx, requestId);
      if (!row) throw requestsError('requests/not-found', 'no such request');
      refuseRedacted(row);
      const status = requestStatusSchema.parse(row.status);
      if (isFinalStatus(status)) {
        throw requestsError('requests/illegal-transition', `a ${status} request cannot be extended`);
      }
      const paused = Number(row.paused_days);
      const { firstMonthEnds } = deadlines(row.received_date, 0, paused);
      if (today() > firstMonthEnds) {
        throw requestsError(
          'requests/extension-too-late',
          `the first month ended on ${firstMonthEnds}: an extension must be decided within it (Art 12(3))`,
        );
      }
      const total = Number(row.extension_months) + input.months;
      if (total > 2) {
        throw requestsError('requests/extension-limit', 'at most two further months in total (Art 12(3))');
      }
      const { extendedDeadline, effectiveDeadline } = deadlines(row.received_date, total, paused);
      const allReasons = [...((parseJson(row.extension_reasons) as string[] | null) ?? []), ...reasons];
      await trx
        .updateTable('privacykit_requests_requests')
        .set({
          extension_months: total,
          extension_reasons: JSON.stringify(allReasons),
          extended_deadline: extendedDeadline,
          effective_deadline: effectiveDeadline,
          updated_at: now().toISOString(),
        })
        .where('tenant', '=', tenant)
        .where('id', '=', requestId)
        .execute();
      await audit(trx, {
        requestId,
        by: input.by,
        action: 'extended',
        reason: reasons.join('; '),
        data: { months: input.months, totalMonths: total, effectiveDeadline },
      });
      return load(trx, requestId);
    });
    const channels = await noticeChannels(requestId);
    await deliverAndAudit(
      requestId,
      channels.map((to) => ({
        to,
        subject: `Your privacy request: more time needed`,
        text: [
          `${policy.controller.name} needs more time to answer your ${record.right} request.`,
          `New deadline: ${record.effectiveDeadline}.`,
          '',
          'Reasons:',
          ...record.extension.reasons.map((reason) => `- ${reason}`),
        ].join('\n'),
      })),
      'extension-notice',
    );
    return record;
  }

  async function checkDirectiveExecution(trx: Tx, row: RequestRow): Promise<void> {
    const details = parseJson(row.details) as PostMortemDetails;
    if (details.action !== 'execute') return;
    if (!details.proofOfDeath || (details.requester === 'heir' && !details.proofOfStanding)) {
      throw requestsError('requests/proof-required', 'proof is missing');
    }
    if (!details.directiveId) return;
    const directive = await trx
      .selectFrom('privacykit_requests_directives')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', details.directiveId)
      .executeTakeFirst();
    const [deceasedHash] = await hashesOf([details.deceased]);
    const subjects = directive ? ((parseJson(directive.subject_hashes) as string[] | null) ?? []) : [];
    if (!directive || !subjects.includes(deceasedHash as string)) {
      throw requestsError('requests/directive-not-found', 'no such directive for this person');
    }
    if (directive.status !== 'active') {
      throw requestsError(
        'requests/directive-revoked',
        'the directive was revoked: it must not be carried out',
      );
    }
    if (details.requester === 'executor') {
      const identities = await identitiesOf(trx, [row.id]);
      const verifiedHashes = identities
        .filter((identity) => identity.verified_at !== null)
        .map((identity) => identity.lookup_hash);
      if (!directive.executor_hash || !verifiedHashes.includes(directive.executor_hash)) {
        throw requestsError(
          'requests/not-executor',
          'the requester is not the executor the directive designates: act as an heir, with proof',
        );
      }
    }
  }

  async function completePostMortem(trx: Tx, row: RequestRow, at: string): Promise<void> {
    const details = parseJson(row.details) as PostMortemDetails;
    const identities = await identitiesOf(trx, [row.id]);
    const verified = identities.filter((identity) => identity.verified_at !== null);
    switch (details.action) {
      case 'give': {
        const key = await secret();
        const executorHash = details.executor
          ? identityLookupHash(
              key,
              'email',
              normaliseRequestIdentity({ kind: 'email', value: details.executor.email }),
            )
          : null;
        await trx
          .insertInto('privacykit_requests_directives')
          .values({
            id: row.id,
            tenant,
            request_id: row.id,
            kind: details.kind,
            instructions: details.instructions,
            executor: details.executor ? JSON.stringify(details.executor) : null,
            executor_hash: executorHash,
            subject_hashes: JSON.stringify(verified.map((identity) => identity.lookup_hash)),
            status: 'active',
            created_at: at,
            revoked_at: null,
            revoked_by_request: null,
          })
          .execute();
        return;
      }
      case 'revoke': {
        const directive = await trx
          .selectFrom('privacykit_requests_directives')
          .selectAll()
          .where('tenant', '=', tenant)
          .where('id', '=', details.directiveId)
          .executeTakeFirst();
        const subjects = directive ? ((parseJson(directive.subject_hashes) as string[] | null) ?? []) : [];
        // Only the person who gave it may revoke it: object-level check on the verified identities.
        if (!directive || !verified.some((identity) => subjects.includes(identity.lookup_hash))) {
          throw requestsError('requests/directive-not-found', 'no such directive for this person');
        }
        await trx
          .updateTable('privacykit_requests_directives')
          .set({ status: 'revoked', revoked_at: at, revoked_by_request: row.id })
          .where('tenant', '=', tenant)
          .where('id', '=', details.directiveId)
          .execute();
        return;
      }
      case 'execute':
        await checkDirectiveExecution(trx, row);
        return;
    }
  }

  async function transition(requestId: string, raw: TransitionInput): Promise<RequestRecord> {
    const parsed = transitionInputSchema.safeParse(raw);
    if (!parsed.success) invalid(parsed.error, 'transition');
    const input = parsed.data;
    const reason = input.reason && input.reason.length > 0 ? input.reason : null;
    const record = await writeTransaction(db, async (trx) => {
      const row = await lockRow(trx, requestId);
      if (!row) throw requestsError('requests/not-found', 'no such request');
      refuseRedacted(row);
      const from = requestStatusSchema.parse(row.status);
      assertTransition(from, input.to);
      const at = now().toISOString();
      if (input.to === 'verified') {
        const identities = await identitiesOf(trx, [requestId]);
        if (identities.some((identity) => identity.verified_at === null)) {
          throw requestsError(
            'requests/identity-unverified',
            'every identity of the request must be verified through its registered channel first',
          );
        }
        await moveToVerified(trx, requestId, input.by, reason ?? 'identities verified');
        return load(trx, requestId);
      }
      let outcome: RequestOutcome | null = null;
      switch (input.to) {
        case 'denied':
          if (!reason) {
            throw requestsError('requests/reason-required', 'a refusal must state its reasons (Art 12(4))');
          }
          outcome = { status: 'denied', at, reason, remedies: remediesFor(policy) };
          break;
        case 'completed':
          if (row.request_right === 'post-mortem-directives') await completePostMortem(trx, row, at);
          outcome = { status: 'completed', at, summary: reason };
          break;
        case 'cancelled':
          outcome = { status: 'cancelled', at, reason };
          break;
        case 'in-progress':
          if (row.request_right === 'post-mortem-directives') await checkDirectiveExecution(trx, row);
          break;
        case 'received':
        case 'identity-pending':
        case 'waiting-on-subject':
          break;
      }
      const updated = await trx
        .updateTable('privacykit_requests_requests')
        .set({
          status: input.to,
          ...(outcome ? { outcome: JSON.stringify(outcome) } : {}),
          ...(isFinalStatus(input.to) ? { closed_at: at } : {}),
          updated_at: at,
        })
        .where('tenant', '=', tenant)
        .where('id', '=', requestId)
        .where('status', '=', from)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1) {
        throw requestsError('requests/illegal-transition', 'the request changed meanwhile: reload it');
      }
      await audit(trx, { requestId, by: input.by, action: 'transition', from, to: input.to, reason });
      return load(trx, requestId);
    });
    if (record.outcome?.status === 'denied') {
      const outcome = record.outcome;
      const channels = await noticeChannels(requestId);
      await deliverAndAudit(
        requestId,
        channels.map((to) => ({
          to,
          subject: 'Your privacy request: our answer',
          text: [
            `${policy.controller.name} will not act on your ${record.right} request.`,
            '',
            `Reason: ${outcome.reason}`,
            '',
            'Your remedies:',
            describeRemedies(outcome.remedies),
          ].join('\n'),
        })),
        'denial-notice',
      );
    }
    return record;
  }

  async function assign(requestId: string, input: { assignee: string | null; by: string }) {
    objectArgument(input, 'assign');
    const by = actor.safeParse(input.by);
    if (!by.success) invalid(by.error, 'assignment');
    const assignee = input.assignee === null ? null : actor.safeParse(input.assignee);
    if (assignee && !assignee.success) invalid(assignee.error, 'assignment');
    return writeTransaction(db, async (trx) => {
      const row = await lockRow(trx, requestId);
      if (!row) throw requestsError('requests/not-found', 'no such request');
      refuseRedacted(row);
      await trx
        .updateTable('privacykit_requests_requests')
        .set({ assignee: assignee ? assignee.data : null, updated_at: now().toISOString() })
        .where('tenant', '=', tenant)
        .where('id', '=', requestId)
        .execute();
      await audit(trx, {
        requestId,
        by: by.data,
        action: 'assigned',
        data: { assignee: assignee ? assignee.data : null },
      });
      return load(trx, requestId);
    });
  }

  async function get(requestId: string): Promise<RequestRecord> {
    return load(db, requestId);
  }

  async function getForRequester(
    requestId: string,
    verifiedIdentity: RequestIdentity | readonly RequestIdentity[],
  ): Promise<RequestRecord> {
    const given = Array.isArray(verifiedIdentity)
      ? (verifiedIdentity as readonly RequestIdentity[])
      : [verifiedIdentity as RequestIdentity];
    const parsed = z.array(requestIdentitySchema).min(1).safeParse(given);
    const notFound = requestsError('requests/not-found', 'no such request');
    if (!parsed.success) throw notFound;
    const hashes = await hashesOf(parsed.data);
    const row =
      typeof requestId === 'string' && requestId.length <= 64 ? await loadRow(db, requestId) : undefined;
    if (row) {
      const identities = await identitiesOf(db, [row.id]);
      if (identities.some((identity) => hashes.includes(identity.lookup_hash))) {
        return toRecord(row, identities);
      }
    }
    // Same answer for "does not exist" and "not yours" (S05, hostile case 12), but logged.
    await audit(db, {
      requestId: typeof requestId === 'string' ? requestId : String(requestId),
      by: 'requester',
      action: 'access-refused',
      reason: row ? 'request belongs to another subject' : 'unknown request id',
    });
    throw notFound;
  }

  async function list(raw: ListFilter = {}): Promise<RequestRecord[]> {
    const parsed = listFilterSchema.safeParse(raw);
    if (!parsed.success) invalid(parsed.error, 'filter');
    const filter = parsed.data;
    let query = db.selectFrom('privacykit_requests_requests').selectAll().where('tenant', '=', tenant);
    if (filter.status) query = query.where('status', 'in', filter.status);
    if (filter.right) query = query.where('request_right', '=', filter.right);
    if (filter.overdue || filter.dueBefore !== undefined) {
      query = query.where('status', 'not in', [...finalStatuses]);
    }
    if (filter.overdue) query = query.where('effective_deadline', '<', today());
    if (filter.dueBefore !== undefined) {
      const before =
        typeof filter.dueBefore === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(filter.dueBefore)
          ? addCalendarDays(filter.dueBefore, 0)
          : civilDateIn(filter.dueBefore, zone);
      query = query.where('effective_deadline', '<', before);
    }
    const rows = await query
      .orderBy('effective_deadline')
      .orderBy('id')
      .limit(filter.limit ?? 1000)
      .execute();
    return records(rows);
  }

  async function dueSoon(input: { days?: number } = {}): Promise<RequestRecord[]> {
    objectArgument(input, 'dueSoon');
    const days = input.days ?? 7;
    if (!Number.isInteger(days) || days < 0)
      throw requestsError('requests/invalid-input', 'days must be ≥ 0');
    const rows = await db
      .selectFrom('privacykit_requests_requests')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('status', 'not in', [...finalStatuses])
      .where('effective_deadline', '>=', today())
      .where('effective_deadline', '<=', addCalendarDays(today(), days))
      .orderBy('effective_deadline')
      .orderBy('id')
      .execute();
    return records(rows);
  }

  async function auditOf(requestIds: readonly string[]): Promise<RequestAuditEntry[]> {
    if (requestIds.length === 0) return [];
    const rows = await db
      .selectFrom('privacykit_requests_audit')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('request_id', 'in', requestIds)
      .orderBy('seq')
      .execute();
    return rows.map((row) => ({
      seq: Number(row.seq),
      requestId: row.request_id,
      at: row.occurred_at,
      by: row.actor,
      action: row.action,
      from: row.from_status as RequestStatus | null,
      to: row.to_status as RequestStatus | null,
      reason: row.reason,
      data: parseJson(row.data) as Record<string, unknown> | null,
    }));
  }

  async function deliveryChannel(requestId: string): Promise<string> {
    const record = await load(db, requestId);
    if (record.redactedAt !== null) throw redactedError();
    const identities = await identitiesOf(db, [requestId]);
    const verified = identities.find((identity) => identity.verified_at !== null && identity.channel);
    if (!verified?.channel || record.status === 'identity-pending' || record.status === 'received') {
      throw requestsError(
        'requests/identity-unverified',
        'the request has no verified channel to deliver to',
      );
    }
    return verified.channel;
  }

  async function requestIdsFor(
    identities: readonly RequestIdentity[],
  ): Promise<{ ids: string[]; hashes: string[] }> {
    const parsed = z.array(requestIdentitySchema).min(1).safeParse(identities);
    if (!parsed.success) invalid(parsed.error, 'identities');
    const hashes = await hashesOf(parsed.data);
    const rows = await db
      .selectFrom('privacykit_requests_identities')
      .select('request_id')
      .distinct()
      .where('tenant', '=', tenant)
      .where('lookup_hash', 'in', hashes)
      .execute();
    return { ids: rows.map((row) => row.request_id), hashes };
  }

  async function historyFor(identities: readonly RequestIdentity[]): Promise<RequestHistory> {
    const { ids, hashes } = await requestIdsFor(identities);
    if (ids.length === 0) return { requests: [], audit: [] };
    const rows = await db
      .selectFrom('privacykit_requests_requests')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', 'in', ids)
      .orderBy('received_at')
      .orderBy('id')
      .execute();
    const identityRows = await identitiesOf(db, ids);
    const requests = rows.map((row) => {
      // Only the subject's own identities: a request may also name someone else's.
      const own = identityRows.filter((identity) => hashes.includes(identity.lookup_hash));
      const { verificationLocked: _locked, ...record } = toRecord(row, own);
      return record;
    });
    return { requests, audit: await auditOf(ids) };
  }

  async function directivesFor(identities: readonly RequestIdentity[]): Promise<PostMortemDirective[]> {
    const parsed = z.array(requestIdentitySchema).min(1).safeParse(identities);
    if (!parsed.success) invalid(parsed.error, 'identities');
    const hashes = await hashesOf(parsed.data);
    const rows = await db
      .selectFrom('privacykit_requests_directives')
      .selectAll()
      .where('tenant', '=', tenant)
      .orderBy('created_at')
      .execute();
    return rows
      .filter((row) =>
        ((parseJson(row.subject_hashes) as string[] | null) ?? []).some((h) => hashes.includes(h)),
      )
      .map((row) => ({
        id: row.id,
        requestId: row.request_id,
        kind: row.kind as 'general' | 'particular',
        instructions: row.instructions,
        executor: parseJson(row.executor) as { name: string; email: string } | null,
        status: row.status as 'active' | 'revoked',
        createdAt: row.created_at,
        revokedAt: row.revoked_at,
      }));
  }

  async function whenIdle(): Promise<void> {
    while (pending.size > 0) await Promise.all([...pending]);
  }

  return {
    submit: (input) => thenPrune(submit(input)),
    verify: (input) => thenPrune(verify(input)),
    resendChallenge: (requestId) => thenPrune(resendChallenge(requestId)),
    extend,
    transition,
    assign,
    get,
    getForRequester,
    list,
    dueSoon,
    audit: (requestId) => auditOf([requestId]),
    deliveryChannel,
    historyFor,
    directivesFor,
    pruneThrottles,
    redact,
    whenIdle,
  };
}
