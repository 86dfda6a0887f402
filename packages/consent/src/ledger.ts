import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import {
  PrivacyKitError,
  canonicalJson,
  consentPurposes,
  newId,
  randomToken,
  systemClock,
  zodIssues,
} from '@privacykit/core';
import type { Clock, JsonValue, Policy, Purpose } from '@privacykit/core';
import { sha256Hex } from '@privacykit/core/crypto';
import {
  engineOf,
  isPlainInsert,
  openWriterThread,
  sqliteConnectionOf,
  truncateSqliteLog,
  tryBeginImmediate,
  writeStatement,
  writeTransaction,
} from '@privacykit/core/db';
import type { SqliteConnection, SqliteStatement, WriterThread } from '@privacykit/core/db';
import type { ExpressionBuilder, InsertQueryBuilder, Kysely } from 'kysely';
import {
  JURISDICTION_PATTERN,
  consentDecisionSchema,
  consentMethodSchema,
  nonAffirmativeMethods,
  wellFormedText,
} from './decision.js';
import type {
  ConsentDecision,
  ConsentEvidence,
  ConsentSource,
  ConsentState,
  DecisionState,
  NonAffirmativeMethod,
} from './decision.js';
import type { ConsentErrorCode } from './errors.js';
import { seal, truncateIp, unseal } from './evidence.js';
import { decisionEntryJson, isCanonicalEntry } from './entry-json.js';
import type { DecisionEntry } from './entry-json.js';
import { parseGpcHeader } from './gpc.js';
import { createIdMinter } from './ids.js';
import { createHmacSha256Hex } from './pseudonym.js';
import { pooledRandomBytes } from './random-pool.js';
import { createReconciler, readEntryPage } from './reconcile.js';
import type { Discrepancy, EntryRow } from './reconcile.js';
import { createLeanDecisionParser } from './lean-decision.js';
import {
  appendLeaf,
  pushLeaf,
  buildConsistencyProof,
  buildInclusionProof,
  emptyFrontier,
  frontierRoot,
  leafHash,
  nodeKey,
} from './merkle.js';
import type { Frontier, PerfectNodes } from './merkle.js';
import {
  noticeControllerOf,
  noticeControllerSchema,
  noticeIdOf,
  purposeNoticeContent,
  purposeNoticeHash,
  storedNoticeContentSchema,
} from './notice-content.js';
import type { StoredNoticeContent } from './notice-content.js';
import { buildReceipt, consentTypeOf } from './receipt.js';
import { buildConsentRecord } from './consent-record.js';
import type { ConsentRecord, ConsentRecordEvent, DpvConsentStatus } from './consent-record.js';
import type { ConsentReceipt, ReceiptNotice, ReceiptState } from './receipt.js';
import { loadSigningKeys, signTreeHead, verifyTreeHead } from './signing.js';
import type { LedgerKeys, SignedTreeHead, SigningKeys } from './signing.js';
import { parametersOf, prepare, prepareRows, run, runRows } from './prepared.js';
import { SEQ_SPAN, frontierSubtrees } from './migrations.js';
import { T, insertIgnore, stateColumns, upsertStates, upsertStatesQuery } from './store.js';
import type { HeadRow, StateRow } from './store.js';
import { addPeriod } from './validity.js';
import { keyStoreDatabase } from './key-store.js';
import type { EvidenceKeyStore } from './key-store.js';

/** Purpose tags a `Sec-GPC: 1` signal refuses (GPC spec; Cal. Code Regs. tit. 11 §7025). */
export const GPC_TAGS = ['sale', 'sharing', 'cross-context-advertising'] as const;

export interface ConsentLedgerOptions {
  /** The host database (SQLite, PostgreSQL or MySQL/MariaDB) with `consentMigrations` applied. */
  db: Kysely<any>;
  /** The controller's policy: consent purposes, notice content and the tenant come from it. */
  policy: Policy;
  clock?: Clock;
  /**
   * Ed25519 key pair signing tree heads and receipts. When absent, one is generated on first
   * use and stored in the head row — convenient for development, but a key kept beside the data
   * does not protect against someone who can write the database: pass your own in production.
   */
  keys?: LedgerKeys;
  /**
   * Secret keying the subject pseudonyms (HMAC-SHA-256). When absent, one is generated and
   * stored in the head row. Keep it outside the database so a dump cannot be re-identified.
   */
  secret?: string;
  /** How long a grant stays valid before the subject is asked again (ISO 8601 period, default `P6M`); `false` = no expiry. */
  validity?: string | false;
  /**
   * Art 8 age of digital consent, 13 to 16: one age (default 16), or a table by the decision's
   * `jurisdiction` (ISO 3166 alpha-2, a subdivision such as `DE-BY` falls back to `DE`) with an
   * optional `default` — e.g. `{ default: 16, BE: 13, FR: 15, IT: 14 }` (each Member State
   * chooses, Art 8(1); check the current national law).
   */
  ageOfConsent?: number | Readonly<Record<string, number>>;
  /** Evidence kept with a decision: IP `truncate` (default, /24 and /48), `full` or `none`; user agent off by default. */
  evidence?: { ip?: 'truncate' | 'full' | 'none'; userAgent?: boolean };
  /** Jurisdiction recorded when a decision names none (default `EU`). */
  jurisdiction?: string;
  /** How the subject withdraws, as printed on receipts (default: the policy's web rights channel). */
  withdrawalMethod?: string;
  /**
   * When the ledger signs its tree head by itself: after `appends` new entries or `milliseconds`
   * since the last signed head, whichever comes first (default 1,000 entries / 5 s). `treeHead()`
   * always signs. `{ appends: 1 }` signs after every append, at the cost of one Ed25519 signature each.
   */
  signEvery?: { appends?: number; milliseconds?: number };
  /**
   * Where the evidence keys live (see {@link EvidenceKeyStore}; `createDatabaseKeyStore` keeps
   * them in a database of their own). Absent: in the subjects' state rows, beside the sealed
   * evidence — a backup taken before a shredding then still opens it. Keys already in state rows
   * keep being used for their pairs; new pairs get theirs from the store.
   */
  evidenceKeys?: EvidenceKeyStore;
}

/** A ledger event as `record()` and friends return it. */
export interface RecordedDecision {
  eventId: string;
  seq: number;
  purpose: string;
  state: ConsentState;
  /** DPV "renewed": a grant following a grant. */
  renewal: boolean;
  at: string;
  expiresAt?: string;
  notice: { id: string; version: string; hash: string; language: string };
  /**
   * On `withdraw()`: the purpose's recipients outside the controller (processors, other
   * controllers) as the policy and the notice the withdrawal answered declare them (a purpose
   * that left the policy keeps its stored notice's) — the ones to tell to stop processing for it
   * (Art 7(3), C06). The ledger records the withdrawal; telling them is the caller's to do.
   */
  notify?: WithdrawnNotify[];
}

/** A recipient to tell of a withdrawal. */
export interface WithdrawnNotify {
  id: string;
  name: string;
  kind: string;
}

/** Where one subject stands on one consent purpose. */
export interface ConsentStatus {
  purpose: string;
  state: ConsentState | 'none';
  /**
   * Whether this decision allows processing now, exactly as `mayProcess()` answers: granted
   * (given or renewed, DPV), unexpired, and on the purpose's current notice. A grant whose
   * notice changed is `state: 'granted'` with `reconsentRequired` and not valid.
   */
  valid: boolean;
  /** The purpose's notice changed since the decision: ask again (Art 5(1)(b)). */
  reconsentRequired: boolean;
  renewal: boolean;
  decidedAt?: string;
  expiresAt?: string;
  eventId?: string;
  source?: string;
  noticeVersion?: string;
  currentNoticeVersion: string;
  /**
   * A GPC signal arrived while this grant was in force and was not applied: the subject gave the
   * grant after the signal had been recorded as a refusal of this purpose (see `applyGpc`).
   */
  gpcConflict: boolean;
  /**
   * The status as the W3C Data Privacy Vocabulary names it (C10), for exports and records of
   * processing; only `dpv:ConsentGiven` and `dpv:RenewedConsentGiven` allow processing (`valid`).
   */
  dpvStatus: DpvConsentStatus;
}

/**
 * DPV consent status concepts (https://w3id.org/dpv#ConsentStatus) a subject × purpose can be
 * in: `dpv:ConsentUnknown` (never decided), `dpv:ConsentGiven`, `dpv:RenewedConsentGiven`,
 * `dpv:ConsentRefused`, `dpv:ConsentWithdrawn`, `dpv:ConsentExpired` (its validity elapsed),
 * `dpv:ConsentInvalidated` (a grant whose notice changed since: ask again).
 */
export type { DpvConsentStatus };

export interface CurrentConsent {
  /** The subject's pseudonym in the ledger. */
  subjectKey: string;
  purposes: Record<string, ConsentStatus>;
}

/** One ledger event about a subject, for subject-access exports (Art 15) — plain JSON. */
export interface ConsentHistoryEntry {
  eventId: string;
  seq: number;
  kind: 'decision' | 'expiry' | 'gpc-conflict' | 'gpc-signal' | 'subject-shredded';
  purpose?: string;
  state?: ConsentState;
  renewal?: boolean;
  notice?: { id: string; version: string; hash: string; language: string };
  source?: string;
  method?: string;
  jurisdiction?: string;
  at: string;
  expiresAt?: string;
  /** A grant given as explicit consent (`explicit: true`, Art 9(2)(a)). */
  explicit?: true;
  /** Decrypted evidence; `'unavailable'` once the subject's key was destroyed; absent when none was kept. */
  evidence?:
    | {
        ip?: string;
        userAgent?: string;
        age?: number;
        parentalAuthorisation?: { method: string; reference?: string };
      }
    | 'unavailable';
}

export interface VerifyResult {
  ok: boolean;
  /** Entries checked. */
  size: number;
  /** The first sequence number found wrong (or the start of the range a head does not match). */
  firstBadSeq?: number;
  reason?: string;
  /** Signed heads checked along the way. */
  signedHeads: number;
}

export interface InclusionProof {
  seq: number;
  treeSize: number;
  leafHash: string;
  proof: string[];
}

export interface ConsistencyProof {
  oldSize: number;
  newSize: number;
  proof: string[];
}

/** One purpose's refusals among its current decisions (see `conditionOfServiceSignals`). */
export interface ConditionOfServiceSignal {
  purpose: string;
  /** Current decisions collected through a banner, form or API. */
  decisions: number;
  /** Of those, refusals and withdrawals. */
  refusals: number;
  /** At least `minDecisions` decisions and not one refusal. */
  suspected: boolean;
}

export interface StatsRow {
  purpose: string;
  noticeVersion: string;
  state: ConsentState;
  count: number;
  /** This notice version is no longer the purpose's current one. */
  reconsentRequired: boolean;
}

export interface GpcOutcome {
  /** Whether the header carried a valid `Sec-GPC: 1`. */
  signal: boolean;
  /** Refusals recorded with source `gpc` (including those over a grant, see `conflicts`). */
  refused: RecordedDecision[];
  /**
   * Purposes where the signal met a grant in force (Cal. Code Regs. tit. 11 §7025(c)(3)). You
   * may tell the subject and offer them the choice to consent again.
   * - `signal-applied`: the grant predates any GPC refusal of the purpose, so the signal was
   *   processed as a valid opt-out: a refusal was recorded over it (`refusedEventId`, also in
   *   `refused`).
   * - `grant-kept`: the subject granted after the signal had been recorded as a refusal of
   *   this purpose — their own later choice, kept; a `gpc-conflict` event is logged once per
   *   grant and `current().purposes[p].gpcConflict` is true. Reported on every signal, never
   *   overridden silently (`{ override: true }` applies the signal anyway).
   */
  conflicts: {
    purpose: string;
    grantedEventId: string;
    grantedAt: string;
    resolution: 'signal-applied' | 'grant-kept';
    refusedEventId?: string;
  }[];
  /**
   * Purposes already refused or withdrawn: their state stays as it is. Over a refusal or
   * withdrawal made another way (a banner "reject"), the first signal is logged as a
   * `gpc-signal` event, so that a grant given after it counts as given after the signal;
   * further signals write nothing.
   */
  unchanged: string[];
  /**
   * Purposes tagged `sale`, `sharing` or `cross-context-advertising` that do not rest on consent
   * (legitimate interests, say): the ledger records nothing for them. The signal is an objection
   * by automated means (Art 21(5); and an opt-out of sale/sharing under §7025): route these ids
   * to your objection handling.
   */
  objections: string[];
}

export interface PublishResult {
  /** Purposes whose notice content changed: existing grants now need re-consent. */
  changed: string[];
  /** Purposes published for the first time. */
  added: string[];
  unchanged: string[];
  /**
   * Purposes with published notices that this policy no longer declares on consent (removed,
   * or moved to another legal basis): nothing new is recorded for them, but their standing
   * grants can still be withdrawn.
   */
  retired: string[];
}

export interface ConsentLedger {
  readonly tenant: string;
  /** Records one decision about one purpose (Art 7(1)). Throws, writing nothing, when it is not valid consent. */
  record(decision: ConsentDecision): Promise<RecordedDecision>;
  /** Withdraws consent, effective immediately for the future (Art 7(3)). */
  withdraw(
    subjectId: string,
    purposeId: string,
    options?: { source?: ConsentSource; method?: string; jurisdiction?: string; evidence?: ConsentEvidence },
  ): Promise<RecordedDecision>;
  current(subjectId: string, options?: { at?: Date }): Promise<CurrentConsent>;
  /** True when the subject holds a valid grant for the purpose now. */
  mayProcess(subjectId: string, purposeId: string, options?: { at?: Date }): Promise<boolean>;
  history(subjectId: string): Promise<ConsentHistoryEntry[]>;
  /**
   * The subject's consent records (ISO/IEC TS 27560 shaped, DPV statuses): one per purpose the
   * subject decided on, with its status (validity judged at `at`, default now, as `current()`
   * does), the notice in force as stored, and every event in ledger order — for subject-access
   * exports and for moving consent to another system. A record whose notice text is not stored,
   * no longer matches the hash the decision recorded (`verify()` names the damage) or cannot be
   * read says so in `noticeUnavailable` and still gives its status and events: unlike
   * `receipt()`, which then throws `consent/notice-unavailable`, an access request is answered.
   */
  consentRecords(subjectId: string, options?: { at?: Date }): Promise<ConsentRecord[]>;
  /**
   * Checks the whole ledger. Tree heads must be signed by `publicKey`, by one of `publicKeys`,
   * or by default by the ledger's key or one of its `keys.previousPublicKeys`.
   */
  verify(options?: {
    head?: SignedTreeHead;
    publicKey?: KeyObject | string;
    publicKeys?: readonly (KeyObject | string)[];
  }): Promise<VerifyResult>;
  receipt(eventId: string): Promise<ConsentReceipt>;
  /** Signs and stores the current tree head; hand it to an outside party to anchor the log. */
  treeHead(): Promise<SignedTreeHead>;
  inclusionProof(seq: number, treeSize?: number): Promise<InclusionProof>;
  consistencyProof(oldSize: number, newSize?: number): Promise<ConsistencyProof>;
  /** Subject ids holding a valid grant for the purpose: one indexed query, read page by page. */
  subjectsWithConsent(
    purposeId: string,
    options?: { at?: Date; includeReconsentRequired?: boolean; pageSize?: number },
  ): AsyncIterable<string>;
  /**
   * The same set as `subjectsWithConsent`, a page of ids at a time (default 10,000): one
   * key-ordered read of the state table per page, for senders that work in batches.
   */
  subjectPagesWithConsent(
    purposeId: string,
    options?: { at?: Date; includeReconsentRequired?: boolean; pageSize?: number },
  ): AsyncIterable<string[]>;
  /**
   * Bulk import in batched transactions; all decisions are validated before anything is written.
   * `writerThread`: on a SQLite file `openDatabase` opened, run the batches' SQL on a second
   * connection on a worker thread, while this thread prepares the next entries (default: for
   * imports of 10,000 decisions or more). Transactions, locking and results are the same.
   */
  import(
    decisions: readonly ConsentDecision[],
    options?: { batchSize?: number; writerThread?: boolean },
  ): Promise<{ imported: number }>;
  /** Publishes the policy's notices; purposes whose content changed need re-consent (Art 5(1)(b)). */
  publishNotice(policy: Policy, options?: { version?: string }): Promise<PublishResult>;
  /** Writes `expired` events for grants past their validity. */
  expireDue(options?: { batchSize?: number }): Promise<number>;
  /**
   * Applies a Global Privacy Control header (G02, G03; Cal. Code Regs. tit. 11 §7025; Art
   * 21(5)): a valid `Sec-GPC: 1` refuses each consent purpose tagged `sale`, `sharing` or
   * `cross-context-advertising` with source `gpc`, over an earlier grant too; a grant given
   * after such a refusal is kept and reported. See `GpcOutcome`. No header is never consent.
   * `override: true` applies the signal over those later grants as well.
   */
  applyGpc(
    subjectId: string,
    header: string | readonly string[] | undefined,
    options?: { jurisdiction?: string; evidence?: ConsentEvidence; override?: boolean },
  ): Promise<GpcOutcome>;
  /** Crypto-shreds a subject (Art 17): destroys its key, erases its state, logs the shredding. */
  shredSubject(subjectId: string): Promise<{ eventId: string; seq: number }>;
  stats(options?: { at?: Date }): Promise<StatsRow[]>;
  /**
   * C11, Art 7(4): purposes no one refuses. Over at least `minDecisions` current decisions
   * (default 100) collected through a banner, form or API, a purpose nobody refused or withdrew
   * suggests refusing was not possible or cost the service (a cookie wall, "accept to
   * continue", a refuse button hidden a layer down) — look at how it is asked.
   */
  conditionOfServiceSignals(options?: { minDecisions?: number }): Promise<ConditionOfServiceSignal[]>;
  /** The public key (SPKI PEM) that checks receipts and tree heads. */
  publicKey(): Promise<string>;
  /** The subject's pseudonym (HMAC) in this ledger. */
  subjectKey(subjectId: string): Promise<string>;
}

interface NoticeVersion {
  version: string;
  hash: string;
  language: string;
}

interface NoticeState {
  current: NoticeVersion;
  versions: Map<string, NoticeVersion>;
}

type HeadUpdateSlot =
  | 'indexed_size'
  | 'tenant'
  | 'size'
  | 'frontier'
  | 'signed_size'
  | 'signed_at'
  | 'updated_at';

/** The head an append transaction works from, and where it leaves it. */
interface AppendContext {
  trx: Kysely<any>;
  head: HeadRow;
  frontier: Frontier;
  /** The head came from memory: the append must prove it is still the stored one. */
  remembered: boolean;
}

/** The remembered head was not the stored one any more: retry from a fresh read. */
class StaleHead extends Error {}

/**
 * Thrown inside a decision's transaction (rolling it back) when the evidence key taken from the
 * key store before it may be stale: the subject was shredded meanwhile, or the state-row key seen
 * then is gone. The write starts again.
 */
class KeyRetry extends Error {}
const KEY_TRIES = 5;
/** Keys taken from the evidence key store (`subjectKey \0 purpose` → key), and the ledger's size before. */
type StoreKeys = { keys: Map<string, Buffer>; mark: number };

/** Attempts of an append transaction the engine keeps rolling back over a deadlock. */
const CONFLICT_TRIES = 8;

/** A deadlock or serialisation failure: the engine rolled the whole transaction back. */
function isRetryableConflict(error: unknown): boolean {
  const { code, errno } = (error ?? {}) as { code?: unknown; errno?: unknown };
  return (
    code === '40P01' || // PostgreSQL deadlock_detected
    code === '40001' || // PostgreSQL serialization_failure
    code === 'ER_LOCK_DEADLOCK' ||
    errno === 1213
  );
}

