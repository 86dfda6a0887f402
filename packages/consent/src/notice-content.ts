import { canonicalJson, legalBasisArticle } from '@privacykit/core';
import type { JsonValue, Policy, Purpose } from '@privacykit/core';
import { sha256Hex } from '@privacykit/core/crypto';

/**
 * What a subject is told about one consent purpose, taken from the policy: the controller, the
 * purpose's name and description, its legal bases, data categories, recipients and retention.
 * A change to any of these is a change the subject has not consented to (Art 5(1)(b), 6(4)).
 */
export function purposeNoticeContent(policy: Policy, purpose: Purpose): JsonValue {
  return {
    controller: policy.controller.name,
    purpose: purpose.id,
    name: purpose.name,
    description: purpose.description,
    activities: purpose.activities,
    legalBases: purpose.legalBases.map((entry) => ({
      basis: entry.basis,
      article: legalBasisArticle[entry.basis],
      ...(entry.description ? { description: entry.description } : {}),
    })),
    categories: purpose.categories.map((id) => ({
      id,
      label: policy.categoryIndex.get(id)?.label ?? id,
    })),
    recipients: purpose.recipients.map((id) => {
      const recipient = policy.recipients.find((candidate) => candidate.id === id);
      return {
        id,
        name: recipient?.name ?? id,
        kind: recipient?.kind ?? 'unknown',
        locations: recipient?.locations ?? [],
      };
    }),
    retention: purpose.retention.map((id) => {
      const rule = policy.retention.find((candidate) => candidate.id === id);
      return { id, title: rule?.title ?? id, summary: rule?.summary ?? '' };
    }),
    ...(purpose.automatedDecisions ? { automatedDecisions: purpose.automatedDecisions } : {}),
  };
}

/** SHA-256 (hex) of the canonical JSON (RFC 8785) of a purpose's notice content. */
export function purposeNoticeHash(policy: Policy, purpose: Purpose): string {
  return sha256Hex(canonicalJson(purposeNoticeContent(policy, purpose)));
}

/** The stable notice id of a purpose's consent request within a tenant. */
export function noticeIdOf(tenant: string, purposeId: string): string {
  return `${tenant}/consent/${purposeId}`;
}
