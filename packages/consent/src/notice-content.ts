import { canonicalJson, legalBasisArticle } from '@privacykit/core';
import type { JsonValue, Policy, Purpose } from '@privacykit/core';
import { sha256Hex } from '@privacykit/core/crypto';
import { z } from 'zod';

/**
 * What a subject is told about one consent purpose, taken from the policy: the controller, the
 * purpose's name and description, its legal bases, data categories, recipients, transfers of
 * their data outside the EEA (destination and safeguard), retention, the Art 9(2)/10 condition,
 * whether providing the data is required, and automated decisions. A change to any of these is a
 * change the subject has not consented to (Art 5(1)(b), 6(4), 7(3); EDPB 05/2020 §3.3.1).
 *
 * Optional parts appear only when the policy states them, so a purpose without transfers, special
 * categories or a provision statement hashes as it did before they were covered. Transfers are
 * sorted by id: reordering the policy's list is not a new notice.
 */
export function purposeNoticeContent(policy: Policy, purpose: Purpose): JsonValue {
  const recipientIds = new Set(purpose.recipients);
  const transfers = policy.transfers
    .filter((transfer) => transfer.recipients.some((id) => recipientIds.has(id)))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((transfer) => ({
      id: transfer.id,
      destination: transfer.destination,
      safeguard: transfer.safeguard,
      recipients: transfer.recipients.filter((id) => recipientIds.has(id)).sort(),
      ...(transfer.description ? { description: transfer.description } : {}),
      ...(transfer.copyAvailableFrom ? { copyAvailableFrom: transfer.copyAvailableFrom } : {}),
    }));
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
    ...(transfers.length > 0 ? { transfers } : {}),
    ...(purpose.specialCondition ? { specialCondition: purpose.specialCondition } : {}),
    ...(purpose.provision
      ? {
          provision: {
            required: purpose.provision.required,
            ...(purpose.provision.consequences ? { consequences: purpose.provision.consequences } : {}),
          },
        }
      : {}),
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

/**
 * The controller as a receipt names it: the name (part of the hashed notice content), the DPO's
 * email as contact and the controller's postal address. Recorded in each `notice-published`
 * ledger entry beside the notice hash — not inside it, so adding it changed no existing hash
 * and a new address alone does not ask anyone to consent again.
 */
export const noticeControllerSchema = z.object({
  name: z.string(),
  contact: z.string().optional(),
  address: z.string().optional(),
});
export type NoticeController = z.infer<typeof noticeControllerSchema>;

export function noticeControllerOf(policy: Policy): NoticeController {
  return {
    name: policy.controller.name,
    ...(policy.dpo.email ? { contact: policy.dpo.email } : {}),
    ...(policy.controller.address ? { address: policy.controller.address } : {}),
  };
}

/**
 * The parts of a stored notice (`privacykit_consent_notices.content`, written from
 * {@link purposeNoticeContent}) that a receipt quotes; other keys are kept in the store and ignored here.
 */
export const storedNoticeContentSchema = z.object({
  controller: z.string(),
  purpose: z.string(),
  name: z.string(),
  description: z.string(),
  categories: z.array(z.object({ id: z.string() })),
  recipients: z.array(z.object({ id: z.string(), name: z.string() })),
  retention: z.array(z.object({ id: z.string(), summary: z.string() })),
});
export type StoredNoticeContent = z.infer<typeof storedNoticeContentSchema>;