interface Pending {
  eventId: string;
  kind: 'decision' | 'expiry' | 'gpc-conflict' | 'gpc-signal' | 'subject-shredded' | 'notice-published';
  subjectKey?: string;
  purpose?: string;
  entry: Record<string, JsonValue>;
  /** Set for decision entries: serialised by `decisionEntryJson` (the same bytes as canonicalJson). */
  decision?: DecisionEntry;
  sealed?: string;
}

interface Validated {
  subjectId: string;
  purpose: Purpose;
  state: DecisionState;
  source: ConsentSource;
  method: string;
  notice: NoticeVersion;
  jurisdiction: string;
  evidence?: ConsentEvidence;
  age?: number;
  parental?: { method: string; reference?: string };
  /** A grant given as explicit consent (Art 9(2)(a)). */
  explicit?: true;
  eventId?: string;
  at?: string;
}

type Err = PrivacyKitError<ConsentErrorCode>;
const fail = (code: ConsentErrorCode, message: string, details?: Record<string, unknown>): Err =>
  new PrivacyKitError<ConsentErrorCode>(code, message, details ? { details } : {});

/** Whether two Kysely instances reach one database: the same instance, or one SQLite file. */
function sameDatabase(a: Kysely<any> | undefined, b: Kysely<any>): boolean {
  if (!a) return false;
  if (a === b) return true;
  const fileOf = (db: Kysely<any>) =>
    (
      sqliteConnectionOf(db)
        ?.prepare(`select "file" from pragma_database_list where "name" = 'main'`)
        .get() as { file: string } | undefined
    )?.file;
  const one = fileOf(a);
  return Boolean(one) && one === fileOf(b);
}

/** The options argument of a method: absent or null means none; anything but an object is refused. */
function optionsOf<O extends object>(options: O | null | undefined): Partial<O> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw fail('consent/invalid-options', `options must be an object, got ${typeof options}`);
  }
  return options;
}

