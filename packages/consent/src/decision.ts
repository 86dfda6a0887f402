import { z } from 'zod';

// A lone UTF-16 surrogate (encoded as U+FFFD in UTF-8, so two different ids would share one
// pseudonym) or a NUL character (refused by PostgreSQL) is not text a decision may carry.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether `value` is well-formed Unicode without NUL characters (what every stored string must be). */
export function wellFormedText(value: string): boolean {
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

const TEXT_MESSAGE = 'must be well-formed Unicode text without NUL characters';
/** A string of `min`–`max` UTF-16 units that is well-formed text. */
const text = (min: number, max: number) => z.string().min(min).max(max).refine(wellFormedText, TEXT_MESSAGE);

/**
 * A jurisdiction code: ISO 3166-1 alpha-2 (`FR`; `EU` for the Union), optionally with an ISO
 * 3166-2 subdivision (`US-CA`, `FR-75`). A code, never free text: it goes into hashed ledger
 * entries, which erasure cannot touch (S11).
 */
export const JURISDICTION_PATTERN = /^[A-Za-z]{2}(?:-[A-Za-z0-9]{1,3})?$/;

/**
 * An opaque identifier or method name inside a hashed ledger entry: ASCII letters, digits and
 * `. _ : ~ -`, starting with a letter or digit. No spaces and no `@`, so a name or an email
 * address cannot be used as one and end up where erasing its subject cannot reach it (S11).
 */
export const TOKEN_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:~-]*$/;
const TOKEN_MESSAGE = 'must be an opaque token: letters, digits and . _ : ~ - (no spaces, no @)';

/** Where a decision was collected. */
export const consentSourceSchema = z.enum(['banner', 'form', 'api', 'gpc', 'import']);
export type ConsentSource = z.infer<typeof consentSourceSchema>;

/** Affirmative acts that can carry a decision (Art 4(11): "a clear affirmative action"). */
export const consentMethodSchema = z.enum([
  'click',
  'toggle',
  'form-submit',
  'api-call',
  'gpc-signal',
  'import',
  'written',
  'verbal-recorded',
]);
export type ConsentMethod = z.infer<typeof consentMethodSchema>;

/** Methods that are never consent, each rejected with its own code (Planet49; EDPB 05/2020 ¶86). */
export const nonAffirmativeMethods = [
  'default',
  'pre-ticked',
  'scroll',
  'implied',
  'continued-browsing',
] as const;
export type NonAffirmativeMethod = (typeof nonAffirmativeMethods)[number];

/** What a subject decided about one purpose. `withdrawn` ends an earlier grant for the future. */
export const decisionStateSchema = z.enum(['granted', 'refused', 'withdrawn']);
export type DecisionState = z.infer<typeof decisionStateSchema>;

/** Every state a ledger event can put a subject × purpose in (`expired` is written by the ledger). */
export type ConsentState = 'granted' | 'refused' | 'withdrawn' | 'expired';

export const parentalAuthorisationSchema = z
  .object({
    /** How the holder of parental responsibility was verified (Art 8(2)), e.g. `card-check`, `signed-form`. */
    method: z.string().min(1).max(64).regex(TOKEN_PATTERN, TOKEN_MESSAGE),
    /** A reference to the verification record (stored encrypted). */
    reference: text(0, 500).optional(),
  })
  .strict();
export type ParentalAuthorisation = z.infer<typeof parentalAuthorisationSchema>;

export const consentEvidenceSchema = z
  .object({
    /** The client's IP address; stored truncated (/24, /48) unless the ledger says otherwise. */
    ip: text(0, 100).optional(),
    /** Stored only when the ledger is configured with `evidence.userAgent: true`. */
    userAgent: text(0, 1000).optional(),
  })
  .strict();
export type ConsentEvidence = z.infer<typeof consentEvidenceSchema>;

export const noticeReferenceSchema = z
  .object({
    version: text(1, 100).optional(),
    hash: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'expected a lowercase SHA-256 hex digest')
      .optional(),
    language: text(2, 35).optional(),
  })
  .strict();
export type NoticeReference = z.infer<typeof noticeReferenceSchema>;

/**
 * One decision of one subject about one purpose, as the caller hands it to `record()`.
 * `notice` defaults to the purpose's current notice. `purposes` (plural) exists only so that a
 * bundled decision is recognised and refused with `consent/bundled-purposes`.
 */
export const consentDecisionSchema = z
  .object({
    subjectId: text(1, 255),
    purpose: text(1, 100).optional(),
    purposes: z.array(text(1, 100)).optional(),
    state: decisionStateSchema,
    source: consentSourceSchema,
    method: text(1, 50),
    /** Set when the control was pre-selected: a pre-ticked box is refused whatever the method. */
    preTicked: z.boolean().optional(),
    /**
     * Set when using the service (or anything not needing this purpose) was made conditional on
     * consenting: a cookie wall, "accept to continue". A grant given so is not freely given (Art
     * 7(4), EDPB 05/2020 ¶38–41) and is refused; a refusal or withdrawal is recorded as usual.
     */
    conditionOfService: z.boolean().optional(),
    /**
     * Set when the grant was an express statement of consent to this very processing (EDPB
     * 05/2020 §4: a statement the subject confirmed, signed or typed, a form naming the data, a
     * two-stage confirmation) — not merely an affirmative act. Required on grants of a purpose
     * whose policy condition is `explicit-consent` (Art 9(2)(a)), recorded in the
     * entry and shown on the receipt.
     */
    explicit: z.boolean().optional(),
    notice: noticeReferenceSchema.optional(),
    /** Where the rules applied come from, e.g. `EU`, `FR`, `US-CA` (recorded in capitals). */
    jurisdiction: z
      .string()
      .regex(
        JURISDICTION_PATTERN,
        'a jurisdiction is a country code (EU, FR), optionally with a subdivision (US-CA)',
      )
      .optional(),
    evidence: consentEvidenceSchema.optional(),
    /** The subject's age in years when the service knows it (Art 8). */
    age: z.number().int().min(0).max(150).optional(),
    parentalAuthorisation: parentalAuthorisationSchema.optional(),
    /**
     * Imports only: the original event id (replays are refused) and the original decision time.
     * The id is an opaque token (no spaces, so no PAD SPACE clash on MySQL either).
     */
    eventId: z.string().min(1).max(64).regex(TOKEN_PATTERN, TOKEN_MESSAGE).optional(),
    at: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();
export type ConsentDecision = z.input<typeof consentDecisionSchema>;
