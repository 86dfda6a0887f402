// @privacykit/consent — a tamper-evident consent ledger (GDPR Art 7): decisions per purpose,
// current state, set queries, notice versions and re-consent, signed receipts, GPC, an RFC 9162
// Merkle log with signed tree heads, and crypto-shredding.
export { createConsentLedger, GPC_TAGS } from './ledger.js';
export type {
  ConsentHistoryEntry,
  ConsentLedger,
  ConsentLedgerOptions,
  ConsentStatus,
  DpvConsentStatus,
  ConsistencyProof,
  CurrentConsent,
  GpcOutcome,
  InclusionProof,
  PublishResult,
  RecordedDecision,
  WithdrawnNotify,
  ConditionOfServiceSignal,
  StatsRow,
  VerifyResult,
} from './ledger.js';
export {
  consentDecisionSchema,
  consentEvidenceSchema,
  consentMethodSchema,
  consentSourceSchema,
  decisionStateSchema,
  noticeReferenceSchema,
  nonAffirmativeMethods,
  parentalAuthorisationSchema,
} from './decision.js';
export type {
  ConsentDecision,
  ConsentEvidence,
  ConsentMethod,
  ConsentSource,
  ConsentState,
  DecisionState,
  NonAffirmativeMethod,
  NoticeReference,
  ParentalAuthorisation,
} from './decision.js';
export type { ConsentErrorCode } from './errors.js';
export { consentMigrations } from './migrations.js';
export { createDatabaseKeyStore, evidenceKeyStoreMigrations } from './key-store.js';
export type { EvidenceKey, EvidenceKeyRef, EvidenceKeyStore } from './key-store.js';
export { gpcFromHeaders, parseGpcHeader } from './gpc.js';
export { truncateIp } from './evidence.js';
export { noticeIdOf, purposeNoticeContent, purposeNoticeHash } from './notice-content.js';
export { verifyReceipt } from './receipt.js';
export { consentRecordId } from './consent-record.js';
export type { ConsentRecord, ConsentRecordEvent } from './consent-record.js';
export type { ConsentReceipt, ReceiptState } from './receipt.js';
export { keyIdOf, verifyTreeHead } from './signing.js';
export type { LedgerKeys, SignedTreeHead } from './signing.js';
export {
  EMPTY_ROOT,
  leafHash,
  merkleRoot,
  nodeHash,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
export { verifyConsistencyProof, verifyInclusionProof } from './proofs.js';
export { addPeriod } from './validity.js';
