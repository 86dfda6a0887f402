/**
 * Codes thrown by `@privacykit/consent`. Stable: programs switch on them, so a code never
 * changes meaning once published. Every rejection writes nothing.
 */
export type ConsentErrorCode =
  /** The decision does not match the decision schema (see `issues`). */
  | 'consent/invalid-decision'
  /**
   * A subject id passed to a method (`mayProcess`, `current`, `history`, `shredSubject`, …) that
   * no decision could carry: not a non-empty string of at most 255 well-formed characters.
   */
  | 'consent/invalid-subject'
  /** One decision names several purposes (Recital 32/43: consent is given per purpose). */
  | 'consent/bundled-purposes'
  /** The purpose is not declared in the policy. */
  | 'consent/unknown-purpose'
  /** The purpose is declared but its legal basis is not consent (Art 6(1)(a)). */
  | 'consent/not-consent-purpose'
  /** The notice version named is not one the ledger published for that purpose. */
  | 'consent/unknown-notice-version'
  /** The notice hash does not match the version's content hash (or no version has it). */
  | 'consent/unknown-notice-hash'
  /**
   * The decision says the subject read the notice in a language it was not published in: the
   * notice hash proves the published text only, so the ledger cannot record a translation.
   */
  | 'consent/unknown-notice-language'
  /** A grant cites a superseded notice version: the subject saw text that is no longer current. */
  | 'consent/notice-outdated'
  /** A pre-selected default is not consent (Planet49, Recital 32). */
  | 'consent/default-not-consent'
  /** A pre-ticked box is not consent (Planet49, EDPB 05/2020 ¶86). */
  | 'consent/pre-ticked-not-consent'
  /** A grant given where the service was made conditional on it (Art 7(4)): not freely given. */
  | 'consent/condition-of-service'
  /** Scrolling is not an affirmative act (EDPB 05/2020 ¶86). */
  | 'consent/scroll-not-consent'
  /** Silence or inactivity is not consent (Recital 32). */
  | 'consent/implied-not-consent'
  /** Continuing to browse is not consent (EDPB 05/2020 ¶86). */
  | 'consent/continued-browsing-not-consent'
  /** The collection method does not fit the source (GPC must be `gpc-signal`, imports `import`). */
  | 'consent/method-source-mismatch'
  /**
   * A grant of a purpose whose policy condition is `explicit-consent` (special-category data,
   * Art 9(2)(a)) without `explicit: true`: an affirmative act alone is not explicit consent.
   */
  | 'consent/explicit-consent-required'
  /** A child below the age of digital consent without parental authorisation (Art 8). */
  | 'consent/parental-authorisation-required'
  /** The event id is already in the ledger: a replayed or duplicated decision. */
  | 'consent/duplicate-event'
  /** `receipt(eventId)` or a proof names an event or size the ledger does not hold. */
  | 'consent/unknown-event'
  /** Invalid ledger options (age threshold outside 13–16, bad validity period, bad keys). */
  | 'consent/invalid-options'
  /**
   * A write the database rolled back over a deadlock with concurrent writers, again and again
   * (it is retried first), or a decision whose evidence key shreddings of its subject kept
   * invalidating (`evidenceKeys`): nothing was written, try again.
   */
  | 'consent/write-conflict'
  /** A notice version string is reused for different content. */
  | 'consent/notice-version-conflict'
  /**
   * `receipt(eventId)`: the stored text of the notice the decision answered is missing or no
   * longer hashes to the notice hash the decision recorded — no receipt quotes other text.
   */
  | 'consent/notice-unavailable'
  /**
   * The evidence key store (`evidenceKeys` option) failed or answered with something that is not
   * a key: nothing was written (a decision, a shredding) or nothing was read (a history) — the
   * store's own error is the cause. Try again once the store answers.
   */
  | 'consent/key-store-failed'
  /**
   * The ledger keeps its evidence keys in an `evidenceKeys` store (an instance configured with
   * one has run on it) and this instance has none: it cannot shred a subject (the store's keys
   * would outlive the shredding) nor seal a grant's evidence. Refusals and withdrawals are
   * recorded without the evidence instead. Configure the instance with the same store.
   */
  | 'consent/key-store-required';
