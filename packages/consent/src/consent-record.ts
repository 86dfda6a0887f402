import { legalBasisArticle } from '@privacykit/core';
import { sha256Hex } from '@privacykit/core/crypto';
import type { ConsentReceipt, ReceiptNotice } from './receipt.js';
import { consentTypeOf, describeNotice } from './receipt.js';

/** The DPV consent statuses (https://w3id.org/dpv): only the two "given" ones allow processing. */
export type DpvConsentStatus =
  | 'dpv:ConsentUnknown'
  | 'dpv:ConsentGiven'
  | 'dpv:RenewedConsentGiven'
  | 'dpv:ConsentRefused'
  | 'dpv:ConsentWithdrawn'
  | 'dpv:ConsentExpired'
  | 'dpv:ConsentInvalidated';

/** One ledger event of a consent record (in ledger order: an imported decision keeps its own `time`). */
export interface ConsentRecordEvent {
  eventId: string;
  /** Position in the ledger (an inclusion proof checks it is logged). */
  seq: number;
  time: string;
  /**
   * `decision` (given, renewed, refused, withdrawn), `expiry` (the grant's validity ran out), a
   * Global Privacy Control signal met on a grant (`gpc-conflict`) or over a refusal
   * (`gpc-signal`), or `subject-shredded`: the subject's evidence keys and raw id were destroyed
   * (erasure), so the evidence of every earlier event is unavailable — listed in each record of a
   * purpose decided before it.
   */
  type: 'decision' | 'expiry' | 'gpc-conflict' | 'gpc-signal' | 'subject-shredded';
  /** The status the event set (decisions and expiries). */
  status?: DpvConsentStatus;
  source?: string;
  method?: string;
  jurisdiction?: string;
  /** The notice version the decision answered. */
  notice?: { id: string; version: string; hash: string; language: string };
  expiresAt?: string;
  /** How a grant was given, as DPV names it (see `ConsentReceipt.consentType`). */
  consentType?: 'dpv:ExplicitlyExpressedConsent' | 'dpv:ExpressedConsent';
  /** The evidence kept with it; `'unavailable'` once the subject was shredded. */
  evidence?: Record<string, unknown> | 'unavailable';
}

/**
 * A consent record shaped after ISO/IEC TS 27560:2023 (consent record information structure)
 * with DPV terms: one per subject and purpose, with the status now, the notice in force for it
 * as the subject was shown it, and every event that led there. For subject-access exports (Art
 * 15) and for moving records to another system; receipts (`receipt()`) are the signed proof of
 * one event each.
 */
export interface ConsentRecord {
  schemaVersion: 'privacykit-consent-record/1';
  /** The same for a tenant, subject and purpose in every export (SHA-256 of the three). */
  recordId: string;
  /** The PII principal: the subject id asked for, and its pseudonym in the ledger. */
  subject: { id: string; pseudonym: string };
  /** The controller as the notice below named it; absent when that notice's text is unavailable. */
  controller?: ConsentReceipt['controller'];
  /** The purpose as the notice below described it: only its id and legal basis when that text is unavailable. */
  purpose: Pick<ConsentReceipt['purpose'], 'id' | 'legalBasis' | 'legalBasisArticle'> &
    Partial<ConsentReceipt['purpose']>;
  /**
   * Set when the notice's text cannot be quoted, and why (not stored, no longer matching the hash
   * the decision recorded — `verify()` names the damage — or unreadable). The record still gives
   * the notice's version and hash, the status and every event: an access request is answered
   * with what is known, and says what is not.
   */
  noticeUnavailable?: string;
  /** The notice the current state answered (the last decision's recorded when the subject was shredded). */
  notice: { id: string; version: string; hash: string; language: string };
  /**
   * `dpv:ConsentGiven` and `dpv:RenewedConsentGiven` only while the grant allows processing: a
   * grant on a notice since changed, or of a purpose the policy no longer rests on consent
   * (`retired`), is `dpv:ConsentInvalidated`.
   */
  status: DpvConsentStatus;
  /** The purpose left the policy, or no longer rests on consent: it can only be withdrawn. */
  retired: boolean;
  /** How the grant in force was given (given and renewed records only). */
  consentType?: 'dpv:ExplicitlyExpressedConsent' | 'dpv:ExpressedConsent';
  /** When the grant in force (or the one that expired or was invalidated) ends or ended. */
  validity: { until?: string };
  withdrawalMethod: string;
  events: ConsentRecordEvent[];
}

/** The record id of a tenant × subject pseudonym × purpose. */
export function consentRecordId(tenant: string, subjectKey: string, purpose: string): string {
  return sha256Hex(`${tenant}\u0000${subjectKey}\u0000${purpose}`);
}

export function buildConsentRecord(facts: {
  tenant: string;
  subjectId: string;
  subjectKey: string;
  purposeId: string;
  noticeId: string;
  notice: { version: string; hash: string; language: string };
  /** The stored notice, or why it cannot be quoted. */
  stored: ReceiptNotice | { unavailable: string };
  status: DpvConsentStatus;
  retired: boolean;
  explicit: boolean;
  expiresAt?: string | undefined;
  withdrawalMethod: string;
  events: ConsentRecordEvent[];
}): ConsentRecord {
  const given = facts.status === 'dpv:ConsentGiven' || facts.status === 'dpv:RenewedConsentGiven';
  return {
    schemaVersion: 'privacykit-consent-record/1',
    recordId: consentRecordId(facts.tenant, facts.subjectKey, facts.purposeId),
    subject: { id: facts.subjectId, pseudonym: facts.subjectKey },
    ...('unavailable' in facts.stored
      ? {
          purpose: {
            id: facts.purposeId,
            legalBasis: 'consent' as const,
            legalBasisArticle: legalBasisArticle.consent,
          },
          noticeUnavailable: facts.stored.unavailable,
        }
      : describeNotice(facts.purposeId, facts.stored)),
    notice: { id: facts.noticeId, ...facts.notice },
    status: facts.status,
    retired: facts.retired,
    ...(given ? { consentType: consentTypeOf(facts.explicit) } : {}),
    validity: facts.expiresAt ? { until: facts.expiresAt } : {},
    withdrawalMethod: facts.withdrawalMethod,
    events: facts.events,
  };
}
