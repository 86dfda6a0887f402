import { type KeyObject, createPublicKey, sign, verify } from 'node:crypto';
import { canonicalJson, legalBasisArticle } from '@privacykit/core';
import type { Policy } from '@privacykit/core';
import { keyIdOf } from './signing.js';
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
  controller: { name: string; contact?: string; address?: string };
  notice: { id: string; version: string; hash: string; language: string };
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
  state: ReceiptState;
}

export function buildReceipt(
  facts: ReceiptFacts,
  policy: Policy,
  keys: SigningKeys,
  withdrawalMethod: string,
): ConsentReceipt {
  const purpose = policy.purposes.find((candidate) => candidate.id === facts.purposeId);
  const unsigned: Omit<ConsentReceipt, 'signature'> = {
    schemaVersion: 'privacykit-consent-receipt/1',
    recordId: facts.eventId,
    ledger: { tenant: facts.tenant, seq: facts.seq, leafHash: facts.leafHash },
    subject: { id: facts.subjectKey, idType: 'pseudonym' },
    controller: {
      name: policy.controller.name,
      ...(policy.dpo.email ? { contact: policy.dpo.email } : {}),
      ...(policy.controller.address ? { address: policy.controller.address } : {}),
    },
    notice: facts.notice,
    purpose: {
      id: facts.purposeId,
      name: purpose?.name ?? facts.purposeId,
      description: purpose?.description ?? '',
      legalBasis: 'consent',
      legalBasisArticle: legalBasisArticle.consent,
      dataCategories: purpose?.categories ?? [],
      recipients: (purpose?.recipients ?? []).map((id) => ({
        id,
        name: policy.recipients.find((recipient) => recipient.id === id)?.name ?? id,
      })),
      retention: (purpose?.retention ?? []).map(
        (id) => policy.retention.find((rule) => rule.id === id)?.summary ?? id,
      ),
    },
    jurisdiction: facts.jurisdiction,
    collectionMethod: { source: facts.source, method: facts.method },
    withdrawalMethod,
    eventTime: facts.at,
    eventType: facts.state,
    state: facts.state,
    validity: facts.expiresAt ? { until: facts.expiresAt } : {},
  };
  const value = sign(null, Buffer.from(canonicalJson(unsigned)), keys.privateKey).toString('base64');
  return { ...unsigned, signature: { alg: 'Ed25519', keyId: keys.keyId, value } };
}

/**
 * Checks a consent receipt's Ed25519 signature with the controller's public key (PEM or
 * KeyObject). Any change to any field — or a receipt signed by another key — gives `false`.
 */
export function verifyReceipt(receipt: unknown, publicKey: KeyObject | string): boolean {
  try {
    if (typeof receipt !== 'object' || receipt === null) return false;
    const { signature, ...unsigned } = receipt as ConsentReceipt;
    if (signature?.alg !== 'Ed25519' || typeof signature.value !== 'string') return false;
    const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
    if (signature.keyId !== keyIdOf(key)) return false;
    return verify(null, Buffer.from(canonicalJson(unsigned)), key, Buffer.from(signature.value, 'base64'));
  } catch {
    return false;
  }
}
