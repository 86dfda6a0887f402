import { type KeyObject, sign, verify } from 'node:crypto';
import { canonicalJson, legalBasisArticle } from '@privacykit/core';
import type { NoticeController, StoredNoticeContent } from './notice-content.js';
import { ed25519PublicKey, isCanonicalBase64, keyIdOf } from './signing.js';
import type { SigningKeys } from './signing.js';

/** DPV consent states a receipt can carry; only `given` and `renewed` allow processing. */
export type ReceiptState = 'given' | 'renewed' | 'refused' | 'withdrawn' | 'expired';

/**
 * A consent receipt shaped after ISO/IEC TS 27560:2023 and the Kantara Consent Receipt v1.1:
 * one decision about one purpose, with the notice it answered and everything Art 13 says the
 * subject was told, signed with the ledger's Ed25519 key. The subject keeps it; anyone with the
 * public key checks it with {@link verifyReceipt}. A receipt proves a past event — it never
 * grants anything when presented again (hostile case 4).
 */
export interface ConsentReceipt {
  schemaVersion: 'privacykit-consent-receipt/1';
  /** The ledger event id. */
  recordId: string;
  /** Position in the ledger: an inclusion proof for `leafHash` at `seq` checks it is logged. */
  ledger: { tenant: string; seq: number; leafHash: string };
  /** Pseudonymous subject: HMAC of the subject id under the tenant secret. */
  subject: { id: string; idType: 'pseudonym' };
  /**
   * The controller the notice named (its name is part of the notice hash); `contact` (the DPO's
   * email) and `address` as recorded when that notice version was published, absent when the
   * ledger did not record them then.
   */
  controller: { name: string; contact?: string; address?: string };
  notice: { id: string; version: string; hash: string; language: string };
  /** The purpose as the stored notice of `notice.version` described it, not as the policy does today. */
  purpose: {
    id: string;
    name: string;
    description: string;
    legalBasis: 'consent';
    legalBasisArticle: string;
    dataCategories: string[];
    recipients: { id: string; name: string }[];
    retention: string[];
  };
  jurisdiction: string;
  collectionMethod: { source: string; method: string };
  withdrawalMethod: string;
  eventTime: string;
  eventType: ReceiptState;
  state: ReceiptState;
  /**
   * How consent was given, on receipts of a grant (`given`, `renewed`), as DPV names it: an
   * express statement recorded with `explicit: true` (Art 9(2)(a)) is
   * `dpv:ExplicitlyExpressedConsent`; any other grant, an affirmative act, `dpv:ExpressedConsent`.
   */
  consentType?: 'dpv:ExplicitlyExpressedConsent' | 'dpv:ExpressedConsent';
  validity: { until?: string };
  signature: { alg: 'Ed25519'; keyId: string; value: string };
}

export interface ReceiptFacts {
  eventId: string;
  tenant: string;
  seq: number;
  leafHash: string;
  subjectKey: string;
  purposeId: string;
  notice: { id: string; version: string; hash: string; language: string };
  jurisdiction: string;
  source: string;
  method: string;
  at: string;
  expiresAt?: string | undefined;
  /** The entry records the grant as explicit consent. */
  explicit?: boolean | undefined;
  state: ReceiptState;
}

/**
 * What the subject was told, as the ledger stored it when the decision's notice version was
 * published: the notice content (whose SHA-256 is the notice hash on the receipt) and the
 * controller details recorded with it, when the ledger recorded them (notices published
 * before controller details were recorded hold the controller's name only).
 */
export interface ReceiptNotice {
  content: StoredNoticeContent;
  controller?: NoticeController | undefined;
}

/** How a grant was given, as DPV names it: an express statement (Art 9(2)(a)) or an affirmative act. */
export function consentTypeOf(explicit: boolean): 'dpv:ExplicitlyExpressedConsent' | 'dpv:ExpressedConsent' {
  return explicit ? 'dpv:ExplicitlyExpressedConsent' : 'dpv:ExpressedConsent';
}

/**
 * The controller and the purpose as a stored notice told the subject of them (receipts and
 * consent records quote this, never the policy in force when they are asked for).
 */
export function describeNotice(
  purposeId: string,
  notice: ReceiptNotice,
): Pick<ConsentReceipt, 'controller' | 'purpose'> {
  const { content } = notice;
  // The name is part of the hashed notice; contact and address only when stored beside it for
  // that same controller — an address the subject was never shown is left out, not guessed.
  const stored = notice.controller?.name === content.controller ? notice.controller : undefined;
  return {
    controller: {
      name: content.controller,
      ...(stored?.contact ? { contact: stored.contact } : {}),
      ...(stored?.address ? { address: stored.address } : {}),
    },
    purpose: {
      id: purposeId,
      name: content.name,
      description: content.description,
      legalBasis: 'consent',
      legalBasisArticle: legalBasisArticle.consent,
      dataCategories: content.categories.map((category) => category.id),
      recipients: content.recipients.map(({ id, name }) => ({ id, name })),
      // A retention rule the policy did not define was stored with an empty summary: quote its id.
      retention: content.retention.map((rule) => rule.summary || rule.id),
    },
  };
}

/**
 * Builds and signs the receipt of one ledger event. Everything describing the purpose comes from
 * the stored notice the decision answered, never from the policy in force when the receipt is
 * asked for: a receipt for a past decision quotes the text the subject saw (Art 7(1)).
 */
export function buildReceipt(
  facts: ReceiptFacts,
  notice: ReceiptNotice,
  keys: SigningKeys,
  withdrawalMethod: string,
): ConsentReceipt {
  const unsigned: Omit<ConsentReceipt, 'signature'> = {
    schemaVersion: 'privacykit-consent-receipt/1',
    recordId: facts.eventId,
    ledger: { tenant: facts.tenant, seq: facts.seq, leafHash: facts.leafHash },
    subject: { id: facts.subjectKey, idType: 'pseudonym' },
    ...describeNotice(facts.purposeId, notice),
    notice: facts.notice,
    jurisdiction: facts.jurisdiction,
    collectionMethod: { source: facts.source, method: facts.method },
    withdrawalMethod,
    eventTime: facts.at,
    eventType: facts.state,
    state: facts.state,
    ...(facts.state === 'given' || facts.state === 'renewed'
      ? { consentType: consentTypeOf(facts.explicit === true) }
      : {}),
    validity: facts.expiresAt ? { until: facts.expiresAt } : {},
  };
  const value = sign(null, Buffer.from(canonicalJson(unsigned)), keys.privateKey).toString('base64');
  return { ...unsigned, signature: { alg: 'Ed25519', keyId: keys.keyId, value } };
}

/**
 * Checks a consent receipt's Ed25519 signature with the controller's public key (PEM or
 * KeyObject). Any change to any field — or a receipt signed by another key — gives `false`; so
 * does, without an exception, anything that is not a receipt, a key that is not an Ed25519
 * public key, or a signature not in the canonical base64 `buildReceipt` writes.
 */
export function verifyReceipt(receipt: unknown, publicKey: KeyObject | string): boolean {
  try {
    if (typeof receipt !== 'object' || receipt === null) return false;
    const { signature, ...unsigned } = receipt as ConsentReceipt;
    if (signature?.alg !== 'Ed25519' || !isCanonicalBase64(signature.value)) return false;
    const key = ed25519PublicKey(publicKey);
    if (!key || signature.keyId !== keyIdOf(key)) return false;
    return verify(null, Buffer.from(canonicalJson(unsigned)), key, Buffer.from(signature.value, 'base64'));
  } catch {
    return false;
  }
}
