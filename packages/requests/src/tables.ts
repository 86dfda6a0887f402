import type { Generated } from 'kysely';

// Row shapes of the package's tables, for typed kysely queries inside the package.

export interface RequestRow {
  id: string;
  tenant: string;
  request_right: string;
  details: string;
  channel: string;
  received_at: string;
  received_date: string;
  status: string;
  deadline: string;
  extension_months: number;
  extension_reasons: string;
  extended_deadline: string | null;
  pause_while_verifying: number;
  paused_days: number;
  effective_deadline: string;
  assignee: string | null;
  outcome: string | null;
  duplicate_of: string | null;
  excessive: number;
  verification_failures: number;
  verification_locked: number;
  created_at: string;
  updated_at: string;
  /** When the request reached a final status (migration 0009). */
  closed_at: string | null;
  /** When `redact` removed its personal data (migration 0009); null while it holds it. */
  redacted_at: string | null;
}

export interface IdentityRow {
  id: string;
  tenant: string;
  request_id: string;
  position: number;
  kind: string;
  value: string;
  lookup_hash: string;
  channel: string | null;
  verified_at: string | null;
  /**
   * The right of the request this identity holds the intake slot for (unique per tenant and
   * identity): set when the request is created; released (null) by a later submission that finds
   * the request closed or received before its duplicate window.
   */
  dedupe_right: string | null;
}

export interface ChallengeRow {
  id: string;
  tenant: string;
  request_id: string;
  identity_id: string;
  code_hash: string;
  token_hash: string;
  created_at: string;
  expires_at: string;
  consumed_at: string | null;
  /** JSON: the details of a duplicate submission this code confirms (added to the request when used). */
  amendment: string | null;
}

export interface AuditRow {
  seq: Generated<number>;
  tenant: string;
  request_id: string;
  occurred_at: string;
  actor: string;
  action: string;
  from_status: string | null;
  to_status: string | null;
  reason: string | null;
  data: string | null;
}

export interface DirectiveRow {
  id: string;
  tenant: string;
  request_id: string;
  kind: string;
  instructions: string;
  executor: string | null;
  executor_hash: string | null;
  subject_hashes: string;
  status: string;
  created_at: string;
  revoked_at: string | null;
  revoked_by_request: string | null;
}

/**
 * Per-identity budgets: challenge mails sent (migration 0005) and wrong codes tried across the
 * identity's requests (0006), each in its current window.
 */
export interface IdentityLimitRow {
  tenant: string;
  lookup_hash: string;
  mail_window_start: string | null;
  mails: number;
  failure_window_start: Generated<string | null>;
  failures: Generated<number>;
}

/** One submission: the handle its submitter verifies through (migration 0007). */
export interface SubmissionRow {
  id: string;
  tenant: string;
  request_id: string;
  /** 1 when the submission was answered with an open request instead of creating one. */
  duplicate: number;
  verification_failures: number;
  verification_locked: number;
  created_at: string;
}

export interface SecretRow {
  tenant: string;
  secret: string;
  created_at: string;
}

export interface RequestsTables {
  privacykit_requests_requests: RequestRow;
  privacykit_requests_identities: IdentityRow;
  privacykit_requests_challenges: ChallengeRow;
  privacykit_requests_audit: AuditRow;
  privacykit_requests_directives: DirectiveRow;
  privacykit_requests_secrets: SecretRow;
  privacykit_requests_identity_limits: IdentityLimitRow;
  privacykit_requests_submissions: SubmissionRow;
}