/** A count option (a batch or page size, a minimum): a positive safe integer, or `fallback` when absent. */
function countOption(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw fail('consent/invalid-options', `${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** A yes/no option: a boolean, or `false` when absent (a string such as "false" is refused, not truthy). */
function flagOption(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') {
    throw fail('consent/invalid-options', `${name} must be a boolean, got ${typeof value} ${String(value)}`);
  }
  return value;
}

/** An instant option (`at`): a valid Date, or `fallback()` when absent. */
function dateOption(value: unknown, fallback: () => Date): Date {
  if (value === undefined) return fallback();
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw fail('consent/invalid-options', 'at must be a valid Date');
  }
  return value;
}

const methodCodes: Record<NonAffirmativeMethod, ConsentErrorCode> = {
  default: 'consent/default-not-consent',
  'pre-ticked': 'consent/pre-ticked-not-consent',
  scroll: 'consent/scroll-not-consent',
  implied: 'consent/implied-not-consent',
  'continued-browsing': 'consent/continued-browsing-not-consent',
};

const consentMethods: ReadonlySet<string> = new Set(consentMethodSchema.options);

const dpvOfState: Record<'refused' | 'withdrawn' | 'expired', DpvConsentStatus> = {
  refused: 'dpv:ConsentRefused',
  withdrawn: 'dpv:ConsentWithdrawn',
  expired: 'dpv:ConsentExpired',
};
// A view over the same bytes, not a copy (appends turn every completed Merkle node into hex).
const hex = (buffer: Uint8Array) =>
  Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength).toString('hex');
/** A purpose's events with the subject's shreddings that came after its first one, in ledger order. */
function eventsWithShreddings(
  items: readonly ConsentHistoryEntry[],
  shreddings: readonly ConsentHistoryEntry[],
): ConsentHistoryEntry[] {
  const first = (items[0] as ConsentHistoryEntry).seq;
  const after = shreddings.filter((item) => item.seq > first);
  return after.length > 0 ? [...items, ...after].sort((a, b) => a.seq - b.seq) : [...items];
}

/** A history entry as an event of a consent record. */
function recordEventOf(item: ConsentHistoryEntry): ConsentRecordEvent {
  const event: ConsentRecordEvent = {
    eventId: item.eventId,
    seq: item.seq,
    time: item.at,
    type: item.kind as ConsentRecordEvent['type'],
  };
  if (item.kind === 'expiry') event.status = 'dpv:ConsentExpired';
  if (item.kind === 'decision' && item.state) {
    event.status =
      item.state === 'granted'
        ? item.renewal
          ? 'dpv:RenewedConsentGiven'
          : 'dpv:ConsentGiven'
        : dpvOfState[item.state as keyof typeof dpvOfState];
    if (item.state === 'granted') event.consentType = consentTypeOf(item.explicit === true);
  }
  if (item.source !== undefined) event.source = item.source;
  if (item.method !== undefined) event.method = item.method;
  if (item.jurisdiction !== undefined) event.jurisdiction = item.jurisdiction;
  if (item.notice) event.notice = { ...item.notice };
  if (item.expiresAt !== undefined) event.expiresAt = item.expiresAt;
  if (item.evidence !== undefined) event.evidence = item.evidence;
  return event;
}

/** Whether a stored notice's content (canonical JSON) states the explicit-consent condition. */
function noticeNeedsExplicitConsent(content: unknown): boolean {
  if (typeof content !== 'string' || !content.includes('explicit-consent')) return false;
  try {
    return (JSON.parse(content) as { specialCondition?: unknown }).specialCondition === 'explicit-consent';
  } catch {
    return false;
  }
}
const pairKey = (subjectKey: string, purpose: string) => `${subjectKey}\u0000${purpose}`;

/** Entries between two head checkpoints: the subject and event lookups trail by at most this. */
const INDEX_EVERY = 1000;

/**
 * Decisions an import batch turns into ledger rows at a time, within its one transaction: a
 * multiple of the rows a bulk INSERT takes (`bulkRows`), so no slice ends in rows inserted one
 * by one (500 left 100 of every slice to single-row INSERTs, a fifth of the ledger's rows).
 */
const IMPORT_SLICE = 400;
// How long shredSubject() waits for the evidence key store's destroy() under its transaction.
const KEY_STORE_DESTROY_MS = 10_000;
// import() runs its SQL on a writer thread from this many decisions (see its writerThread option).
const WRITER_THREAD_FROM = 10_000;

/** A unique or primary key violation, on any of the three engines. */
function isUniqueViolation(error: unknown): boolean {
  const { code, errno } = (error ?? {}) as { code?: unknown; errno?: unknown };
  return (
    code === '23505' ||
    errno === 1062 ||
    code === 'ER_DUP_ENTRY' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    code === 'SQLITE_CONSTRAINT_UNIQUE'
  );
}

/**
 * Creates the consent ledger of one tenant (`policy.tenant`): an append-only RFC 9162 Merkle
 * log of consent decisions with a current-state table beside it, signed tree heads and signed
 * receipts. Art 7(1): the controller can demonstrate every consent; Art 7(3): withdrawal is one
 * call; Art 8: the age of digital consent; Art 17: crypto-shredding keeps the log verifiable.
 */
export function createConsentLedger(options: ConsentLedgerOptions): ConsentLedger {
  const { db } = options;
  const clock = options.clock ?? systemClock;
  const engine = engineOf(db);
  let policy = options.policy;
  const tenant = policy.tenant;
  const validity = options.validity === undefined ? 'P6M' : options.validity;
  const ageTable: Readonly<Record<string, number>> =
    typeof options.ageOfConsent === 'object' && options.ageOfConsent !== null
      ? Object.fromEntries(
          Object.entries(options.ageOfConsent).map(([where, age]) => [
            where === 'default' ? where : where.toUpperCase(),
            age,
          ]),
        )
      : { default: options.ageOfConsent ?? 16 };
  for (const where of Object.keys(ageTable)) {
    if (where !== 'default' && !/^[A-Z]{2}(-[A-Z0-9]{1,3})?$/.test(where)) {
      throw fail(
        'consent/invalid-options',
        `ageOfConsent keys are "default" or ISO 3166 codes such as "DE" or "DE-BY", got "${where}"`,
      );
    }
  }
  const defaultAge = ageTable.default ?? 16;
  /** The age of digital consent where a decision is made (Art 8(1) lets each state choose). */
  const ageOfConsentIn = (jurisdiction: string): number => {
    const code = jurisdiction.toUpperCase();
    return ageTable[code] ?? ageTable[code.split('-')[0] as string] ?? defaultAge;
  };
  const ipMode = options.evidence?.ip ?? 'truncate';
  const keepUserAgent = options.evidence?.userAgent ?? false;
  if (
    options.jurisdiction !== undefined &&
    (typeof options.jurisdiction !== 'string' || !JURISDICTION_PATTERN.test(options.jurisdiction))
  ) {
    throw fail(
      'consent/invalid-options',
      'jurisdiction is a country code (EU, FR), optionally with a subdivision (US-CA)',
    );
  }
  const defaultJurisdiction = options.jurisdiction?.toUpperCase() ?? 'EU';
  const signAppends = options.signEvery?.appends ?? 1000;
  const signMs = options.signEvery?.milliseconds ?? 5000;
  // NaN (`Number(process.env.UNSET)`) or text compared false for ever: no head was ever signed.
  if (!Number.isSafeInteger(signAppends) || signAppends < 1) {
    throw fail(
      'consent/invalid-options',
      `signEvery.appends is a whole number from 1, got ${String(signAppends)}`,
    );
  }
  if (typeof signMs !== 'number' || !(signMs > 0) || !Number.isFinite(signMs)) {
    throw fail(
      'consent/invalid-options',
      `signEvery.milliseconds is a positive number, got ${String(signMs)}`,
    );
  }

  for (const [where, age] of Object.entries(ageTable)) {
    if (!Number.isInteger(age) || age < 13 || age > 16) {
      throw fail(
        'consent/invalid-options',
        `ageOfConsent must be 13 to 16 (Art 8(1)), got ${age}${where === 'default' ? '' : ` for ${where}`}`,
      );
    }
  }
  if (validity !== false) {
    let end: number;
    try {
      end = addPeriod(new Date(0), validity).getTime();
    } catch (cause) {
      throw new PrivacyKitError<ConsentErrorCode>(
        'consent/invalid-options',
        `invalid validity "${validity}"`,
        {
          cause,
        },
      );
    }
    // A zero period expired every grant as it was given; beyond a century, expiry instants left
    // ISO 8601's four-digit years (and compared wrongly as text) or the Date range (RangeError).
    if (!(end > 0) || end > addPeriod(new Date(0), 'P100Y').getTime()) {
      throw fail(
        'consent/invalid-options',
        `validity must be a period longer than zero and at most 100 years (P6M, P1Y…), or false for none; got "${validity}"`,
      );
    }
  }
  const configuredKeys = options.keys ? loadSigningKeys(options.keys) : undefined;
  const keyStore = options.evidenceKeys;
  // Whether the tenant's evidence keys live in a store (the head row's marker, 0005): an
  // instance without one then neither shreds nor seals (see `withoutStore`). Read at start-up
  // and with the notices, and again under the append lock by every write that would seal or shred.
  let storeMarked = false;
  if (
    keyStore !== undefined &&
    (typeof keyStore !== 'object' ||
      keyStore === null ||
      typeof keyStore.get !== 'function' ||
      typeof keyStore.obtain !== 'function' ||
      typeof keyStore.destroy !== 'function')
  ) {
    throw fail('consent/invalid-options', 'evidenceKeys is an EvidenceKeyStore: { get, obtain, destroy }');
  }
  if (keyStore && sameDatabase((keyStore as { [keyStoreDatabase]?: Kysely<any> })[keyStoreDatabase], db)) {
    // Beside the evidence the store protects nothing, and on SQLite's one connection a key
    // asked for inside an append would wait for that append forever.
    throw fail(
      'consent/invalid-options',
      "evidenceKeys: createDatabaseKeyStore needs a database of its own, not the ledger's",
    );
  }
  const withdrawalMethod =
    options.withdrawalMethod ??
    `Withdraw at any time, as easily as you consented: ${
      policy.rights.channels.find((channel) => channel.kind === 'web')?.value ?? policy.dpo.email
    }`;

  let secret = options.secret ?? '';
  let keys: SigningKeys = configuredKeys as SigningKeys;
  const notices = new Map<string, NoticeState>();
  // Hashes of stored notices whose purpose rests on explicit consent (Art 9(2)(a)): what the
  // subject was shown decides, whatever policy this instance runs.
  const explicitNotices = new Set<string>();
  // Refusals (subject × purpose × decision seq) over which a GPC signal is on record (`applyGpc`).
  const signalledRefusals = new Set<string>();
  let readyPromise: Promise<void> | undefined;

  const mintId = createIdMinter();
  const leanDecision = createLeanDecisionParser();

  let keyed = { secret, hmac: createHmacSha256Hex(secret) };
  const pseudonym = (subjectId: string) => {
    // Every way in by subject id (mayProcess, current, history, shredSubject, applyGpc, …) passes
    // here: an id a decision could not carry names nobody, and must not hash like another one.
    if (
      typeof subjectId !== 'string' ||
      subjectId.length === 0 ||
      subjectId.length > 255 ||
      !wellFormedText(subjectId)
    ) {
      throw fail(
        'consent/invalid-subject',
        'a subject id is a non-empty string of at most 255 characters, well-formed Unicode without NUL',
      );
    }
    if (keyed.secret !== secret) keyed = { secret, hmac: createHmacSha256Hex(secret) };
    return keyed.hmac(`${tenant}\u0000${subjectId}`);
  };

  // The statements of a single append, compiled once (see prepared.ts).
  const ledgerColumns = [
    'id',
    'tenant',
    'seq',
    'event_id',
    'kind',
    'subject_key',
    'purpose',
    'entry',
    'leaf_hash',
    'nodes',
    'sealed',
    'recorded_at',
  ] as const;

  const named = <K extends string>(columns: readonly K[], p: (name: K) => string) =>
    Object.fromEntries(columns.map((column) => [column, p(column)]));
  // The head row (locked on PostgreSQL/MySQL when appending) and the id of the tenant's last entry.
  const headQuery = (lock: boolean) =>
    prepare<'tenant' | 'low' | 'high'>((p) => {
      const query = db
        .selectFrom(T.head)
        .selectAll()
        .select((eb) =>
          eb
            .selectFrom(T.ledger)
            .select((inner) => inner.fn.max('id').as('m'))
            .where('id', '>=', p('low'))
            .where('id', '<', p('high'))
            .as('last_id'),
        )
        .where('tenant', '=', p('tenant'));
      return engine === 'sqlite' || !lock ? query : query.forUpdate();
    });
  const statements = {
    head: headQuery(true),
    headRead: headQuery(false),
    // PostgreSQL/MySQL: after the head row is locked, the last entry as committed now (a
    // subquery in the locking statement would read the snapshot taken before the lock wait).
    lockHeadOnly: prepare<'tenant'>((p) =>
      db.selectFrom(T.head).selectAll().where('tenant', '=', p('tenant')).forUpdate(),
    ),
    lastId: prepare<'low' | 'high'>((p) =>
      db
        .selectFrom(T.ledger)
        .select('id')
        .where('id', '>=', p('low'))
        .where('id', '<', p('high'))
        .orderBy('id', 'desc')
        .limit(1)
        .forUpdate(),
    ),
    entryExists: prepare<'id'>((p) => db.selectFrom(T.ledger).select('id').where('id', '=', p('id'))),
    state: prepare<'tenant' | 'subject' | 'purpose'>((p) =>
      db
        .selectFrom(T.state)
        .selectAll()
        .where('tenant', '=', p('tenant'))
        .where('subject_key', '=', p('subject'))
        .where('purpose', '=', p('purpose')),
    ),
    insertEntry: prepare<(typeof ledgerColumns)[number]>((p) =>
      db.insertInto(T.ledger).values(named(ledgerColumns, p)),
    ),
    // A live decision replaces the state row (ledger order); an imported one only a row decided
    // before it (see StateOrder).
    upsertState: prepare<(typeof stateColumns)[number]>((p) =>
      upsertStatesQuery(db, engine, [named(stateColumns, p) as Record<keyof StateRow, unknown>], 'ledger'),
    ),
    importState: prepare<(typeof stateColumns)[number]>((p) =>
      upsertStatesQuery(db, engine, [named(stateColumns, p) as Record<keyof StateRow, unknown>], 'decided'),
    ),
    // The subject's current state for the purpose and its evidence key.
    prior: prepare<'tenant' | 'subject' | 'purpose'>((p) =>
      db
        .selectFrom(T.state)
        .select(['state', 'expires_at', 'key_material'])
        .where('tenant', '=', p('tenant'))
        .where('purpose', '=', p('purpose'))
        .where('subject_key', '=', p('subject')),
    ),
    grant: prepare<'tenant' | 'subject' | 'purpose'>((p) =>
      db
        .selectFrom(T.state)
        .select(['state', 'expires_at', 'notice_hash'])
        .where('tenant', '=', p('tenant'))
        .where('purpose', '=', p('purpose'))
        .where('subject_key', '=', p('subject')),
    ),
    // The head row is a checkpoint, written when a tree head is signed or a batch indexed.
    checkpoint: prepare<HeadUpdateSlot>((p) =>
      db
        .updateTable(T.head)
        .set({
          size: p('size'),
          frontier: p('frontier'),
          signed_size: p('signed_size'),
          signed_at: p('signed_at'),
          indexed_size: p('indexed_size'),
          updated_at: p('updated_at'),
        })
        .where('tenant', '=', p('tenant')),
    ),
  };
  // IMPORT_SLICE is a multiple of it.
  const bulkRows = 200;
  function keepFirst(insert: InsertQueryBuilder<any, any, any>) {
    return engine === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.doNothing());
  }
  const stateRowsOf = (rows: string[][]) =>
    rows.map((row) => named(stateColumns, (c) => row[stateColumns.indexOf(c)] as string)) as Record<
      keyof StateRow,
      unknown
    >[];
  const bulk = {
    insertEntries: prepareRows(ledgerColumns.length, bulkRows, (rows) =>
      db
        .insertInto(T.ledger)
        .values(rows.map((row) => named(ledgerColumns, (c) => row[ledgerColumns.indexOf(c)] as string))),
    ),
    upsertStates: prepareRows(stateColumns.length, bulkRows, (rows) =>
      upsertStatesQuery(db, engine, stateRowsOf(rows), 'decided'),
    ),
    upsertStatesLive: prepareRows(stateColumns.length, bulkRows, (rows) =>
      upsertStatesQuery(db, engine, stateRowsOf(rows), 'ledger'),
    ),
  };

  /** Inserts rows in chunks of `bulkRows` through a statement compiled once; the rest one by one. */
  async function insertChunked(
    trx: Kysely<any>,
    chunked: Parameters<typeof runRows>[1],
    single: Parameters<typeof run>[1],
    columns: readonly string[],
    rows: readonly Record<string, unknown>[],
  ): Promise<void> {
    let i = 0;
    for (; i + bulkRows <= rows.length; i += bulkRows) {
      await runRows(trx, chunked, columns, rows, i);
    }
    for (; i < rows.length; i++) await run(trx, single, rows[i] as Record<string, unknown>);
  }

  // SQLite: BEGIN IMMEDIATE serialises appends, so the tree this instance appended to last is
  // still the stored tree unless another connection appended since. A decision starts from that
  // remembered tree and proves it under the write lock: the entry before its first seq exists
  // and its own seq is free (the id is the primary key); otherwise the transaction rolls back
  // and runs again from a fresh read. PostgreSQL and MySQL always lock the head row
  // (`FOR UPDATE`) and read the last id; the frontier comes from memory when it is of that size.
  let rememberedHead: { head: HeadRow; frontier: Frontier } | undefined;
  let knownFrontier: Frontier | undefined;
  // Entries get ids `base + seq` (see SEQ_SPAN); set once the head row is read.
  let base = 0;

  let isReady = false;
  function ready(): Promise<void> | undefined {
    // Once initialised, lookups skip the await (a resolved promise still costs a microtask turn).
    if (isReady) return undefined;
    readyPromise ??= initialise().then(
      () => {
        isReady = true;
        noticesCheckedAt = clock.now().getTime();
      },
      (error) => {
        readyPromise = undefined;
        throw error;
      },
    );
    return readyPromise;
  }

  /**
   * A `createDatabaseKeyStore` store whose database holds this ledger's tables is the ledger's own
   * database reached another way (a derived Kysely instance, another connection or URL): beside
   * the evidence it protects nothing, and `shredSubject`, destroying keys under the ledger's lock,
   * could wait on itself.
   */
  async function assertKeysElsewhere(): Promise<void> {
    const keyDb = (keyStore as { [keyStoreDatabase]?: Kysely<any> } | undefined)?.[keyStoreDatabase];
    if (!keyDb) return;
    const shared = await keyDb
      .selectFrom(T.head)
      .select('tenant')
      .limit(1)
      .execute()
      .then(
        () => true,
        () => false,
      );
    if (shared) {
      throw fail(
        'consent/invalid-options',
        "evidenceKeys: the key store's database holds the consent ledger's tables — give the keys a database of their own",
      );
    }
  }

  async function readHead(): Promise<HeadRow> {
    return (await db
      .selectFrom(T.head)
      .selectAll()
      .where('tenant', '=', tenant)
      .executeTakeFirstOrThrow()) as HeadRow;
  }

  /** Creates the tenant's head row with the next free tenant number, unless it exists. */
  async function createHead(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const existing = await db
        .selectFrom(T.head)
        .select('tenant')
        .where('tenant', '=', tenant)
        .executeTakeFirst();
      if (existing) return;
      const last = await db
        .selectFrom(T.head)
        .select((eb) => eb.fn.max('no').as('no'))
        .executeTakeFirst();
      const no = Number(last?.no ?? 0) + 1;
      if (no >= 2 ** 53 / SEQ_SPAN)
        throw fail('consent/invalid-options', 'too many ledger tenants in this database');
      try {
        await writeStatement(db, (on) =>
          on
            .insertInto(T.head)
            .values({
              tenant,
              no,
              size: 0,
              frontier: '[]',
              signed_size: 0,
              signed_at: null,
              pseudonym_secret: null,
              signing_key: null,
              indexed_size: 0,
              updated_at: clock.now().toISOString(),
            })
            .execute(),
        );
        return;
      } catch (error) {
        // Another process created this tenant, or took the number: look again.
        if (!isUniqueViolation(error) || attempt >= 20) throw error;
      }
    }
  }

  async function initialise(): Promise<void> {
    await assertKeysElsewhere();
    await createHead();
    let head = await readHead();
    base = Number(head.no) * SEQ_SPAN;
    if (!options.secret && !head.pseudonym_secret) {
      await writeStatement(db, (on) =>
        on
          .updateTable(T.head)
          .set({ pseudonym_secret: randomToken(32) })
          .where('tenant', '=', tenant)
          .where('pseudonym_secret', 'is', null)
          .execute(),
      );
      head = await readHead();
    }
    if (!options.secret) secret = head.pseudonym_secret as string;
    if (!('evidence_keys' in head)) {
      throw fail(
        'consent/invalid-options',
        'the consent tables predate migration 0005_key_store_marker: run migrate(db, [consentMigrations])',
      );
    }
    if (keyStore && head.evidence_keys !== 'store') {
      await writeStatement(db, (on) =>
        on.updateTable(T.head).set({ evidence_keys: 'store' }).where('tenant', '=', tenant).execute(),
      );
    }
    storeMarked = Boolean(keyStore) || head.evidence_keys === 'store';
    if (!configuredKeys) {
      if (!head.signing_key) {
        const pem = generateKeyPairSync('ed25519')
          .privateKey.export({ type: 'pkcs8', format: 'pem' })
          .toString();
        await writeStatement(db, (on) =>
          on
            .updateTable(T.head)
            .set({ signing_key: pem })
            .where('tenant', '=', tenant)
            .where('signing_key', 'is', null)
            .execute(),
        );
        head = await readHead();
      }
      keys = loadSigningKeys({ privateKey: createPrivateKey(head.signing_key as string) });
    }
    await loadNotices();
    await publish(policy, undefined, 'startup');
  }

  function loadNotices(): Promise<void> {
    if (keyStore || storeMarked) return loadNoticesWith(db);
    return Promise.all([loadNoticesWith(db), readHead()]).then(([, head]) => {
      storeMarked = head.evidence_keys === 'store';
    });
  }

  // Notices another instance publishes reach this one within NOTICE_TTL_MS, for every method
  // that decides or answers from them: a grant recorded after that on a text this instance no
  // longer shows as current is refused (resolveNotice), and a lookup counts grants on the
  // superseded text as needing re-consent. Undefined (nothing to wait for) between reloads.
  const NOTICE_TTL_MS = 5000;
  let noticesCheckedAt = Number.NEGATIVE_INFINITY;
  function freshNotices(): Promise<void> | undefined {
    const now = clock.now().getTime();
    if (now - noticesCheckedAt < NOTICE_TTL_MS) return undefined;
    noticesCheckedAt = now;
    return loadNotices();
  }

  // ---------------------------------------------------------------------------------------------
  // Appending

  function headFrontier(head: HeadRow): Frontier {
    const hashes = (JSON.parse(head.frontier) as string[]).map((h) => Buffer.from(h, 'hex'));
    return { size: Number(head.size), hashes };
  }

  /** The frontier of the first `size` entries, from the roots stored beside their last leaves. */
  async function frontierFromDb(q: Kysely<any>, size: number): Promise<Frontier> {
    const parts = frontierSubtrees(size);
    const found = await perfectNodesWith(q, parts);
    const hashes = parts.map(({ level, index }) => {
      const hash = found.get(nodeKey(level, index));
      if (!hash) throw new Error(`consent ledger entry ${(index + 1) * 2 ** level - 1} is missing`);
      return hash;
    });
    return { size, hashes };
  }

  /** The tree as stored now: its size from the last id, its frontier from memory, head or rows. */
  async function treeFrom(q: Kysely<any>, head: HeadRow, lastId: unknown): Promise<Frontier> {
    const size = lastId === null || lastId === undefined ? 0 : Number(lastId) - base + 1;
    if (knownFrontier?.size === size) return knownFrontier;
    if (Number(head.size) === size) return headFrontier(head);
    return frontierFromDb(q, size);
  }

  async function currentTree(q: Kysely<any> = db): Promise<Frontier> {
    const row = (
      await run<'tenant' | 'low' | 'high', HeadRow & { last_id: unknown }>(q, statements.headRead, {
        tenant,
        low: base,
        high: base + SEQ_SPAN,
      })
    ).rows[0];
    if (!row) throw new Error(`consent ledger head of tenant ${tenant} is missing`);
    return treeFrom(q, row, row.last_id);
  }

  /**
   * Appends entries after the context's tree, in order; signs a tree head and indexes the
   * entries behind it when due. When the tree came from memory, the entry before the first new
   * one must exist and the new ids must be free, before anything else is written.
   */
  async function append(
    ctx: AppendContext,
    pending: readonly Pending[],
    now: Date,
    options: { checkpoint?: boolean } = {},
  ): Promise<number[]> {
    const { trx, head } = ctx;
    const { rows, seqs, frontier } = ledgerRows(ctx.frontier, pending, now.toISOString());
    if (ctx.remembered && ctx.frontier.size > 0) {
      const before = await run(trx, statements.entryExists, { id: base + ctx.frontier.size - 1 });
      if (before.rows.length === 0) throw new StaleHead();
    }
    try {
      await insertChunked(trx, bulk.insertEntries, statements.insertEntry, ledgerColumns, rows);
    } catch (error) {
      if (ctx.remembered && isUniqueViolation(error)) throw new StaleHead();
      throw error;
    }
    ctx.head =
      options.checkpoint !== false && checkpointDue(head, frontier.size, now)
        ? await checkpoint(trx, frontier, now, ctx.remembered ? undefined : head)
        : head;
    ctx.frontier = frontier;
    return seqs;
  }

  /** The ledger rows of entries appended after `start`, and the tree they make. */
  function ledgerRows(
    start: Frontier,
    pending: readonly Pending[],
    recordedAt: string,
  ): { rows: Record<(typeof ledgerColumns)[number], unknown>[]; seqs: number[]; frontier: Frontier } {
    // The new tree's subtree roots, grown in place (`start` is left as it was).
    const hashes = start.hashes.slice();
    const seqs: number[] = [];
    const rows: Record<(typeof ledgerColumns)[number], unknown>[] = [];
    for (let i = 0; i < pending.length; i++) {
      const item = pending[i] as Pending;
      const seq = start.size + i;
      const text = item.decision
        ? decisionEntryJson(item.decision, seq, item.eventId, tenant)
        : canonicalJson({ ...item.entry, seq, id: item.eventId, tenant, kind: item.kind });
      const leaf = leafHash(text);
      const completed = pushLeaf(hashes, seq, leaf);
      seqs.push(seq);
      rows.push({
        id: base + seq,
        tenant,
        seq,
        event_id: item.eventId,
        kind: item.kind,
        subject_key: item.subjectKey ?? null,
        purpose: item.purpose ?? null,
        entry: text,
        leaf_hash: leaf.toString('hex'),
        // JSON.stringify of the hex strings, which need no escaping.
        nodes:
          completed.length === 0
            ? null
            : completed.length === 1
              ? `["${(completed[0] as Buffer).toString('hex')}"]`
              : `["${completed.map(hex).join('","')}"]`,
        sealed: item.sealed ?? null,
        recorded_at: recordedAt,
      });
    }
    return { rows, seqs, frontier: { size: start.size + pending.length, hashes } };
  }

  function checkpointDue(head: HeadRow, size: number, now: Date): boolean {
    const signedAt = head.signed_at ? Date.parse(head.signed_at) : 0;
    return (
      size - Number(head.signed_size) >= signAppends ||
      now.getTime() - signedAt >= signMs ||
      size - Number(head.indexed_size) >= INDEX_EVERY
    );
  }

  /**
   * Writes the head checkpoint: signs a tree head when due, moves the entries behind the last
   * indexed one into the subject and event lookups, and records size and frontier.
   */
  async function checkpoint(
    trx: Kysely<any>,
    frontier: Frontier,
    now: Date,
    known?: HeadRow,
  ): Promise<HeadRow> {
    // The head this transaction read under its lock (only checkpoints change the fields used
    // here, and each hands its result on as the context's head); one from memory is read again.
    const head =
      known ??
      ((await trx
        .selectFrom(T.head)
        .selectAll()
        .where('tenant', '=', tenant)
        .executeTakeFirstOrThrow()) as HeadRow);
    const recordedAt = now.toISOString();
    const next: HeadRow = {
      ...head,
      size: frontier.size,
      frontier: JSON.stringify(frontier.hashes.map(hex)),
      updated_at: recordedAt,
    };
    const signedAt = head.signed_at ? Date.parse(head.signed_at) : 0;
    if (frontier.size - Number(head.signed_size) >= signAppends || now.getTime() - signedAt >= signMs) {
      const sth = signTreeHead(
        { tenant, treeSize: frontier.size, rootHash: hex(frontierRoot(frontier)), timestamp: recordedAt },
        keys,
      );
      await storeTreeHead(trx, sth);
      next.signed_size = frontier.size;
      next.signed_at = recordedAt;
    }
    const indexed = Number(head.indexed_size);
    if (indexed < frontier.size) {
      await indexEntries(trx, indexed, frontier.size);
      next.indexed_size = frontier.size;
    }
    await run(trx, statements.checkpoint, {
      tenant,
      size: next.size,
      frontier: next.frontier,
      signed_size: next.signed_size,
      signed_at: next.signed_at,
      indexed_size: next.indexed_size,
      updated_at: recordedAt,
    });
    return next;
  }

  /**
   * Adds entries [from, to) to the subject and event lookups, each with one INSERT … SELECT from
   * the ledger (the subject rows in key order, so neighbours share b-tree pages): no entry makes
   * the round trip through JavaScript. An event id already in the lookup (a duplicate that
   * reached the ledger) keeps its first entry: indexing goes on, so appends never fail on it,
   * and verify() reports the duplicate.
   */
  async function indexEntries(trx: Kysely<any>, from: number, to: number): Promise<void> {
    for (let start = from; start < to; start += 5000) {
      const range = (columns: string[]) =>
        trx
          .selectFrom(T.ledger)
          .select(columns)
          .where('id', '>=', base + start)
          .where('id', '<', base + Math.min(to, start + 5000));
      await keepFirst(
        trx
          .insertInto(T.eventIx)
          .columns(['tenant', 'event_id', 'seq'])
          .expression(range(['tenant', 'event_id', 'seq'])),
      ).execute();
      await trx
        .insertInto(T.subjectIx)
        .columns(['tenant', 'subject_key', 'seq'])
        .expression(
          range(['tenant', 'subject_key', 'seq'])
            .where('subject_key', 'is not', null)
            .orderBy('subject_key')
            .orderBy('seq'),
        )
        .execute();
    }
  }

  /**
   * The seqs of the entries whose `column` is one of `values`: from the lookup table, and from
   * the entries not yet indexed (at most a batch, read in id order).
   */
  async function lookupSeqs(
    q: Kysely<any>,
    column: 'subject_key' | 'event_id',
    values: readonly string[],
  ): Promise<Map<string, number[]>> {
    const out = new Map<string, Set<number>>();
    if (values.length === 0) return new Map();
    const head = await q
      .selectFrom(T.head)
      .select('indexed_size')
      .where('tenant', '=', tenant)
      .executeTakeFirst();
    const indexed = Number(head?.indexed_size ?? 0);
    const table = column === 'subject_key' ? T.subjectIx : T.eventIx;
    const add = (rows: { key: string; seq: unknown }[]) => {
      for (const row of rows) {
        const seqs = out.get(row.key) ?? new Set<number>();
        seqs.add(Number(row.seq));
        out.set(row.key, seqs);
      }
    };
    for (let i = 0; i < values.length; i += 500) {
      const chunk = values.slice(i, i + 500);
      add(
        (await q
          .selectFrom(table)
          .select([`${column} as key`, 'seq'])
          .where('tenant', '=', tenant)
          .where(column, 'in', chunk)
          .execute()) as { key: string; seq: unknown }[],
      );
      add(
        (await q
          .selectFrom(T.ledger)
          .select([`${column} as key`, 'seq'])
          .where('id', '>=', base + indexed)
          .where('id', '<', base + SEQ_SPAN)
          .where(column, 'in', chunk)
          .execute()) as { key: string; seq: unknown }[],
      );
    }
    return new Map([...out].map(([key, seqs]) => [key, [...seqs].sort((a, b) => a - b)]));
  }

  /** import() after its options: validates everything, then appends the batches (on `threaded`'s connection when it opened). */
  async function importDecisions(
    decisions: readonly ConsentDecision[],
    batchSize: number,
    threaded: Promise<WriterThread | undefined> | undefined,
  ): Promise<{ imported: number }> {
    await ready();
    await freshNotices();
    const values: Validated[] = [];
    const notAfter = clock.now().getTime();
    for (const [i, decision] of decisions.entries()) {
      try {
        if (typeof decision !== 'object' || decision === null || Array.isArray(decision)) {
          throw fail('consent/invalid-decision', 'a decision is an object');
        }
        const input = (
          decision.source === undefined ? { ...decision, source: 'import' } : decision
        ) as ConsentDecision;
        let value: Validated;
        try {
          value = validate(input, true);
        } catch (error) {
          // Another process may have published a notice since we loaded ours.
          const code = (error as Err).code;
          if (code !== 'consent/unknown-notice-version' && code !== 'consent/unknown-notice-hash')
            throw error;
          await loadNotices();
          value = validate(input, true);
        }
        // A decision "made" after now would outrank every later live decision of the subject
        // (imports keep the latest `at`), a withdrawal included.
        if (value.at !== undefined && Date.parse(value.at) > notAfter) {
          throw new PrivacyKitError<ConsentErrorCode>(
            'consent/invalid-decision',
            `at ${value.at} is in the future: an imported decision was made before the import`,
            { issues: [{ path: 'at', message: 'must not be later than now' }] },
          );
        }
        values.push(withoutStore(value));
      } catch (error) {
        if (error instanceof PrivacyKitError) {
          throw new PrivacyKitError<ConsentErrorCode>(
            error.code as ConsentErrorCode,
            `decision ${i}: ${error.message}`,
            {
              cause: error,
              issues: error.issues.map((issue) => ({
                ...issue,
                path: `[${i}]${issue.path ? `.${issue.path}` : ''}`,
              })),
              details: { ...error.details, index: i },
            },
          );
        }
        throw error;
      }
    }
    const eventIds = values.flatMap((value) => (value.eventId ? [value.eventId] : []));
    await assertNewEvents(db, eventIds);
    // Batches group subjects by pseudonym (a subject's decisions keep their order): each batch
    // then writes its state rows and lookups into one key range, not across the whole table.
    const keyed = values.map((value, index) => ({ value, index, subjectKey: pseudonym(value.subjectId) }));
    keyed.sort((a, b) =>
      a.subjectKey < b.subjectKey ? -1 : a.subjectKey > b.subjectKey ? 1 : a.index - b.index,
    );
    const writer = await threaded;
    let imported = 0;
    for (let start = 0; start < keyed.length; start += batchSize) {
      const chunk = keyed.slice(start, start + batchSize);
      const batch = chunk.map((item) => item.value);
      const subjectKeys = chunk.map((item) => item.subjectKey);
      const sealing = batch.map(needsSeal);
      const sealPairs = batch.flatMap((value, i) =>
        sealing[i] ? [{ subjectKey: subjectKeys[i] as string, purpose: value.purpose.id }] : [],
      );
      await withKeyRetry(
        async () => {
          // The store's keys of pairs without a state-row key, before the transaction.
          let storeKeys: StoreKeys | undefined;
          if (keyStore && sealPairs.length > 0) {
            try {
              const inState = await stateKeys(db, sealPairs);
              storeKeys = await storeKeysFor(
                sealPairs.filter((pair) => !inState.has(pairKey(pair.subjectKey, pair.purpose))),
              );
            } catch (error) {
              if ((error as Err).code !== 'consent/key-store-failed') throw error;
              const failure = error as PrivacyKitError<ConsentErrorCode>;
              throw new PrivacyKitError<ConsentErrorCode>(
                'consent/key-store-failed',
                `${failure.message}; ${imported} decision(s) of this import were recorded before it`,
                { cause: error, details: { ...failure.details, imported } },
              );
            }
          }
          const now = clock.now();
          await appendTransaction(
            async (ctx) => {
              const { trx } = ctx;
              // Again under the append lock: an import running at the same time (a client's retry, a
              // second worker) may have appended one of these ids since the check above.
              const ids = batch.flatMap((value) => (value.eventId ? [value.eventId] : []));
              if (ids.length > 0) {
                await assertNewEvents(trx, ids).catch((error: unknown) => {
                  if ((error as Err).code !== 'consent/duplicate-event') throw error;
                  const failure = error as PrivacyKitError<ConsentErrorCode>;
                  throw new PrivacyKitError<ConsentErrorCode>(
                    'consent/duplicate-event',
                    `${failure.message}; ${imported} decision(s) of this import were recorded before it`,
                    { cause: error, details: { ...failure.details, imported } },
                  );
                });
              }
              // Under the lock, as for record(): a tenant marked as keeping its keys in a store
              // since the decisions were validated (see withoutStore).
              let values = batch;
              let pairs = sealPairs;
              if (!keyStore && sealPairs.length > 0 && (storeMarked || (await markedIn(trx)))) {
                try {
                  values = batch.map(withoutStore);
                } catch (error) {
                  const failure = error as PrivacyKitError<ConsentErrorCode>;
                  throw new PrivacyKitError<ConsentErrorCode>(
                    failure.code,
                    `${failure.message}; ${imported} decision(s) of this import were recorded before it`,
                    { cause: error, details: { imported } },
                  );
                }
                pairs = [];
              }
              const materials =
                pairs.length > 0
                  ? await batchKeys(trx, ctx.frontier.size, pairs, storeKeys)
                  : new Map<string, Buffer>();
              const decidedNow = now.toISOString();
              // The entries go in slices, so only a slice's entry texts, seals and rows are alive at
              // once (a whole batch of them outgrew V8's young generation: most of the import's
              // time went to copying them between garbage collections). One checkpoint, at the end.
              // Each slice's state rows go with it: on a writer thread, they are written while the
              // next slice is prepared, instead of all of them while this thread waits to commit.
              for (let from = 0; from < batch.length; from += IMPORT_SLICE) {
                const to = Math.min(batch.length, from + IMPORT_SLICE);
                // Latest decision per subject × purpose wins within the slice; the upsert keeps newer
                // rows in the table (a live decision, made now, is newer than any imported one), so
                // slice after slice leaves the rows one upsert of the batch's latest would.
                // By purpose, then subject key.
                const latest = new Map<string, Map<string, StateRow>>();
                const live = new Set<StateRow>();
                const pendings: Pending[] = [];
                const meta: {
                  value: Validated;
                  subjectKey: string;
                  at: string;
                  expiresAt?: string | undefined;
                  key: Buffer | undefined;
                }[] = [];
                for (let i = from; i < to; i++) {
                  const value = values[i] as Validated;
                  const subjectKey = subjectKeys[i] as string;
                  const at = value.at ?? decidedNow;
                  // The pair's key even when this decision seals nothing: its state row keeps the key
                  // an earlier decision of the batch sealed under.
                  const key =
                    materials.size > 0 ? materials.get(pairKey(subjectKey, value.purpose.id)) : undefined;
                  const { pending, expiresAt } = decisionPending(value, subjectKey, at, false, key, now);
                  pendings.push(pending);
                  meta.push({ value, subjectKey, at, expiresAt, key });
                }
                const seqs = await append(ctx, pendings, now, { checkpoint: to === batch.length });
                for (const [i, item] of meta.entries()) {
                  const row = stateRowOf(
                    {
                      subjectId: item.value.subjectId,
                      subjectKey: item.subjectKey,
                      purpose: item.value.purpose.id,
                      state: item.value.state,
                      source: item.value.source,
                    },
                    pendings[i] as Pending,
                    seqs[i] as number,
                    {
                      renewal: false,
                      notice: item.value.notice,
                      at: item.at,
                      expiresAt: item.expiresAt,
                      key: item.key,
                    },
                  );
                  let ofPurpose = latest.get(row.purpose);
                  if (!ofPurpose) {
                    ofPurpose = new Map();
                    latest.set(row.purpose, ofPurpose);
                  }
                  const before = ofPurpose.get(row.subject_key);
                  if (!before || before.decided_at <= row.decided_at) {
                    ofPurpose.set(row.subject_key, row);
                    // Decided now (no `at` given, as a portal's multi-purpose choice): a live decision.
                    if (item.value.at === undefined) live.add(row);
                    else live.delete(before as StateRow);
                  }
                }
                // In key order (purpose, subject key): neighbouring rows share b-tree pages. The batch
                // runs in subject-key order and a Map keeps the order keys were first seen in, so the
                // purposes in order, each's rows as they are, is that order without a sort.
                const rows = [...latest.keys()]
                  .sort()
                  .flatMap((purpose) => [...(latest.get(purpose) as Map<string, StateRow>).values()]);
                for (const [order, chosen] of [
                  ['decided', rows.filter((row) => !live.has(row))],
                  ['ledger', rows.filter((row) => live.has(row))],
                ] as const) {
                  await insertChunked(
                    trx,
                    order === 'ledger' ? bulk.upsertStatesLive : bulk.upsertStates,
                    order === 'ledger' ? statements.upsertState : statements.importState,
                    stateColumns,
                    chosen as unknown as Record<string, unknown>[],
                  );
                }
              }
            },
            { via: writer?.db },
          );
        },
        () => ({ imported }),
      );
      imported += batch.length;
    }
    return { imported };
  }

  /**
   * Runs `fn` in a write transaction holding the append lock, with the current tree. With
   * `remembered`, SQLite starts from the tree in memory (see `rememberedHead`); `fn` must then
   * have no effects outside the transaction, since it may run twice.
   */
  async function appendTransaction<R>(
    fn: (ctx: AppendContext) => Promise<R>,
    options: { remembered?: boolean; via?: Kysely<any> | undefined } = {},
  ): Promise<R> {
    const on = options.via ?? db;
    const remembered = engine === 'sqlite' && options.remembered ? rememberedHead : undefined;
    rememberedHead = undefined;
    const attempt = async (trx: Kysely<any>, from: typeof remembered) => {
      const ctx: AppendContext = from
        ? { trx, head: from.head, frontier: from.frontier, remembered: true }
        : await locked(trx);
      return { result: await fn(ctx), ctx };
    };
    let outcome: { result: R; ctx: AppendContext } | undefined;
    if (remembered) {
      try {
        outcome = await writeTransaction(on, (trx) => attempt(trx, remembered));
      } catch (error) {
        if (!(error instanceof StaleHead)) throw error;
      }
    }
    for (let tries = 1; !outcome; tries++) {
      try {
        outcome = await writeTransaction(on, (trx) => attempt(trx, undefined));
      } catch (error) {
        // The engine broke a deadlock (InnoDB gap locks of tenants appending side by side) or a
        // serialisation conflict by rolling this transaction back whole: run it again.
        if (!isRetryableConflict(error)) throw error;
        if (tries >= CONFLICT_TRIES) {
          throw fail(
            'consent/write-conflict',
            `the write lost to concurrent writers ${tries} times in a row and was rolled back each time; nothing was written: try again`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * tries));
      }
    }
    knownFrontier = outcome.ctx.frontier;
    if (engine === 'sqlite') rememberedHead = { head: outcome.ctx.head, frontier: outcome.ctx.frontier };
    return outcome.result;
  }

  async function locked(trx: Kysely<any>): Promise<AppendContext> {
    const range = { tenant, low: base, high: base + SEQ_SPAN };
    let head: (HeadRow & { last_id?: unknown }) | undefined;
    if (engine === 'sqlite') {
      head = (
        await run<'tenant' | 'low' | 'high', HeadRow & { last_id: unknown }>(trx, statements.head, range)
      ).rows[0];
    } else {
      head = (await run<'tenant', HeadRow>(trx, statements.lockHeadOnly, range)).rows[0];
      const last = (await run<'low' | 'high', { id: unknown }>(trx, statements.lastId, range)).rows[0];
      if (head) head.last_id = last?.id;
    }
    if (!head) throw new Error(`consent ledger head of tenant ${tenant} is missing`);
    return { trx, head, frontier: await treeFrom(trx, head, head.last_id), remembered: false };
  }

  async function storeTreeHead(trx: Kysely<any>, sth: SignedTreeHead): Promise<void> {
    await insertIgnore(trx, engine, T.treeHeads, {
      tenant,
      size: sth.treeSize,
      root_hash: sth.rootHash,
      timestamp: sth.timestamp,
      key_id: sth.keyId,
      signature: sth.signature,
    });
  }

  /**
   * The evidence keys of subject × purpose pairs (`subjectKey \0 purpose`) kept in their state
   * rows; with `create` (no key store only), a fresh key for each pair without one.
   */
  async function stateKeys(
    trx: Kysely<any>,
    pairs: readonly { subjectKey: string; purpose: string }[],
    create = false,
  ): Promise<Map<string, Buffer>> {
    const found = new Map<string, Buffer>();
    const byPurpose = new Map<string, Set<string>>();
    for (const { subjectKey, purpose } of pairs) {
      const keys = byPurpose.get(purpose) ?? new Set<string>();
      keys.add(subjectKey);
      byPurpose.set(purpose, keys);
    }
    for (const [purpose, subjectKeys] of byPurpose) {
      const unique = [...subjectKeys];
      for (let i = 0; i < unique.length; i += 500) {
        const rows = await trx
          .selectFrom(T.state)
          .select(['subject_key', 'key_material'])
          .where('tenant', '=', tenant)
          .where('purpose', '=', purpose)
          .where('subject_key', 'in', unique.slice(i, i + 500))
          .where('key_material', 'is not', null)
          .execute();
        for (const row of rows) {
          found.set(pairKey(row.subject_key, purpose), Buffer.from(row.key_material, 'base64'));
        }
      }
    }
    if (create && !keyStore) {
      for (const { subjectKey, purpose } of pairs) {
        const key = pairKey(subjectKey, purpose);
        if (!found.has(key)) found.set(key, pooledRandomBytes(32));
      }
    }
    return found;
  }

  // Keys that came from the evidence key store: a state row never stores them.
  const storeKeys = new WeakSet<Buffer>();

  /**
   * The store's keys of these pairs (`subjectKey \0 purpose` → key); with `create`, every pair's.
   * Whatever the store throws or answers that is not a 32-byte key of a pair asked for is a
   * consent/key-store-failed.
   */
  async function fromKeyStore(
    pairs: readonly { subjectKey: string; purpose: string }[],
    create: boolean,
  ): Promise<Map<string, Buffer>> {
    const store = keyStore as EvidenceKeyStore;
    let answer: unknown;
    try {
      answer = await (create ? store.obtain(tenant, pairs) : store.get(tenant, pairs));
    } catch (error) {
      throw new PrivacyKitError<ConsentErrorCode>(
        'consent/key-store-failed',
        `the evidence key store failed to ${create ? 'obtain' : 'read'} keys: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    const asked = new Set(pairs.map((pair) => pairKey(pair.subjectKey, pair.purpose)));
    const keys = new Map<string, Buffer>();
    const bad = (why: string) =>
      new PrivacyKitError<ConsentErrorCode>(
        'consent/key-store-failed',
        `the evidence key store answered ${why}`,
      );
    if (!Array.isArray(answer)) throw bad('something that is not an array of keys');
    for (const item of answer as unknown[]) {
      const { subjectKey, purpose, key } = (item ?? {}) as Record<string, unknown>;
      if (typeof subjectKey !== 'string' || typeof purpose !== 'string') throw bad('a key without its pair');
      const id = pairKey(subjectKey, purpose);
      if (!asked.has(id)) continue;
      if (!(key instanceof Uint8Array) || key.length !== 32)
        throw bad(`a key of ${purpose} that is not 32 bytes`);
      const material = Buffer.from(key);
      storeKeys.add(material);
      keys.set(id, material);
    }
    if (create && keys.size < asked.size) throw bad('without a key for every pair it was asked to create');
    return keys;
  }

  /**
   * The ledger's size now: a key taken from the store after it is checked, under the append
   * lock, against shreddings appended since (see {@link sealingKey}).
   */
  async function ledgerMark(): Promise<number> {
    const row = (await db
      .selectFrom(T.ledger)
      .select('id')
      .where('id', '>=', base)
      .where('id', '<', base + SEQ_SPAN)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst()) as { id: unknown } | undefined;
    return row ? Number(row.id) - base + 1 : 0;
  }

  /**
   * The store's keys of these pairs, and the ledger's size before they were asked for. Taken
   * before the decision's transaction: a store is never called under the append lock (a slow one
   * would stall every writer of the tenant).
   */
  async function storeKeysFor(pairs: readonly { subjectKey: string; purpose: string }[]): Promise<StoreKeys> {
    const mark = await ledgerMark();
    return { keys: pairs.length > 0 ? await fromKeyStore(pairs, true) : new Map(), mark };
  }

  /**
   * Under an import batch's lock: the keys its sealed decisions use — state-row keys, else
   * (no store) fresh ones, else the store's taken before, checked as {@link sealingKey} does.
   */
  async function batchKeys(
    trx: Kysely<any>,
    size: number,
    pairs: readonly { subjectKey: string; purpose: string }[],
    storeKeys: StoreKeys | undefined,
  ): Promise<Map<string, Buffer>> {
    const keys = await stateKeys(trx, pairs, true);
    if (!keyStore) return keys;
    const missing = pairs.filter((pair) => !keys.has(pairKey(pair.subjectKey, pair.purpose)));
    if (missing.length === 0) return keys;
    if (!storeKeys) throw new KeyRetry();
    const shredded = await shreddedBetween(
      trx,
      storeKeys.mark,
      size,
      missing.map((pair) => pair.subjectKey),
    );
    for (const pair of missing) {
      const id = pairKey(pair.subjectKey, pair.purpose);
      const key = storeKeys.keys.get(id);
      if (!key || shredded.has(pair.subjectKey)) throw new KeyRetry();
      keys.set(id, key);
    }
    return keys;
  }

  /**
   * With a key store, the store's key of a decision's pair when it seals anything and the pair's
   * state row holds no key of its own (read again under the lock by {@link sealingKey}).
   */
  async function storeKeyFor(value: Validated, subjectKey: string): Promise<StoreKeys | undefined> {
    if (!keyStore || !needsSeal(value)) return undefined;
    const { rows } = await run<'tenant' | 'subject' | 'purpose', PriorState>(db, statements.prior, {
      tenant,
      subject: subjectKey,
      purpose: value.purpose.id,
    });
    if (rows[0]?.key_material) return undefined;
    return storeKeysFor([{ subjectKey, purpose: value.purpose.id }]);
  }

  /**
   * A refusal or withdrawal goes on without its evidence when the key store fails: nothing may
   * stand in the way of saying no (Art 7(3), GPC); a grant waits for the store.
   */
  async function keyedOrBare(
    value: Validated,
    subjectKey: string,
  ): Promise<{ value: Validated; storeKey: StoreKeys | undefined }> {
    if (!keyStore) return { value, storeKey: undefined };
    try {
      return { value, storeKey: await storeKeyFor(value, subjectKey) };
    } catch (error) {
      if (value.state === 'granted' || (error as Err).code !== 'consent/key-store-failed') throw error;
      const { evidence: _evidence, age: _age, parental: _parental, ...bare } = value;
      return { value: bare, storeKey: undefined };
    }
  }

  /**
   * Under the append lock: what a decision seals under. The pair's state-row key if it has one;
   * without a store, a fresh key; with one, the key taken from it — unless the subject was
   * shredded since (its keys destroyed, perhaps that one) or the state-row key seen before is
   * gone: then {@link KeyRetry}, and the decision starts again with a fresh look at both.
   */
  function sealingKey(
    value: Validated,
    subjectKey: string,
    stateKey: string | null | undefined,
    storeKey: StoreKeys | undefined,
    shreddedSince: ((mark: number) => boolean) | undefined,
  ): Buffer | undefined {
    if (!needsSeal(value)) return undefined;
    if (stateKey) return Buffer.from(stateKey, 'base64');
    if (!keyStore) return pooledRandomBytes(32);
    const key = storeKey?.keys.get(pairKey(subjectKey, value.purpose.id));
    if (!key || shreddedSince?.((storeKey as StoreKeys).mark) !== false) throw new KeyRetry();
    return key;
  }

  /** Subjects of `subjectKeys` shredded by entries `mark` … `size - 1` (read under the lock). */
  async function shreddedBetween(
    trx: Kysely<any>,
    mark: number,
    size: number,
    subjectKeys: Iterable<string>,
  ): Promise<Set<string>> {
    if (mark >= size) return new Set();
    const wanted = new Set(subjectKeys);
    const rows = (await trx
      .selectFrom(T.ledger)
      .select('subject_key')
      .where('id', '>=', base + mark)
      .where('id', '<', base + size)
      .where('kind', '=', 'subject-shredded')
      .execute()) as { subject_key: string | null }[];
    return new Set(
      rows.flatMap((row) => (row.subject_key && wanted.has(row.subject_key) ? [row.subject_key] : [])),
    );
  }

  /**
   * Runs `write` again (up to a few times) when a key it took from the store went stale; then a
   * consent/write-conflict (with `details`, such as an import's count so far).
   */
  async function withKeyRetry<R>(
    write: () => Promise<R>,
    details?: () => Record<string, unknown>,
  ): Promise<R> {
    for (let tries = 1; ; tries++) {
      try {
        return await write();
      } catch (error) {
        if (!(error instanceof KeyRetry)) throw error;
        if (tries >= KEY_TRIES) {
          throw fail(
            'consent/write-conflict',
            `the subject's evidence keys changed (a shredding) while each of ${tries} attempts took its key; nothing was written: try again`,
            details?.(),
          );
        }
      }
    }
  }

  /**
   * The store's `destroy()`, given up after {@link KEY_STORE_DESTROY_MS}: it runs while the
   * shredding holds the append transaction, so a store that reaches the ledger's own database
   * through the ledger's instance (on SQLite, one connection) would wait for that transaction,
   * and the transaction for it, forever.
   */
  async function destroyWithin(store: EvidenceKeyStore, subjectKey: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        store.destroy(tenant, subjectKey),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(
                  `destroy() did not finish within ${KEY_STORE_DESTROY_MS / 1000} s while the shredding held the ledger's write transaction (a store that uses the ledger's own database instance waits for that transaction: give the store a connection or database of its own). Nothing was shredded; the store may still destroy the keys when its call ends, and a retry finishes the shredding`,
                ),
              ),
            KEY_STORE_DESTROY_MS,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Validation

  // Purposes that passed the checks below, for the policy they were checked against.
  let checkedPurposes = { policy, purposes: new Map<string, Purpose>() };

  /**
   * A purpose that once rested on consent (its notices are published) but that the policy no
   * longer declares, or declares on another basis: still withdrawable (Art 7(3)).
   */
  function retiredPurpose(purposeId: string): Purpose {
    if (!notices.has(purposeId))
      throw fail('consent/unknown-purpose', `purpose "${purposeId}" is not declared in the policy`);
    return (
      policy.purposes.find((candidate) => candidate.id === purposeId) ??
      ({
        id: purposeId,
        name: purposeId,
        description: '',
        legalBases: [],
        categories: [],
      } as unknown as Purpose)
    );
  }

  function consentPurpose(purposeId: string): Purpose {
    if (checkedPurposes.policy !== policy) checkedPurposes = { policy, purposes: new Map() };
    const checked = checkedPurposes.purposes.get(purposeId);
    if (checked) return checked;
    const purpose = policy.purposes.find((candidate) => candidate.id === purposeId);
    if (!purpose)
      throw fail('consent/unknown-purpose', `purpose "${purposeId}" is not declared in the policy`);
    if (!purpose.legalBases.some((basis) => basis.basis === 'consent')) {
      throw fail(
        'consent/not-consent-purpose',
        `purpose "${purposeId}" rests on ${purpose.legalBases.map((b) => b.basis).join(', ')}, not consent`,
      );
    }
    checkedPurposes.purposes.set(purposeId, purpose);
    return purpose;
  }

  function validate(input: ConsentDecision, importing: boolean, retired = false): Validated {
    if (typeof input === 'object' && input !== null) {
      const purposes = (input as { purposes?: unknown }).purposes;
      const single = (input as { purpose?: unknown }).purpose;
      if (
        Array.isArray(purposes) &&
        (purposes.length > 1 || (purposes.length === 1 && single !== undefined))
      ) {
        throw fail(
          'consent/bundled-purposes',
          'one decision must cover exactly one purpose (Recital 32, 43)',
          {
            purposes,
          },
        );
      }
    }
    const lean = leanDecision(input);
    const parsed = lean ? { success: true as const, data: lean } : consentDecisionSchema.safeParse(input);
    if (!parsed.success) {
      const issues = zodIssues(parsed.error);
      throw new PrivacyKitError<ConsentErrorCode>('consent/invalid-decision', 'invalid consent decision', {
        issues,
      });
    }
    const decision = parsed.data;
    const purposeId = decision.purpose ?? decision.purposes?.[0];
    if (!purposeId) throw fail('consent/invalid-decision', 'a decision names its purpose');
    // Only a grant must be an affirmative act. A withdrawal from a box ticked because consent
    // exists, or a refusal by silence, is no consent and must be recorded: refusing it would
    // leave the grant valid.
    const granting = decision.state === 'granted';
    const nonAffirmative = nonAffirmativeMethods.find((method) => method === decision.method);
    if (nonAffirmative && granting) {
      throw fail(
        methodCodes[nonAffirmative],
        `"${decision.method}" is not an affirmative act, so not consent`,
      );
    }
    if (decision.preTicked && granting) {
      throw fail('consent/pre-ticked-not-consent', 'a pre-ticked box is not consent');
    }
    if (decision.conditionOfService && decision.state === 'granted') {
      throw fail(
        'consent/condition-of-service',
        'consent the service was made conditional on is not freely given (Art 7(4)): let the subject refuse without losing the service',
      );
    }
    if (!consentMethods.has(decision.method) && !nonAffirmative) {
      throw fail('consent/invalid-decision', `unknown collection method "${decision.method}"`);
    }
    if ((decision.source === 'gpc') !== (decision.method === 'gpc-signal')) {
      throw fail(
        'consent/method-source-mismatch',
        'a GPC signal is recorded with source gpc and method gpc-signal',
      );
    }
    if (decision.source === 'gpc' && decision.state !== 'refused') {
      throw fail('consent/method-source-mismatch', 'a GPC signal can only refuse');
    }
    if (decision.method === 'import' && decision.source !== 'import') {
      throw fail('consent/method-source-mismatch', 'method import is for source import');
    }
    if (!importing && (decision.eventId !== undefined || decision.at !== undefined)) {
      throw fail(
        'consent/invalid-decision',
        'eventId and at are set by the ledger; only import() takes them',
      );
    }
    const purpose = retired ? retiredPurpose(purposeId) : consentPurpose(purposeId);
    const conflict = startupConflicts.get(purposeId);
    if (conflict && decision.state === 'granted') throw fail(conflict.code, conflict.message);
    // A dated import may name the notice the subject answered then, superseded or not: the
    // subject is asked again (its state row keeps that notice's hash), but the record is true.
    const historic = importing && decision.at !== undefined;
    const notice = resolveNotice(purposeId, decision.state, decision.notice, historic);
    // Special-category data on consent (Art 9(2)(a)): an affirmative act is not enough. The
    // notice the grant answers decides (this instance publishes its own policy's notices).
    if (granting && explicitNotices.has(notice.hash) && decision.explicit !== true) {
      throw fail(
        'consent/explicit-consent-required',
        `"${purposeId}" rests on explicit consent in the notice this grant answers (version "${notice.version}", Art 9(2)(a)): record the subject's express statement with explicit: true`,
      );
    }
    const jurisdiction = decision.jurisdiction?.toUpperCase() ?? defaultJurisdiction;
    const ageOfConsent = ageOfConsentIn(jurisdiction);
    if (decision.state === 'granted' && decision.age !== undefined && decision.age < ageOfConsent) {
      if (!decision.parentalAuthorisation) {
        throw fail(
          'consent/parental-authorisation-required',
          `below ${ageOfConsent} in ${jurisdiction}, consent must be given or authorised by the holder of parental responsibility (Art 8)`,
        );
      }
    }
    const value: Validated = {
      subjectId: decision.subjectId,
      purpose,
      state: decision.state,
      source: decision.source,
      method: decision.method,
      notice,
      jurisdiction,
    };
    // Set one by one, not spread from conditional objects: imports validate every decision.
    if (decision.evidence) value.evidence = decision.evidence;
    if (decision.age !== undefined) value.age = decision.age;
    if (decision.parentalAuthorisation) value.parental = decision.parentalAuthorisation;
    if (granting && decision.explicit === true) value.explicit = true;
    if (decision.eventId) value.eventId = decision.eventId;
    if (decision.at) value.at = instantOf(decision.at);
    return value;
  }

  // `at` as the ISO instant it names: an import's decisions often share theirs.
  let lastInstant = { text: '', iso: '' };
  function instantOf(text: string): string {
    if (lastInstant.text !== text) lastInstant = { text, iso: new Date(text).toISOString() };
    return lastInstant.iso;
  }

  // This instance's own notice hash per purpose, for the policy object it runs (computed once).
  let ownHashes = { policy, hashes: new Map<string, string>() };
  function ownNoticeHash(purposeId: string): string | undefined {
    if (ownHashes.policy !== policy) ownHashes = { policy, hashes: new Map() };
    let hash = ownHashes.hashes.get(purposeId);
    if (hash === undefined) {
      const purpose = policy.purposes.find((candidate) => candidate.id === purposeId);
      if (!purpose) return undefined;
      hash = purposeNoticeHash(policy, purpose);
      ownHashes.hashes.set(purposeId, hash);
    }
    return hash;
  }

  function resolveNotice(
    purposeId: string,
    state: DecisionState,
    reference:
      | { version?: string | undefined; hash?: string | undefined; language?: string | undefined }
      | undefined,
    historic = false,
  ): NoticeVersion {
    const known = notices.get(purposeId);
    if (!known) throw fail('consent/unknown-notice-version', `no notice is published for "${purposeId}"`);
    let chosen = known.current;
    if (reference?.version !== undefined) {
      const version = known.versions.get(reference.version);
      if (!version) {
        throw fail(
          'consent/unknown-notice-version',
          `notice version "${reference.version}" of "${purposeId}" is unknown`,
        );
      }
      chosen = version;
    } else if (reference?.hash !== undefined && reference.hash !== known.current.hash) {
      // A text published again after another keeps its hash: the current version when it is the
      // text named, else an older one with it.
      chosen = [...known.versions.values()].find((version) => version.hash === reference.hash) ?? chosen;
    }
    if (reference?.hash !== undefined && reference.hash !== chosen.hash) {
      throw fail(
        'consent/unknown-notice-hash',
        `notice hash ${reference.hash} does not match a published notice of "${purposeId}"`,
      );
    }
    // A grant that names no notice answered the text this instance shows. Another instance may
    // have published a newer text since this one started: the subject did not see it, so the
    // grant cannot be recorded against it (and must not be against the superseded one).
    if (state === 'granted' && reference?.version === undefined && reference?.hash === undefined) {
      const own = ownNoticeHash(purposeId);
      if (own !== undefined && own !== chosen.hash) {
        throw fail(
          'consent/notice-outdated',
          `this instance shows a notice of "${purposeId}" that is not the current one ("${known.current.version}", published elsewhere): deploy the current policy`,
        );
      }
    }
    const named = reference?.version !== undefined || reference?.hash !== undefined;
    if (state === 'granted' && chosen.version !== known.current.version && !(historic && named)) {
      throw fail(
        'consent/notice-outdated',
        `notice version "${chosen.version}" of "${purposeId}" is superseded by "${known.current.version}": show the current notice`,
      );
    }
    // The hash proves the text published, in its language: a decision may not claim the subject
    // read another (a translation the ledger never saw). Tags compare case-insensitively (BCP 47).
    if (
      reference?.language !== undefined &&
      reference.language.toLowerCase() !== chosen.language.toLowerCase()
    ) {
      throw fail(
        'consent/unknown-notice-language',
        `notice version "${chosen.version}" of "${purposeId}" was published in "${chosen.language}", not "${reference.language}"`,
      );
    }
    return chosen;
  }

  function sealEvidence(value: Validated, material: Buffer | undefined): string | undefined {
    const data: Record<string, JsonValue> = {};
    if (value.evidence?.ip && ipMode !== 'none') {
      const ip = ipMode === 'full' ? value.evidence.ip.trim() : truncateIp(value.evidence.ip);
      if (ip) data.ip = ip;
    }
    if (value.evidence?.userAgent && keepUserAgent) data.userAgent = value.evidence.userAgent;
    if (value.age !== undefined) data.age = value.age;
    if (value.parental) data.parentalAuthorisation = value.parental;
    if (Object.keys(data).length === 0 || !material) return undefined;
    return seal(material, canonicalJson(data));
  }

  function needsSeal(value: Validated): boolean {
    return Boolean(
      (value.evidence?.ip && ipMode !== 'none') ||
        (value.evidence?.userAgent && keepUserAgent) ||
        value.age !== undefined ||
        value.parental,
    );
  }

  // When a grant made at `at` expires: an import's decisions often share their `at`, and a
  // calendar addition and two ISO conversions cost more than the rest of building the entry.
  let lastExpiry = { at: '', expiresAt: '' };
  function expiryOf(at: string, period: string): string {
    if (lastExpiry.at !== at) lastExpiry = { at, expiresAt: addPeriod(new Date(at), period).toISOString() };
    return lastExpiry.expiresAt;
  }

  function decisionPending(
    value: Validated,
    subjectKey: string,
    at: string,
    renewal: boolean,
    material: Buffer | undefined,
    recordedAt: Date,
  ): { pending: Pending; expiresAt?: string } {
    // Ids are minted at recording time (UUIDv7 in ledger order; an import's old `at` does not scatter them).
    const eventId = value.eventId ?? mintId(recordedAt);
    const expiresAt = value.state === 'granted' && validity !== false ? expiryOf(at, validity) : undefined;
    const sealed = sealEvidence(value, material);
    const entry: DecisionEntry = {
      v: 1,
      subject: subjectKey,
      purpose: value.purpose.id,
      state: value.state,
      renewal,
      notice: {
        id: noticeIdOf(tenant, value.purpose.id),
        version: value.notice.version,
        hash: value.notice.hash,
        language: value.notice.language,
      },
      source: value.source,
      method: value.method,
      jurisdiction: value.jurisdiction,
      at,
    };
    if (expiresAt) entry.expiresAt = expiresAt;
    if (value.explicit) entry.explicit = true;
    if (value.age !== undefined) {
      entry.age = {
        threshold: ageOfConsentIn(value.jurisdiction),
        belowThreshold: value.age < ageOfConsentIn(value.jurisdiction),
        ...(value.parental ? { parentalAuthorisation: value.parental.method } : {}),
      };
    }
    // The ciphertext stays outside the hash; its digest inside ties it to the entry, and
    // erasing it (or its key) later leaves the entry and the tree intact.
    if (sealed) entry.evidence = sha256Hex(sealed);
    const pending: Pending = {
      eventId,
      kind: 'decision',
      subjectKey,
      purpose: value.purpose.id,
      entry: entry as unknown as Record<string, JsonValue>,
      decision: entry,
    };
    if (sealed) pending.sealed = sealed;
    return expiresAt ? { pending, expiresAt } : { pending };
  }

  function stateRowOf(
    value: { subjectId: string; subjectKey: string; purpose: string; state: ConsentState; source: string },
    pending: Pending,
    seq: number,
    extra: {
      renewal: boolean;
      notice: NoticeVersion;
      at: string;
      expiresAt?: string | undefined;
      key?: Buffer | undefined;
    },
  ): StateRow {
    return {
      tenant,
      subject_key: value.subjectKey,
      purpose: value.purpose,
      subject_id: value.subjectId,
      state: value.state,
      renewal: extra.renewal ? 1 : 0,
      event_id: pending.eventId,
      seq,
      notice_version: extra.notice.version,
      notice_hash: extra.notice.hash,
      source: value.source,
      decided_at: extra.at,
      expires_at: extra.expiresAt ?? null,
      gpc_conflict: 0,
      key_material: extra.key && !storeKeys.has(extra.key) ? extra.key.toString('base64') : null,
    };
  }

  async function readState(
    trx: Kysely<any>,
    subjectKey: string,
    purpose: string,
  ): Promise<StateRow | undefined> {
    return (
      await run<'tenant' | 'subject' | 'purpose', StateRow>(trx, statements.state, {
        tenant,
        subject: subjectKey,
        purpose,
      })
    ).rows[0];
  }

  function isValidGrant(row: StateRow | undefined, at: Date): boolean {
    return Boolean(row && row.state === 'granted' && (!row.expires_at || row.expires_at > at.toISOString()));
  }

  type PriorState = { state: string | null; expires_at: string | null; key_material: string | null };

  /** What a decision writes, given the current state row of its subject × purpose. */
  function planDecision(
    value: Validated,
    subjectKey: string,
    at: string,
    now: Date,
    prior: PriorState | undefined,
    storeKey: StoreKeys | undefined,
    shreddedSince: ((mark: number) => boolean) | undefined,
  ) {
    const renewal =
      value.state === 'granted' &&
      prior?.state === 'granted' &&
      (!prior.expires_at || prior.expires_at > new Date(at).toISOString());
    const material = sealingKey(value, subjectKey, prior?.key_material, storeKey, shreddedSince);
    return { renewal, material, ...decisionPending(value, subjectKey, at, renewal, material, now) };
  }

  function decisionStateRow(
    value: Validated,
    subjectKey: string,
    at: string,
    plan: ReturnType<typeof planDecision>,
    seq: number,
  ): Record<(typeof stateColumns)[number], unknown> {
    return stateRowOf(
      {
        subjectId: value.subjectId,
        subjectKey,
        purpose: value.purpose.id,
        state: value.state,
        source: value.source,
      },
      plan.pending,
      seq,
      { renewal: plan.renewal, notice: value.notice, at, expiresAt: plan.expiresAt, key: plan.material },
    ) as unknown as Record<(typeof stateColumns)[number], unknown>;
  }

  // SQLite opened by openDatabase: a decision runs as one synchronous transaction on the
  // connection itself (no await between its statements, so nothing else can interleave).
  type SyncStatements = Record<
    | 'begin'
    | 'commit'
    | 'rollback'
    | 'prior'
    | 'priorAfter'
    | 'exists'
    | 'insert'
    | 'upsert'
    | 'grant'
    | 'shredded',
    SqliteStatement
  > & { conn: SqliteConnection };
  let sync: SyncStatements | undefined;
  function syncStatements(): SyncStatements | undefined {
    if (engine !== 'sqlite') return undefined;
    // An instance's connection never changes: asking for it again would give the connection its
    // busy timeout back (see tryBeginImmediate), a pragma every decision.
    if (sync) return sync.conn.open ? sync : undefined;
    const conn = sqliteConnectionOf(db);
    if (!conn) return undefined;
    sync = {
      conn,
      begin: conn.prepare('begin immediate'),
      commit: conn.prepare('commit'),
      rollback: conn.prepare('rollback'),
      prior: conn.prepare(statements.prior.sql),
      // The prior state and the staleness check in one statement: one row always, `present`
      // null when the entry before ours is missing, the state columns null without a row;
      // `marker`, the head row's key-store marker (see withoutStore).
      priorAfter: conn.prepare(
        `select (select 1 from "${T.ledger}" where "id" = ?) as "present", s."state", s."expires_at", s."key_material",` +
          ` (select "evidence_keys" from "${T.head}" where "tenant" = ?) as "marker"` +
          ` from (select 1) as "one" left join "${T.state}" as s` +
          ` on s."tenant" = ? and s."purpose" = ? and s."subject_key" = ?`,
      ),
      exists: conn.prepare(statements.entryExists.sql),
      insert: conn.prepare(statements.insertEntry.sql),
      upsert: conn.prepare(statements.upsertState.sql),
      grant: conn.prepare(statements.grant.sql),
      // A shredding of the subject among entries [?, ?): see sealingKey.
      shredded: conn.prepare(
        `select 1 from "${T.ledger}" where "id" >= ? and "id" < ? and "kind" = 'subject-shredded' and "subject_key" = ? limit 1`,
      ),
    };
    return sync;
  }

  /**
   * The common case of `record()` on SQLite, synchronously: from the remembered tree, no
   * checkpoint due. Returns undefined (having written nothing) whenever it cannot take it —
   * another connection appended, the connection is in use, a checkpoint is due — and the
   * asynchronous path runs instead.
   */
  function recordNow(
    value: Validated,
    subjectKey: string,
    at: string,
    now: Date,
    storeKey: StoreKeys | undefined,
  ): RecordedDecision | undefined {
    const remembered = rememberedHead;
    if (!remembered || checkpointDue(remembered.head, remembered.frontier.size + 1, now)) return undefined;
    const st = syncStatements();
    if (!st || st.conn.inTransaction) return undefined;
    // Without waiting: when another connection holds the write lock (perhaps one of this process,
    // which could not commit while this thread slept in SQLite's busy handler), the asynchronous
    // path waits for it off the thread.
    try {
      if (!tryBeginImmediate(st.conn)) return undefined;
    } catch {
      return undefined;
    }
    let stale = false;
    try {
      // The entry before ours must exist (no other writer rolled the tail back), read with the
      // prior state when the decision needs it.
      const previous = remembered.frontier.size > 0 ? base + remembered.frontier.size - 1 : undefined;
      let prior: PriorState | undefined;
      // Evidence an instance without a store would seal, on a ledger marked as keeping its keys
      // in one since this instance last looked: the asynchronous path decides (withoutStore).
      const unmarked = !keyStore && !storeMarked && needsSeal(value);
      if (value.state === 'granted' || needsSeal(value)) {
        if (previous === undefined) {
          if (unmarked) {
            st.rollback.run();
            return undefined;
          }
          prior = st.prior.get(
            ...parametersOf(statements.prior, { tenant, subject: subjectKey, purpose: value.purpose.id }),
          ) as PriorState | undefined;
        } else {
          const row = st.priorAfter.get(
            previous,
            tenant,
            tenant,
            value.purpose.id,
            subjectKey,
          ) as PriorState & {
            present: number | null;
            marker: string | null;
          };
          if (unmarked && row.marker === 'store') {
            storeMarked = true;
            st.rollback.run();
            return undefined;
          }
          stale = row.present === null;
          if (row.state !== null) prior = row;
        }
      } else if (previous !== undefined) {
        stale = st.exists.get(...parametersOf(statements.entryExists, { id: previous })) === undefined;
      }
      const plan = stale
        ? undefined
        : planDecision(
            value,
            subjectKey,
            at,
            now,
            prior,
            storeKey,
            storeKey &&
              ((mark) =>
                mark < remembered.frontier.size &&
                st.shredded.get(base + mark, base + remembered.frontier.size, subjectKey) !== undefined),
          );
      const { rows, seqs, frontier } = plan
        ? ledgerRows(remembered.frontier, [plan.pending], now.toISOString())
        : { rows: [], seqs: [], frontier: remembered.frontier };
      const seq = seqs[0] as number;
      if (plan) {
        try {
          st.insert.run(...parametersOf(statements.insertEntry, rows[0] as (typeof rows)[number]));
        } catch (error) {
          if (!isUniqueViolation(error)) throw error;
          stale = true;
        }
      }
      if (stale || !plan) {
        st.rollback.run();
        rememberedHead = undefined;
        return undefined;
      }
      st.upsert.run(
        ...parametersOf(statements.upsertState, decisionStateRow(value, subjectKey, at, plan, seq)),
      );
      st.commit.run();
      rememberedHead = { head: remembered.head, frontier };
      knownFrontier = frontier;
      return recorded(plan.pending, seq, value.state, plan.renewal, at, value.notice, plan.expiresAt);
    } catch (error) {
      if (st.conn.inTransaction) st.rollback.run();
      throw error;
    }
  }

  /**
   * An instance without a key store on a ledger whose evidence keys live in one: a grant's
   * evidence cannot be sealed where the others' keys are (a state-row key would sit in the
   * ledger's backups), so the grant is refused; a refusal or withdrawal goes on without it
   * (Art 7(3)), as while a store is down.
   */
  function withoutStore(value: Validated): Validated {
    if (keyStore || !storeMarked || !needsSeal(value)) return value;
    if (value.state === 'granted') {
      throw fail(
        'consent/key-store-required',
        'this ledger keeps its evidence keys in a key store: record grants with evidence through an instance configured with it (evidenceKeys)',
      );
    }
    const { evidence: _evidence, age: _age, parental: _parental, ...bare } = value;
    return bare;
  }

  /** Whether the tenant's head row, read with `q` (under the append lock), marks a key store. */
  async function markedIn(q: Kysely<any>): Promise<boolean> {
    const head = (await q
      .selectFrom(T.head)
      .select('evidence_keys')
      .where('tenant', '=', tenant)
      .executeTakeFirst()) as { evidence_keys: string | null } | undefined;
    if (head?.evidence_keys === 'store') storeMarked = true;
    return storeMarked;
  }

  /** {@link withoutStore}, the marker read again under the lock when the value would seal. */
  async function withoutStoreUnderLock(q: Kysely<any>, value: Validated): Promise<Validated> {
    if (!keyStore && !storeMarked && needsSeal(value)) await markedIn(q);
    return withoutStore(value);
  }

  async function writeDecision(value: Validated): Promise<RecordedDecision> {
    if (!keyStore) return writeKeyedDecision(withoutStore(value), undefined);
    const subjectKey = pseudonym(value.subjectId);
    return withKeyRetry(async () => {
      // Before anything is written: a store that fails leaves no entry behind.
      const keyed = await keyedOrBare(value, subjectKey);
      return writeKeyedDecision(keyed.value, keyed.storeKey);
    });
  }

  async function writeKeyedDecision(
    decided: Validated,
    storeKey: StoreKeys | undefined,
  ): Promise<RecordedDecision> {
    const subjectKey = pseudonym(decided.subjectId);
    const now = clock.now();
    const at = decided.at ?? now.toISOString();
    if (!decided.eventId) {
      const done = recordNow(decided, subjectKey, at, now, storeKey);
      if (done) return done;
    }
    return appendTransaction(
      async (ctx) => {
        const { trx } = ctx;
        // Under the lock: an instance with a store may have marked the tenant since this one
        // last looked (withoutStore then refuses the grant or drops what it would seal).
        const value = await withoutStoreUnderLock(trx, decided);
        if (value.eventId) await assertNewEvents(trx, [value.eventId]);
        const prior =
          value.state === 'granted' || needsSeal(value)
            ? (
                await run<'tenant' | 'subject' | 'purpose', PriorState>(trx, statements.prior, {
                  tenant,
                  subject: subjectKey,
                  purpose: value.purpose.id,
                })
              ).rows[0]
            : undefined;
        const shredded = storeKey
          ? await shreddedBetween(trx, storeKey.mark, ctx.frontier.size, [subjectKey])
          : undefined;
        const plan = planDecision(
          value,
          subjectKey,
          at,
          now,
          prior,
          storeKey,
          shredded && (() => shredded.size > 0),
        );
        const [seq] = await append(ctx, [plan.pending], now);
        await run(trx, statements.upsertState, decisionStateRow(value, subjectKey, at, plan, seq as number));
        return recorded(
          plan.pending,
          seq as number,
          value.state,
          plan.renewal,
          at,
          value.notice,
          plan.expiresAt,
        );
      },
      { remembered: true },
    );
  }

  function recorded(
    pending: Pending,
    seq: number,
    state: ConsentState,
    renewal: boolean,
    at: string,
    notice: NoticeVersion,
    expiresAt: string | undefined,
  ): RecordedDecision {
    return {
      eventId: pending.eventId,
      seq,
      purpose: pending.purpose as string,
      state,
      renewal,
      at,
      ...(expiresAt ? { expiresAt } : {}),
      notice: { id: noticeIdOf(tenant, pending.purpose as string), ...notice },
    };
  }

  async function assertNewEvents(trx: Kysely<any>, eventIds: readonly string[]): Promise<void> {
    const seen = new Set<string>();
    for (const id of eventIds) {
      if (seen.has(id)) throw fail('consent/duplicate-event', `event ${id} appears twice`, { eventId: id });
      seen.add(id);
    }
    const existing = [...(await lookupSeqs(trx, 'event_id', eventIds)).keys()][0];
    if (existing) {
      throw fail('consent/duplicate-event', `event ${existing} is already in the ledger (replay?)`, {
        eventId: existing,
      });
    }
  }

  async function withNoticeRetry<R>(fn: () => R): Promise<R> {
    try {
      return fn();
    } catch (error) {
      // Another process may have published a notice since we loaded ours.
      const code = (error as Err).code;
      if (code === 'consent/unknown-notice-version' || code === 'consent/unknown-notice-hash') {
        await loadNotices();
        return fn();
      }
      throw error;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Notices

  // Purposes whose notice in this instance's policy cannot be the one a subject is shown: its
  // content clashes with a published notice of the same version (edited without a new version),
  // or its version was superseded by another instance. Found at start-up, where throwing would
  // stop every call — withdrawals included: grants of these purposes are refused, the rest works.
  type StartupConflict = { code: ConsentErrorCode; message: string };
  const startupConflicts = new Map<string, StartupConflict>();

  /**
   * Publishes the notices of `next`. Explicitly (`publishNotice`) a clash is an error; at
   * start-up (`startup`), an instance never moves a purpose's notice back to a version that
   * another instance already superseded (a stale deploy restarting), and a clash of content
   * under one version refuses grants of that purpose instead of failing the ledger.
   */
  async function publish(
    next: Policy,
    version: string | undefined,
    mode: 'explicit' | 'startup' = 'explicit',
  ): Promise<PublishResult> {
    if (typeof next !== 'object' || next === null || !Array.isArray(next.purposes)) {
      throw fail('consent/invalid-options', 'publishNotice takes a policy made by definePolicy()');
    }
    if (next.tenant !== tenant) {
      throw fail(
        'consent/invalid-options',
        `policy tenant "${next.tenant}" is not this ledger's tenant "${tenant}"`,
      );
    }
    let result: PublishResult = { changed: [], added: [], unchanged: [], retired: [] };
    const label = version ?? next.version;
    // What the notice table's columns hold on every engine: refused here, not by the database.
    // No surrounding spaces either: MySQL's PAD SPACE collations would find "2024-01-01 " as the
    // row of "2024-01-01" and the new text would never be stored.
    if (
      typeof label !== 'string' ||
      label.length === 0 ||
      label.length > 100 ||
      !wellFormedText(label) ||
      label.trim() !== label
    ) {
      throw fail(
        'consent/invalid-options',
        'a notice version is 1 to 100 characters of well-formed text, without leading or trailing spaces',
      );
    }
    for (const purpose of consentPurposes(next)) {
      if (purpose.id.length > 100) {
        throw fail(
          'consent/invalid-options',
          `purpose id "${purpose.id.slice(0, 40)}…" is longer than 100 characters`,
        );
      }
      const bytes = Buffer.byteLength(canonicalJson(purposeNoticeContent(next, purpose)));
      if (bytes > 65_535) {
        throw fail(
          'consent/invalid-options',
          `the notice of "${purpose.id}" is ${bytes} bytes: at most 65,535 can be stored (shorten its texts)`,
        );
      }
    }
    const conflicts = new Map<string, StartupConflict>();
    await appendTransaction(async (ctx) => {
      const { trx } = ctx;
      await loadNoticesWith(trx);
      result = { changed: [], added: [], unchanged: [], retired: [] };
      conflicts.clear();
      const now = clock.now();
      const pending: Pending[] = [];
      const rows: Record<string, unknown>[] = [];
      const declared = consentPurposes(next);
      for (const purpose of declared) {
        const hash = purposeNoticeHash(next, purpose);
        const known = notices.get(purpose.id);
        if (known && known.current.hash === hash) {
          result.unchanged.push(purpose.id);
          continue;
        }
        const clash = known?.versions.get(label);
        if (clash && clash.hash !== hash) {
          const message = `notice version "${label}" of "${purpose.id}" was published with other content: give a new version`;
          if (mode === 'explicit') throw fail('consent/notice-version-conflict', message);
          conflicts.set(purpose.id, { code: 'consent/notice-version-conflict', message });
          continue;
        }
        if (clash && known) {
          // This very version was published, then superseded by another: going back to it
          // would silently invalidate every grant given on the newer notice.
          if (mode === 'startup') {
            conflicts.set(purpose.id, {
              code: 'consent/notice-outdated',
              message: `this instance's policy shows notice version "${label}" of "${purpose.id}", superseded by "${known.current.version}": deploy the current policy`,
            });
            continue;
          }
          throw fail(
            'consent/notice-version-conflict',
            `notice version "${label}" of "${purpose.id}" was superseded by "${known.current.version}": publish its content under a new version`,
          );
        }
        (known ? result.changed : result.added).push(purpose.id);
        const notice = { id: noticeIdOf(tenant, purpose.id), version: label, hash, language: next.language };
        pending.push({
          eventId: newId(now),
          kind: 'notice-published',
          purpose: purpose.id,
          // Controller contact details ride beside the notice (outside its hash): receipts quote them.
          entry: {
            v: 1,
            purpose: purpose.id,
            notice,
            controller: noticeControllerOf(next),
            at: now.toISOString(),
          },
        });
        rows.push({
          tenant,
          purpose: purpose.id,
          version: label,
          hash,
          language: next.language,
          content: canonicalJson(purposeNoticeContent(next, purpose)),
          published_at: now.toISOString(),
        });
      }
      const ids = new Set(declared.map((purpose) => purpose.id));
      result.retired = [...notices.keys()].filter((id) => !ids.has(id)).sort();
      if (pending.length === 0) return;
      const seqs = await append(ctx, pending, now);
      for (const [i, row] of rows.entries()) {
        const existing = await trx
          .selectFrom(T.notices)
          .select('version')
          .where('tenant', '=', tenant)
          .where('purpose', '=', row.purpose as string)
          .where('version', '=', label)
          .executeTakeFirst();
        if (existing) {
          await trx
            .updateTable(T.notices)
            .set({ seq: seqs[i] })
            .where('tenant', '=', tenant)
            .where('purpose', '=', row.purpose as string)
            .where('version', '=', label)
            .execute();
        } else {
          await trx
            .insertInto(T.notices)
            .values({ ...row, seq: seqs[i] })
            .execute();
        }
      }
    });
    await loadNotices();
    policy = next;
    startupConflicts.clear();
    for (const [purpose, conflict] of conflicts) startupConflicts.set(purpose, conflict);
    return result;
  }

  async function loadNoticesWith(trx: Kysely<any>): Promise<void> {
    const rows = await trx
      .selectFrom(T.notices)
      .select(['purpose', 'version', 'hash', 'language', 'seq', 'content'])
      .where('tenant', '=', tenant)
      .orderBy('seq')
      .execute();
    notices.clear();
    explicitNotices.clear();
    for (const row of rows) {
      if (noticeNeedsExplicitConsent(row.content)) explicitNotices.add(row.hash);
      const version = { version: row.version, hash: row.hash, language: row.language };
      const state = notices.get(row.purpose) ?? { current: version, versions: new Map() };
      state.versions.set(row.version, version);
      state.current = version;
      notices.set(row.purpose, state);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  function statusOf(purpose: Purpose, row: StateRow | undefined, at: Date): ConsentStatus {
    const current = notices.get(purpose.id)?.current;
    const currentNoticeVersion = current?.version ?? '';
    if (!row) {
      return {
        purpose: purpose.id,
        state: 'none',
        valid: false,
        reconsentRequired: false,
        renewal: false,
        currentNoticeVersion,
        gpcConflict: false,
        dpvStatus: 'dpv:ConsentUnknown',
      };
    }
    const expired = row.state === 'expired' || (row.state === 'granted' && !isValidGrant(row, at));
    const state: ConsentState = expired ? 'expired' : (row.state as ConsentState);
    const reconsentRequired =
      (row.state === 'granted' || expired) && current !== undefined && row.notice_hash !== current.hash;
    // An expired grant is neither a renewal nor in conflict with a later GPC signal, whether or
    // not expireDue has written its expiry yet (the run wrote both as false: it changed the answer).
    const renewal = !expired && Boolean(Number(row.renewal));
    return {
      purpose: purpose.id,
      state,
      valid: state === 'granted' && !reconsentRequired,
      reconsentRequired,
      renewal,
      decidedAt: row.decided_at,
      ...(row.expires_at ? { expiresAt: row.expires_at } : {}),
      eventId: row.event_id,
      source: row.source,
      noticeVersion: row.notice_version,
      currentNoticeVersion,
      gpcConflict: !expired && Boolean(Number(row.gpc_conflict)),
      dpvStatus:
        state === 'granted'
          ? reconsentRequired
            ? 'dpv:ConsentInvalidated'
            : renewal
              ? 'dpv:RenewedConsentGiven'
              : 'dpv:ConsentGiven'
          : dpvOfState[state],
    };
  }

  /** The tree a proof is for: the current one, or an earlier size of it — never a larger one. */
  async function proofTreeSize(requested: number | undefined): Promise<number> {
    const size = (await currentTree()).size;
    if (requested === undefined) return size;
    if (!Number.isInteger(requested) || requested < 0 || requested > size) {
      throw fail('consent/unknown-event', `the ledger has ${size} entries: no tree of size ${requested}`);
    }
    return requested;
  }

  function entryOf(text: string): Record<string, JsonValue> {
    return JSON.parse(text) as Record<string, JsonValue>;
  }

  async function perfectNodesWith(
    q: Kysely<any>,
    wanted: readonly { level: number; index: number }[],
  ): Promise<Map<string, Buffer>> {
    const bySeq = new Map<number, { level: number; index: number }[]>();
    for (const node of wanted) {
      const seq = (node.index + 1) * 2 ** node.level - 1;
      bySeq.set(seq, [...(bySeq.get(seq) ?? []), node]);
    }
    const out = new Map<string, Buffer>();
    const seqs = [...bySeq.keys()];
    for (let i = 0; i < seqs.length; i += 500) {
      const rows = await q
        .selectFrom(T.ledger)
        .select(['id', 'leaf_hash', 'nodes'])
        .where(
          'id',
          'in',
          seqs.slice(i, i + 500).map((seq) => base + seq),
        )
        .execute();
      for (const row of rows) {
        const nodes = row.nodes ? (JSON.parse(row.nodes) as string[]) : [];
        for (const { level, index } of bySeq.get(Number(row.id) - base) ?? []) {
          const value = level === 0 ? row.leaf_hash : nodes[level - 1];
          if (value) out.set(nodeKey(level, index), Buffer.from(value, 'hex'));
        }
      }
    }
    return out;
  }

  const perfectNodesFromDb: PerfectNodes = (wanted) => perfectNodesWith(db, wanted);

  /** A subject's entries in ledger order. */
  async function entriesOf(
    q: Kysely<any>,
    subjectKey: string,
    columns: readonly string[],
  ): Promise<Record<string, any>[]> {
    const seqs = (await lookupSeqs(q, 'subject_key', [subjectKey])).get(subjectKey) ?? [];
    const rows: Record<string, any>[] = [];
    for (let i = 0; i < seqs.length; i += 500) {
      rows.push(
        ...(await q
          .selectFrom(T.ledger)
          .select(columns as string[])
          .where(
            'id',
            'in',
            seqs.slice(i, i + 500).map((seq) => base + seq),
          )
          .where('subject_key', '=', subjectKey)
          .orderBy('id')
          .execute()),
      );
    }
    return rows;
  }

  const perfectNodes: PerfectNodes = perfectNodesFromDb;

  // ---------------------------------------------------------------------------------------------
  // GPC and receipts

  const restsOnConsent = (purpose: Purpose) => purpose.legalBases.some((basis) => basis.basis === 'consent');

  /**
   * Whether a GPC refusal of the grant's purpose was recorded before the grant (earlier `at`, or
   * the same `at` and an earlier seq): then the grant is the subject's choice made after the signal.
   */
  async function gpcRefusedBefore(
    q: AppendContext['trx'],
    subjectKey: string,
    grant: StateRow,
  ): Promise<boolean> {
    const grantSeq = Number(grant.seq);
    const rows = await entriesOf(q, subjectKey, ['seq', 'kind', 'purpose', 'entry']);
    return rows.some((row) => {
      if (row.purpose !== grant.purpose || Number(row.seq) === grantSeq) return false;
      if (row.kind !== 'decision' && row.kind !== 'gpc-signal') return false;
      const entry = entryOf(row.entry);
      // A GPC refusal, or a signal logged over a refusal made another way.
      if (row.kind === 'decision' && (entry.source !== 'gpc' || entry.state !== 'refused')) return false;
      // A live grant is ordered by the ledger (instances' clocks may disagree); an imported
      // one by the time it says it was made.
      if (grant.source !== 'import') return Number(row.seq) < grantSeq;
      const at = entry.at as string;
      return at < grant.decided_at || (at === grant.decided_at && Number(row.seq) < grantSeq);
    });
  }

  /** Whether a `gpc-signal` event of the state row's subject × purpose came after its decision. */
  async function gpcSignalSince(
    q: AppendContext['trx'],
    subjectKey: string,
    state: StateRow,
  ): Promise<boolean> {
    const rows = await entriesOf(q, subjectKey, ['seq', 'kind', 'purpose']);
    return rows.some(
      (row) =>
        row.kind === 'gpc-signal' && row.purpose === state.purpose && Number(row.seq) > Number(state.seq),
    );
  }

  /** One ledger entry by event id, or undefined. */
  async function eventEntry(
    eventId: string,
  ): Promise<{ seq: unknown; kind: string; entry: string; leaf_hash: string } | undefined> {
    const seq = (await lookupSeqs(db, 'event_id', [eventId])).get(eventId)?.[0];
    if (seq === undefined) return undefined;
    return db
      .selectFrom(T.ledger)
      .select(['seq', 'kind', 'entry', 'leaf_hash'])
      .where('id', '=', base + seq)
      .where('event_id', '=', eventId)
      .executeTakeFirst();
  }

  /**
   * The stored notice a decision answered, for its receipt: the content of its version, checked
   * against the hash the decision recorded, and the controller details logged when the version
   * was published (in its `notice-published` entry; absent from entries written before they were).
   */
  async function storedNotice(
    purposeId: string,
    notice: { version: string; hash: string },
  ): Promise<ReceiptNotice> {
    const unavailable = (why: string) =>
      fail(
        'consent/notice-unavailable',
        `notice version "${notice.version}" of "${purposeId}" ${why}: no receipt quotes another text`,
        { purpose: purposeId, version: notice.version, reason: why },
      );
    const row = await db
      .selectFrom(T.notices)
      .select(['hash', 'content', 'seq'])
      .where('tenant', '=', tenant)
      .where('purpose', '=', purposeId)
      .where('version', '=', notice.version)
      .executeTakeFirst();
    if (!row) throw unavailable('is not stored');
    if (row.hash !== notice.hash || sha256Hex(row.content as string) !== notice.hash) {
      throw unavailable('no longer matches the hash the decision recorded');
    }
    let content: StoredNoticeContent;
    try {
      content = storedNoticeContentSchema.parse(JSON.parse(row.content as string));
    } catch (cause) {
      throw new PrivacyKitError<ConsentErrorCode>(
        'consent/notice-unavailable',
        `notice version "${notice.version}" of "${purposeId}" cannot be read`,
        { cause, details: { purpose: purposeId, version: notice.version, reason: 'cannot be read' } },
      );
    }
    const published = await db
      .selectFrom(T.ledger)
      .select(['kind', 'purpose', 'entry'])
      .where('id', '=', base + Number(row.seq))
      .executeTakeFirst();
    if (published?.kind !== 'notice-published' || published.purpose !== purposeId) return { content };
    const entry = entryOf(published.entry);
    if ((entry.notice as { hash?: unknown } | undefined)?.hash !== notice.hash) return { content };
    const controller = noticeControllerSchema.safeParse(entry.controller);
    return controller.success ? { content, controller: controller.data } : { content };
  }

  /**
   * Who to tell of a withdrawal (C06, Art 7(3), 19): the purpose's processors and other
   * controllers in this instance's policy and in the notice the withdrawal answered — the stored
   * one, so a purpose that has left the policy still names the recipients its subjects were told of.
   */
  /**
   * The processors to tell of a withdrawal: the purpose's recipients in the running policy and in
   * each stored notice `versions` names (the one withdrawn against, and the one the withdrawn
   * grant was given on: a processor dropped from the text since still holds what it received).
   */
  async function recipientsToNotify(
    purposeId: string,
    versions: readonly string[],
  ): Promise<WithdrawnNotify[]> {
    const notify = new Map<string, WithdrawnNotify>();
    const ids = policy.purposes.find((purpose) => purpose.id === purposeId)?.recipients ?? [];
    for (const { id, name, kind } of policy.recipients) {
      if (ids.includes(id) && kind !== 'internal') notify.set(id, { id, name, kind });
    }
    const rows = await db
      .selectFrom(T.notices)
      .select(['version', 'content'])
      .where('tenant', '=', tenant)
      .where('purpose', '=', purposeId)
      .where('version', 'in', [...new Set(versions)])
      .execute();
    // The withdrawn-against version first, then the older one: a name is taken from the newest text.
    rows.sort((a, b) => versions.indexOf(a.version as string) - versions.indexOf(b.version as string));
    for (const row of rows) {
      let stored: unknown;
      try {
        stored = (JSON.parse(row.content as string) as { recipients?: unknown }).recipients;
      } catch {
        stored = undefined;
      }
      for (const recipient of Array.isArray(stored) ? stored : []) {
        const { id, name, kind } = (recipient ?? {}) as Record<string, unknown>;
        if (typeof id !== 'string' || typeof name !== 'string' || typeof kind !== 'string') continue;
        if (kind !== 'internal' && !notify.has(id)) notify.set(id, { id, name, kind } as WithdrawnNotify);
      }
    }
    return [...notify.values()];
  }

  // ---------------------------------------------------------------------------------------------

  const ledger: ConsentLedger = {
    tenant,

    async record(decision) {
      await ready();
      const reload = freshNotices();
      if (reload) await reload;
      const value = await withNoticeRetry(() => validate(decision, false));
      return writeDecision(value);
    },

    async withdraw(subjectId, purposeId, options) {
      const opts = optionsOf(options);
      pseudonym(subjectId); // the same consent/invalid-subject as every method taking a subject id
      const decision: ConsentDecision = {
        subjectId,
        purpose: purposeId,
        state: 'withdrawn',
        source: opts.source ?? 'api',
        method: opts.method ?? 'api-call',
        ...(opts.jurisdiction ? { jurisdiction: opts.jurisdiction } : {}),
        ...(opts.evidence ? { evidence: opts.evidence } : {}),
      };
      await ready();
      const subjectKey = pseudonym(subjectId); // (the secret is known once ready)
      // The notice the grant being withdrawn was given on (read before the withdrawal replaces it);
      // a purpose that is not text is record()'s consent/invalid-decision below.
      const withdrawn = (
        typeof purposeId !== 'string'
          ? undefined
          : await db
              .selectFrom(T.state)
              .select(['state', 'notice_version'])
              .where('tenant', '=', tenant)
              .where('purpose', '=', purposeId)
              .where('subject_key', '=', subjectKey)
              .executeTakeFirst()
      ) as { state: string; notice_version: string } | undefined;
      let done: RecordedDecision;
      try {
        done = await ledger.record(decision);
      } catch (error) {
        const code = (error as Err).code;
        if (code !== 'consent/unknown-purpose' && code !== 'consent/not-consent-purpose') throw error;
        if (!notices.has(purposeId)) throw error;
        // The purpose left the policy or consent since the subject decided: withdrawal must stay
        // possible (Art 7(3)), against the last notice published for it.
        done = await writeDecision(await withNoticeRetry(() => validate(decision, false, true)));
      }
      // Recipients are told of a withdrawal of consent they may have acted on (Art 19): none
      // when no grant was in force (never given, refused, already withdrawn).
      if (withdrawn?.state !== 'granted') return { ...done, notify: [] };
      const versions = [done.notice.version, withdrawn.notice_version];
      return { ...done, notify: await recipientsToNotify(purposeId, versions) };
    },

    async current(subjectId, options) {
      const opts = optionsOf(options);
      await ready();
      await freshNotices();
      const at = dateOption(opts.at, () => clock.now());
      const subjectKey = pseudonym(subjectId);
      const wanted = consentPurposes(policy);
      const rows =
        wanted.length === 0
          ? []
          : ((await db
              .selectFrom(T.state)
              .selectAll()
              .where('tenant', '=', tenant)
              .where(
                'purpose',
                'in',
                wanted.map((purpose) => purpose.id),
              )
              .where('subject_key', '=', subjectKey)
              .execute()) as StateRow[]);
      const purposes: Record<string, ConsentStatus> = {};
      for (const purpose of wanted) {
        purposes[purpose.id] = statusOf(
          purpose,
          rows.find((row) => row.purpose === purpose.id),
          at,
        );
      }
      return { subjectKey, purposes };
    },

    async mayProcess(subjectId, purposeId, options) {
      const opts = optionsOf(options);
      const at = opts.at === undefined ? undefined : dateOption(opts.at, () => clock.now());
      if (!isReady) await ready();
      const reload = freshNotices();
      if (reload) await reload;
      consentPurpose(purposeId);
      type GrantRow = { state: string; expires_at: string | null; notice_hash: string };
      const values = { tenant, subject: pseudonym(subjectId), purpose: purposeId };
      // SQLite: read on the connection itself, outside any transaction (committed rows only).
      const st = syncStatements();
      const row =
        st && !st.conn.inTransaction
          ? (st.grant.get(...parametersOf(statements.grant, values)) as GrantRow | undefined)
          : (await run<keyof typeof values, GrantRow>(db, statements.grant, values)).rows[0];
      // The same answer as current(): a granted, unexpired decision on the current notice.
      if (row?.state !== 'granted') return false;
      if (row.expires_at && row.expires_at <= (at ?? clock.now()).toISOString()) return false;
      const current = notices.get(purposeId)?.current;
      return current === undefined || row.notice_hash === current.hash;
    },

    async history(subjectId) {
      await ready();
      const subjectKey = pseudonym(subjectId);
      const rows = await entriesOf(db, subjectKey, ['seq', 'event_id', 'kind', 'purpose', 'entry', 'sealed']);
      const pairs = [
        ...new Set(rows.flatMap((row) => (row.sealed && row.purpose ? [row.purpose as string] : []))),
      ].map((purpose) => ({ subjectKey, purpose }));
      // A pair's evidence may be sealed under its state-row key, the store's, or both in turn (an
      // instance that ran without the store meanwhile): each is tried, GCM rejects the wrong one.
      const inState = pairs.length > 0 ? await stateKeys(db, pairs) : new Map<string, Buffer>();
      const inStore = keyStore && pairs.length > 0 ? await fromKeyStore(pairs, false) : undefined;
      const open = (purpose: string, sealed: string): string | undefined => {
        const pair = pairKey(subjectKey, purpose);
        const first = inState.get(pair);
        const opened = first ? unseal(first, sealed) : undefined;
        if (opened !== undefined) return opened;
        const second = inStore?.get(pair);
        return second ? unseal(second, sealed) : undefined;
      };
      return rows.map((row): ConsentHistoryEntry => {
        const entry = entryOf(row.entry);
        const item: ConsentHistoryEntry = {
          eventId: row.event_id,
          seq: Number(row.seq),
          kind: row.kind,
          at: entry.at as string,
        };
        if (typeof entry.purpose === 'string') item.purpose = entry.purpose;
        if (row.kind === 'decision') {
          item.state = entry.state as ConsentState;
          item.renewal = Boolean(entry.renewal);
          item.notice = entry.notice as ConsentHistoryEntry['notice'];
          item.source = entry.source as string;
          item.method = entry.method as string;
          item.jurisdiction = entry.jurisdiction as string;
          if (entry.expiresAt) item.expiresAt = entry.expiresAt as string;
          if (entry.explicit === true) item.explicit = true;
        }
        if (row.kind === 'expiry') item.state = 'expired';
        if (entry.evidence) {
          const opened = row.sealed && row.purpose ? open(row.purpose as string, row.sealed) : undefined;
          item.evidence = opened
            ? (JSON.parse(opened) as Exclude<ConsentHistoryEntry['evidence'], string>)
            : 'unavailable';
        }
        return item;
      });
    },

    async consentRecords(subjectId, options) {
      const opts = optionsOf(options);
      const at = dateOption(opts.at, () => clock.now());
      const events = await ledger.history(subjectId);
      await freshNotices();
      const subjectKey = pseudonym(subjectId);
      const byPurpose = new Map<string, ConsentHistoryEntry[]>();
      // A shredding applies to every purpose decided before it: each such record lists it among
      // its events (a purpose first decided after it has evidence the shredding never touched).
      const shreddings = events.filter((item) => item.kind === 'subject-shredded');
      for (const item of events) {
        if (item.purpose === undefined || item.kind === 'subject-shredded') continue;
        const items = byPurpose.get(item.purpose);
        if (items) items.push(item);
        else byPurpose.set(item.purpose, [item]);
      }
      if (byPurpose.size === 0) return [];
      const rows = (await db
        .selectFrom(T.state)
        .selectAll()
        .where('tenant', '=', tenant)
        .where('purpose', 'in', [...byPurpose.keys()])
        .where('subject_key', '=', subjectKey)
        .execute()) as StateRow[];
      const records: ConsentRecord[] = [];
      for (const [purposeId, items] of [...byPurpose].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const row = rows.find((candidate) => candidate.purpose === purposeId);
        const status = statusOf({ id: purposeId } as Purpose, row, at);
        // A purpose the policy no longer rests on consent: no grant of it allows processing.
        const retired = !consentPurposes(policy).some((purpose) => purpose.id === purposeId);
        const given =
          status.dpvStatus === 'dpv:ConsentGiven' || status.dpvStatus === 'dpv:RenewedConsentGiven';
        // The notice of the state in force; of the last decision recorded once the subject was shredded.
        const decisions = items.filter((item) => item.kind === 'decision' && item.notice !== undefined);
        const answered = row
          ? decisions.find(
              (item) => item.notice?.version === row.notice_version && item.notice.hash === row.notice_hash,
            )
          : decisions[decisions.length - 1];
        const notice = answered?.notice;
        if (!notice) continue; // (no decision of it in the subject's history: nothing to describe)
        const granted = row ? items.find((item) => item.eventId === row.event_id) : undefined;
        records.push(
          buildConsentRecord({
            tenant,
            subjectId,
            subjectKey,
            purposeId,
            noticeId: notice.id,
            notice: { version: notice.version, hash: notice.hash, language: notice.language },
            stored: await storedNotice(purposeId, notice).catch((error: unknown) => {
              if ((error as Err).code !== 'consent/notice-unavailable') throw error;
              const { reason } = (error as PrivacyKitError).details as { reason: string };
              return { unavailable: `the text of notice version "${notice.version}" ${reason}` };
            }),
            status: retired && given ? 'dpv:ConsentInvalidated' : status.dpvStatus,
            retired,
            explicit: granted?.explicit === true,
            expiresAt: status.expiresAt,
            withdrawalMethod,
            events: eventsWithShreddings(items, shreddings).map(recordEventOf),
          }),
        );
      }
      return records;
    },

    async verify(options) {
      const opts = optionsOf(options);
      await ready();
      const trusted = opts.publicKeys ?? (opts.publicKey ? [opts.publicKey] : keys.trusted);
      const head = await readHead();
      const heads = (
        await db.selectFrom(T.treeHeads).selectAll().where('tenant', '=', tenant).orderBy('size').execute()
      ).map(
        (row): SignedTreeHead => ({
          tenant,
          treeSize: Number(row.size),
          rootHash: row.root_hash,
          timestamp: row.timestamp,
          keyId: row.key_id,
          signature: row.signature,
        }),
      );
      if (opts.head) heads.push(opts.head);
      heads.sort((a, b) => a.treeSize - b.treeSize);
      let checkedHeads = 0;
      let lastGood = 0;
      const bad = (seq: number, reason: string, size: number): VerifyResult => ({
        ok: false,
        size,
        firstBadSeq: seq,
        reason,
        signedHeads: checkedHeads,
      });
      for (const sth of heads) {
        if (sth.tenant !== tenant || !trusted.some((key) => verifyTreeHead(sth, key))) {
          return bad(sth.treeSize, `signed head of size ${sth.treeSize} has an invalid signature`, 0);
        }
      }
      let frontier = emptyFrontier();
      let headIndex = 0;
      const checkHeads = (): VerifyResult | undefined => {
        while (headIndex < heads.length && (heads[headIndex] as SignedTreeHead).treeSize <= frontier.size) {
          const sth = heads[headIndex] as SignedTreeHead;
          headIndex++;
          if (sth.treeSize === 0) continue;
          if (sth.treeSize !== frontier.size) continue;
          checkedHeads++;
          if (hex(frontierRoot(frontier)) !== sth.rootHash) {
            return bad(
              lastGood,
              `entries before ${sth.treeSize} do not match the signed head of that size (edited, inserted, reordered or forked)`,
              frontier.size,
            );
          }
          lastGood = sth.treeSize;
        }
        return undefined;
      };
      const checkpointSize = Number(head.size);
      // Sealed evidence, current state and lookups, checked against the entries as they pass.
      const reconciler = createReconciler({
        db,
        tenant,
        base,
        indexedSize: Number(head.indexed_size),
        // A stored id no decision could carry (an edited row) is reported, not thrown.
        pseudonym: (subjectId) => {
          try {
            return pseudonym(subjectId);
          } catch {
            return '';
          }
        },
        lookup: (column, values) => lookupSeqs(db, column, values),
      });
      const discrepancy = (found: Discrepancy, size: number): VerifyResult => ({
        ok: false,
        size,
        ...(found.seq !== undefined ? { firstBadSeq: found.seq } : {}),
        reason: found.reason,
        signedHeads: checkedHeads,
      });
      let after = base - 1;
      for (;;) {
        const rows = await readEntryPage(db, { tenant, base, after, end: base + SEQ_SPAN, limit: 2000 });
        if (rows.length === 0) break;
        const scanned: { seq: number; row: EntryRow; entry: Record<string, JsonValue> }[] = [];
        for (const row of rows) {
          const seq = Number(row.id) - base;
          const expected = frontier.size;
          if (seq !== expected) return bad(expected, `entry ${expected} is missing`, expected);
          if (Number(row.seq) !== seq) {
            return bad(
              seq,
              `entry ${seq} does not belong at this position (moved, swapped or inserted)`,
              seq,
            );
          }
          let entry: Record<string, JsonValue>;
          try {
            entry = entryOf(row.entry);
          } catch {
            return bad(seq, `entry ${seq} is not JSON`, seq);
          }
          if (!isCanonicalEntry(row.entry, entry)) return bad(seq, `entry ${seq} is not canonical JSON`, seq);
          if (
            entry.seq !== seq ||
            entry.tenant !== tenant ||
            entry.id !== row.event_id ||
            entry.kind !== row.kind ||
            (entry.subject ?? null) !== (row.subject_key ?? null) ||
            (entry.purpose ?? null) !== (row.purpose ?? null)
          ) {
            return bad(
              seq,
              `entry ${seq} does not belong at this position (moved, swapped or inserted)`,
              seq,
            );
          }
          const leaf = leafHash(row.entry);
          if (hex(leaf) !== row.leaf_hash) return bad(seq, `entry ${seq} was edited: its hash changed`, seq);
          const next = appendLeaf(frontier, leaf);
          const storedNodes = row.nodes ? (JSON.parse(row.nodes) as string[]) : [];
          if (storedNodes.join() !== next.completed.map(hex).join()) {
            return bad(seq, `tree nodes stored with entry ${seq} do not match the entries`, seq);
          }
          frontier = next.frontier;
          const headProblem = checkHeads();
          if (headProblem) return headProblem;
          if (
            frontier.size === checkpointSize &&
            head.frontier !== JSON.stringify(frontier.hashes.map(hex))
          ) {
            return bad(lastGood, 'the head row does not match the entries', frontier.size);
          }
          scanned.push({ seq, row, entry });
        }
        const found = await reconciler.page(scanned);
        if (found) return discrepancy(found, frontier.size);
        after = Number(rows[rows.length - 1]?.id);
      }
      const size = frontier.size;
      const beyond = heads.find((sth) => sth.treeSize > size);
      if (beyond) {
        return bad(
          size,
          `the ledger has ${size} entries but a signed head covers ${beyond.treeSize}: its tail was truncated`,
          size,
        );
      }
      if (checkpointSize > size) {
        return bad(
          size,
          `the head says ${checkpointSize} entries but the ledger holds ${size} (rows deleted at the end)`,
          size,
        );
      }
      if (checkpointSize === 0 && head.frontier !== '[]') {
        return bad(0, 'the head row does not match the entries', size);
      }
      const found = await reconciler.finish(size);
      if (found) return discrepancy(found, size);
      return { ok: true, size, signedHeads: checkedHeads };
    },

    async receipt(eventId) {
      if (
        typeof eventId !== 'string' ||
        eventId.length === 0 ||
        eventId.length > 64 ||
        !wellFormedText(eventId)
      ) {
        throw fail('consent/unknown-event', 'an event id is a non-empty string of at most 64 characters');
      }
      await ready();
      const row = await eventEntry(eventId);
      if (!row || (row.kind !== 'decision' && row.kind !== 'expiry')) {
        throw fail('consent/unknown-event', `no consent decision ${eventId} in the ledger`);
      }
      const entry = entryOf(row.entry);
      const purposeId = entry.purpose as string;
      type EntryNotice = { id: string; version: string; hash: string; language: string };
      let notice = entry.notice as EntryNotice | undefined;
      if (row.kind === 'expiry') {
        // An expiry ends a grant: its receipt names the notice that grant answered.
        const granted = await eventEntry(entry.grantedEventId as string);
        notice = granted ? (entryOf(granted.entry).notice as EntryNotice | undefined) : undefined;
      }
      if (!notice) {
        const what = `the notice event ${eventId} answered is not in the ledger`;
        throw fail('consent/notice-unavailable', what, {
          purpose: purposeId,
          reason: 'is not in the ledger',
        });
      }
      const state: ReceiptState =
        row.kind === 'expiry'
          ? 'expired'
          : entry.state === 'granted'
            ? entry.renewal
              ? 'renewed'
              : 'given'
            : (entry.state as ReceiptState);
      return buildReceipt(
        {
          eventId,
          tenant,
          seq: Number(row.seq),
          leafHash: row.leaf_hash,
          subjectKey: entry.subject as string,
          purposeId,
          notice,
          jurisdiction: (entry.jurisdiction as string | undefined) ?? defaultJurisdiction,
          source: (entry.source as string | undefined) ?? 'ledger',
          method: (entry.method as string | undefined) ?? 'validity-elapsed',
          at: entry.at as string,
          expiresAt: entry.expiresAt as string | undefined,
          explicit: entry.explicit === true,
          state,
        },
        await storedNotice(purposeId, notice),
        keys,
        withdrawalMethod,
      );
    },

    async treeHead() {
      await ready();
      const frontier = await currentTree();
      const existing = await db
        .selectFrom(T.treeHeads)
        .selectAll()
        .where('tenant', '=', tenant)
        .where('size', '=', frontier.size)
        .executeTakeFirst();
      if (existing && existing.key_id === keys.keyId) {
        return {
          tenant,
          treeSize: Number(existing.size),
          rootHash: existing.root_hash,
          timestamp: existing.timestamp,
          keyId: existing.key_id,
          signature: existing.signature,
        };
      }
      const sth = signTreeHead(
        {
          tenant,
          treeSize: frontier.size,
          rootHash: hex(frontierRoot(frontier)),
          timestamp: clock.now().toISOString(),
        },
        keys,
      );
      // In a write transaction's turn on SQLite: a lone insert would wait for another connection's
      // lock in the busy handler, on the thread that connection needs to commit.
      if (frontier.size > 0) await writeStatement(db, (on) => storeTreeHead(on, sth));
      return sth;
    },

    async inclusionProof(seq, treeSize) {
      await ready();
      const size = await proofTreeSize(treeSize);
      if (!Number.isInteger(seq) || seq < 0 || seq >= size) {
        throw fail('consent/unknown-event', `entry ${seq} is not in a tree of ${size}`);
      }
      const row = await db
        .selectFrom(T.ledger)
        .select('leaf_hash')
        .where('id', '=', base + seq)
        .executeTakeFirst();
      if (!row) throw fail('consent/unknown-event', `entry ${seq} is not in the ledger`);
      const proof = await buildInclusionProof(seq, size, perfectNodes);
      return { seq, treeSize: size, leafHash: row.leaf_hash, proof: proof.map(hex) };
    },

    async consistencyProof(oldSize, newSize) {
      await ready();
      const size = await proofTreeSize(newSize);
      if (!Number.isInteger(oldSize) || oldSize < 0 || oldSize > size) {
        throw fail('consent/unknown-event', `no consistency proof from ${oldSize} to ${size}`);
      }
      const proof = await buildConsistencyProof(oldSize, size, perfectNodes);
      return { oldSize, newSize: size, proof: proof.map(hex) };
    },

    subjectsWithConsent(purposeId, options) {
      const opts = optionsOf(options);
      const pages = ledger.subjectPagesWithConsent(purposeId, { pageSize: 10_000, ...opts });
      return {
        async *[Symbol.asyncIterator]() {
          for await (const page of pages) yield* page;
        },
      };
    },

    subjectPagesWithConsent(purposeId, options) {
      const opts = optionsOf(options);
      const pageSize = countOption('pageSize', opts.pageSize, 10_000);
      const includeReconsentRequired = flagOption('includeReconsentRequired', opts.includeReconsentRequired);
      const when = opts.at === undefined ? undefined : dateOption(opts.at, () => clock.now());
      return {
        async *[Symbol.asyncIterator]() {
          await ready();
          await freshNotices();
          consentPurpose(purposeId);
          const at = (when ?? clock.now()).toISOString();
          const currentHash = notices.get(purposeId)?.current.hash ?? '';
          // Keyset pages in primary-key order (tenant, purpose, subject_key): each page is one
          // range read of the table, whatever its size.
          const page = prepare<'tenant' | 'purpose' | 'after' | 'at' | 'hash'>((p) => {
            let query = db
              .selectFrom(T.state)
              .select(['subject_key', 'subject_id'])
              .where('tenant', '=', p('tenant'))
              .where('purpose', '=', p('purpose'))
              .where('subject_key', '>', p('after'))
              .where('state', '=', 'granted')
              .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', p('at'))]));
            if (!includeReconsentRequired) query = query.where('notice_hash', '=', p('hash'));
            return query.orderBy('subject_key').limit(pageSize);
          });
          let after = '';
          for (;;) {
            const { rows } = await run<
              'tenant' | 'purpose' | 'after' | 'at' | 'hash',
              { subject_key: string; subject_id: string }
            >(db, page, { tenant, purpose: purposeId, after, at, hash: currentHash });
            if (rows.length > 0) yield rows.map((row) => row.subject_id);
            if (rows.length < pageSize) return;
            after = (rows[rows.length - 1] as { subject_key: string }).subject_key;
          }
        },
      };
    },

    async import(decisions, options) {
      const opts = optionsOf(options);
      const batchSize = countOption('batchSize', opts.batchSize, 2000);
      if (opts.writerThread !== undefined && typeof opts.writerThread !== 'boolean') {
        throw fail(
          'consent/invalid-options',
          `writerThread must be a boolean, got ${String(opts.writerThread)}`,
        );
      }
      if (!Array.isArray(decisions)) {
        throw fail('consent/invalid-decision', 'import() takes an array of decisions');
      }
      // Started now, so the thread is up by the time validation is done.
      const threaded =
        engine === 'sqlite' && (opts.writerThread ?? decisions.length >= WRITER_THREAD_FROM)
          ? openWriterThread(db, {
              // Nothing reads what these return: the head checkpoint and plain inserts.
              pipelined: (text) => text === statements.checkpoint.sql || isPlainInsert(text),
            })
          : undefined;
      try {
        return await importDecisions(decisions, batchSize, threaded);
      } finally {
        await (await threaded)?.close();
      }
    },

    async publishNotice(next, options) {
      const opts = optionsOf(options);
      await ready();
      return publish(next, opts.version);
    },

    async expireDue(options) {
      const opts = optionsOf(options);
      const batchSize = countOption('batchSize', opts.batchSize, 1000);
      await ready();
      let total = 0;
      for (;;) {
        const now = clock.now();
        const at = now.toISOString();
        const count = await appendTransaction(async (ctx) => {
          const { trx } = ctx;
          const rows = (await trx
            .selectFrom(T.state)
            .selectAll()
            .where('tenant', '=', tenant)
            .where('state', '=', 'granted')
            .where('expires_at', '<=', at)
            .orderBy('subject_key')
            .limit(batchSize)
            .execute()) as StateRow[];
          if (rows.length === 0) return 0;
          const pendings = rows.map(
            (row): Pending => ({
              eventId: newId(now),
              kind: 'expiry',
              subjectKey: row.subject_key,
              purpose: row.purpose,
              entry: {
                v: 1,
                subject: row.subject_key,
                purpose: row.purpose,
                grantedEventId: row.event_id,
                expiresAt: row.expires_at,
                at,
              },
            }),
          );
          const seqs = await append(ctx, pendings, now);
          await upsertStates(
            trx,
            engine,
            rows.map((row, i) => ({
              ...row,
              state: 'expired',
              renewal: 0,
              event_id: (pendings[i] as Pending).eventId,
              seq: seqs[i] as number,
              // The grant's own time, kept: the expiry only writes down what time already did,
              // so a decision imported later outranks it exactly as it outranks the grant (with
              // the run's time, a grant dated between the expiry and the run lost to it).
              gpc_conflict: 0,
            })),
          );
          return rows.length;
        });
        total += count;
        if (count < batchSize) return total;
      }
    },

    async applyGpc(subjectId, header, options) {
      const opts = optionsOf(options);
      const override = flagOption('override', opts.override);
      await ready();
      await freshNotices();
      const outcome: GpcOutcome = {
        signal: parseGpcHeader(header),
        refused: [],
        conflicts: [],
        unchanged: [],
        objections: [],
      };
      // The subject is checked signal or not: a call is refused or taken whatever the header.
      const subjectKey = pseudonym(subjectId);
      // Absence (or any value but "1") is no signal, and never consent (G02).
      if (!outcome.signal) return outcome;
      const signalled = policy.purposes.filter((purpose) =>
        purpose.tags.some((tag) => (GPC_TAGS as readonly string[]).includes(tag)),
      );
      const purposes = signalled.filter(restsOnConsent);
      // Not consent, so not the ledger's to record: an objection the host must act on (Art 21(5)).
      outcome.objections = signalled.filter((purpose) => !restsOnConsent(purpose)).map((p) => p.id);
      const refusalOf = (purpose: Purpose, evidence: ConsentEvidence | undefined) =>
        withoutStore(
          validate(
            {
              subjectId,
              purpose: purpose.id,
              state: 'refused',
              source: 'gpc',
              method: 'gpc-signal',
              ...(opts.jurisdiction ? { jurisdiction: opts.jurisdiction } : {}),
              ...(evidence ? { evidence } : {}),
            },
            false,
          ),
        );
      // What one purpose's transaction found, applied to `outcome` once it committed: an engine
      // that breaks a deadlock rolls the transaction back and it runs again, whole.
      type Found = {
        memo?: string;
        unchanged?: true;
        refused?: RecordedDecision;
        conflict?: GpcOutcome['conflicts'][number];
      };
      for (const purpose of purposes) {
        const found = await withKeyRetry(async () => {
          // With a key store and evidence: the pair's key before the transaction; a store that
          // fails makes it a refusal without evidence, never no refusal.
          let evidence = opts.evidence;
          let storeKey: StoreKeys | undefined;
          if (keyStore && evidence) {
            const keyed = await keyedOrBare(refusalOf(purpose, evidence), subjectKey);
            storeKey = keyed.storeKey;
            if (!keyed.value.evidence) evidence = undefined;
          }
          const now = clock.now();
          const at = now.toISOString();
          return appendTransaction(async (ctx): Promise<Found> => {
            const { trx } = ctx;
            // Under the lock, as for record(): refusalOf then drops what it cannot seal.
            if (!keyStore && !storeMarked && evidence) await markedIn(trx);
            const row = await readState(trx, subjectKey, purpose.id);
            if (row && (row.state === 'refused' || row.state === 'withdrawn')) {
              // Nothing to refuse. Over a refusal or withdrawal the subject made another way, the
              // first signal is still logged, as a `gpc-signal` event that leaves the state as it
              // is (G03): a grant given after it is then known as a choice made knowing of the
              // signal, and kept by the next one. A signal already on record writes nothing more
              // (remembered per decision, so repeated signals do not read the subject's log again).
              const memo = `${pairKey(subjectKey, purpose.id)}\u0000${Number(row.seq)}`;
              if (row.source === 'gpc' || signalledRefusals.has(memo)) return { unchanged: true };
              if (await gpcSignalSince(trx, subjectKey, row)) return { unchanged: true, memo };
              await append(
                ctx,
                [
                  {
                    eventId: newId(now),
                    kind: 'gpc-signal',
                    subjectKey,
                    purpose: purpose.id,
                    entry: { v: 1, subject: subjectKey, purpose: purpose.id, at },
                  },
                ],
                now,
              );
              return { unchanged: true, memo };
            }
            const grant = row && isValidGrant(row, now) ? row : undefined;
            const conflict = grant && {
              purpose: purpose.id,
              grantedEventId: grant.event_id,
              grantedAt: grant.decided_at,
            };
            // §7025(c)(3): the signal wins over a setting that allowed sale/sharing, but a grant the
            // subject gave after the signal was recorded is their informed choice: kept, reported.
            if (
              grant &&
              conflict &&
              !override &&
              (Number(grant.gpc_conflict) === 1 || (await gpcRefusedBefore(trx, subjectKey, grant)))
            ) {
              const kept = { conflict: { ...conflict, resolution: 'grant-kept' as const } };
              if (Number(grant.gpc_conflict)) return kept;
              const pending: Pending = {
                eventId: newId(now),
                kind: 'gpc-conflict',
                subjectKey,
                purpose: purpose.id,
                entry: { v: 1, subject: subjectKey, purpose: purpose.id, grantedEventId: grant.event_id, at },
              };
              await append(ctx, [pending], now);
              await trx
                .updateTable(T.state)
                .set({ gpc_conflict: 1 })
                .where('tenant', '=', tenant)
                .where('subject_key', '=', subjectKey)
                .where('purpose', '=', purpose.id)
                .execute();
              return kept;
            }
            const value = refusalOf(purpose, evidence);
            const shredded = storeKey
              ? await shreddedBetween(trx, storeKey.mark, ctx.frontier.size, [subjectKey])
              : undefined;
            const material = sealingKey(value, subjectKey, row?.key_material, storeKey, () =>
              Boolean(shredded?.size),
            );
            const { pending } = decisionPending(value, subjectKey, at, false, material, now);
            const [seq] = await append(ctx, [pending], now);
            await upsertStates(trx, engine, [
              stateRowOf(
                { subjectId, subjectKey, purpose: purpose.id, state: 'refused', source: 'gpc' },
                pending,
                seq as number,
                { renewal: false, notice: value.notice, at, key: material },
              ),
            ]);
            const refused = recorded(pending, seq as number, 'refused', false, at, value.notice, undefined);
            return conflict
              ? {
                  refused,
                  conflict: { ...conflict, resolution: 'signal-applied', refusedEventId: pending.eventId },
                }
              : { refused };
          });
        });
        if (found.unchanged) outcome.unchanged.push(purpose.id);
        if (found.refused) outcome.refused.push(found.refused);
        if (found.conflict) outcome.conflicts.push(found.conflict);
        if (found.memo !== undefined) {
          // Once committed: a rolled-back transaction logged nothing.
          if (signalledRefusals.size >= 10_000) signalledRefusals.clear();
          signalledRefusals.add(found.memo);
        }
      }
      return outcome;
    },

    async shredSubject(subjectId) {
      await ready();
      const subjectKey = pseudonym(subjectId);
      const now = clock.now();
      const shredded = await appendTransaction(async (ctx) => {
        const { trx } = ctx;
        // Read again under the lock: an instance with a store may have started since.
        if (!keyStore && (await markedIn(trx))) {
          throw fail(
            'consent/key-store-required',
            'this ledger keeps its evidence keys in a key store: shred through an instance configured with it (evidenceKeys), or its keys would outlive the shredding',
          );
        }
        // The store's keys first, under the append lock: no decision commits meanwhile, and one
        // that took a key before commits after this shredding only with a fresh key (sealingKey).
        // Should the store fail, nothing is shredded yet and a retry does it all.
        if (keyStore) {
          try {
            await destroyWithin(keyStore, subjectKey);
          } catch (error) {
            throw new PrivacyKitError<ConsentErrorCode>(
              'consent/key-store-failed',
              `the evidence key store failed to destroy the subject's keys: ${error instanceof Error ? error.message : String(error)}`,
              { cause: error },
            );
          }
        }
        const sealed = (await entriesOf(trx, subjectKey, ['id', 'sealed'])).filter(
          (row) => row.sealed !== null,
        );
        for (let i = 0; i < sealed.length; i += 500) {
          await trx
            .updateTable(T.ledger)
            .set({ sealed: null })
            .where(
              'id',
              'in',
              sealed.slice(i, i + 500).map((row) => row.id),
            )
            .execute();
        }
        // Deleting the state rows destroys the evidence keys kept in them (a key store's went above). The state table is keyed by purpose first: every purpose with a state row has a notice.
        await trx
          .deleteFrom(T.state)
          .where('tenant', '=', tenant)
          .where('purpose', 'in', (eb: ExpressionBuilder<any, any>) =>
            eb.selectFrom(T.notices).select('purpose').distinct().where('tenant', '=', tenant),
          )
          .where('subject_key', '=', subjectKey)
          .execute();
        const pending: Pending = {
          eventId: newId(now),
          kind: 'subject-shredded',
          subjectKey,
          entry: { v: 1, subject: subjectKey, at: now.toISOString() },
        };
        const [seq] = await append(ctx, [pending], now);
        return { eventId: pending.eventId, seq: seq as number };
      });
      // The deleted state rows (subject id, evidence key) and the sealed evidence were zeroed in
      // the file (secure_delete); their old page images leave the write-ahead log too. Before, a
      // copy of the file taken after the shredding held the key and the evidence it opened.
      await truncateSqliteLog(db);
      return shredded;
    },

    async stats(options) {
      const opts = optionsOf(options);
      await ready();
      await freshNotices();
      const at = dateOption(opts.at, () => clock.now()).toISOString();
      const rows = await db
        .selectFrom(T.state)
        .select((eb) => [
          'purpose',
          'notice_version',
          'notice_hash',
          'state',
          eb.fn.countAll().as('total'),
          eb.fn.sum(eb.case().when('expires_at', '<=', at).then(1).else(0).end()).as('lapsed'),
        ])
        .where('tenant', '=', tenant)
        .groupBy(['purpose', 'notice_version', 'notice_hash', 'state'])
        .execute();
      const out = new Map<string, StatsRow>();
      const add = (
        purpose: string,
        noticeVersion: string,
        hash: string,
        state: ConsentState,
        count: number,
      ) => {
        if (count === 0) return;
        const key = `${purpose}\u0000${noticeVersion}\u0000${state}`;
        const existing = out.get(key);
        if (existing) existing.count += count;
        else
          out.set(key, {
            purpose,
            noticeVersion,
            state,
            count,
            reconsentRequired: notices.get(purpose)?.current.hash !== hash,
          });
      };
      for (const row of rows) {
        const total = Number(row.total);
        const lapsed = row.state === 'granted' ? Number(row.lapsed ?? 0) : 0;
        add(row.purpose, row.notice_version, row.notice_hash, row.state as ConsentState, total - lapsed);
        add(row.purpose, row.notice_version, row.notice_hash, 'expired', lapsed);
      }
      return [...out.values()].sort(
        (a, b) =>
          a.purpose.localeCompare(b.purpose) ||
          a.noticeVersion.localeCompare(b.noticeVersion) ||
          a.state.localeCompare(b.state),
      );
    },

    async conditionOfServiceSignals(options) {
      const opts = optionsOf(options);
      await ready();
      const minDecisions = countOption('minDecisions', opts.minDecisions, 100);
      const rows = await db
        .selectFrom(T.state)
        .select((eb) => [
          'purpose',
          eb.fn.countAll().as('decisions'),
          eb.fn
            .sum(eb.case().when('state', 'in', ['refused', 'withdrawn']).then(1).else(0).end())
            .as('refusals'),
        ])
        .where('tenant', '=', tenant)
        .where('source', 'in', ['banner', 'form', 'api'])
        .groupBy('purpose')
        .execute();
      const counts = new Map(rows.map((row) => [row.purpose as string, row]));
      return consentPurposes(policy).map((purpose): ConditionOfServiceSignal => {
        const row = counts.get(purpose.id);
        const decisions = Number(row?.decisions ?? 0);
        const refusals = Number(row?.refusals ?? 0);
        return {
          purpose: purpose.id,
          decisions,
          refusals,
          suspected: decisions >= minDecisions && refusals === 0,
        };
      });
    },

    async publicKey() {
      await ready();
      return keys.publicKeyPem;
    },

    async subjectKey(subjectId) {
      await ready();
      return pseudonym(subjectId);
    },
  };
  return ledger;
}
