import type { DataMap, Policy } from '@privacykit/core';
import type { ConsentLedger, WithdrawnNotify } from '@privacykit/consent';
import type { RequestRecord } from '@privacykit/requests';
import { emailSubjectId } from './consent-subject.js';

/** What a withdrawal-of-consent or direct-marketing objection request did in the consent ledger. */
export interface ConsentRequestOutcome {
  /**
   * Consent that stands withdrawn (Art 7(3)), by subject and purpose: `now` when this call
   * withdrew it, else it already was (when the requester verified, or before).
   */
  withdrawn: { subjectId: string; purpose: string; now: boolean }[];
  /**
   * Direct-marketing purposes that stand refused on the objection (Art 21(2)–(3)): `now` when this
   * call recorded the refusal of a purpose the subject had not decided on.
   */
  refused: { subjectId: string; purpose: string; now: boolean }[];
  /**
   * Grants given after the requester verified the request — a later choice of their own (signing
   * up again, say): kept, and named in the completion note.
   */
  kept: { subjectId: string; purpose: string; decidedAt: string }[];
  /** Consent purposes named with no grant on record for the requester's identities: nothing to withdraw. */
  noGrant: string[];
  /**
   * Purposes named that do not rest on consent (direct marketing on legitimate interests, say):
   * not the consent ledger's to record; staff stop them where that processing runs.
   */
  otherBasis: string[];
  /** Processors and other controllers to tell of the withdrawals (C06), once each. */
  notify: WithdrawnNotify[];
}

/**
 * The purposes a request asks the ledger to stop, or `undefined` when it asks nothing of it: a
 * withdrawal of consent names its purposes; an objection to direct marketing names some or covers
 * every purpose the policy tags `direct-marketing` (Art 21(2): absolute, no grounds). An objection
 * on grounds of a particular situation (21(1)) is weighed by staff, never applied here.
 */
export function consentPurposesOf(
  policy: Policy,
  record: Pick<RequestRecord, 'right' | 'details'>,
): { purposes: string[]; objection: boolean } | undefined {
  const details = (record.details ?? {}) as { purposes?: string[]; kind?: string };
  if (record.right === 'withdraw-consent') return { purposes: details.purposes ?? [], objection: false };
  if (record.right === 'objection' && details.kind === 'direct-marketing') {
    const purposes =
      details.purposes ??
      policy.purposes.filter((purpose) => purpose.tags.includes('direct-marketing')).map((p) => p.id);
    return { purposes, objection: true };
  }
  return undefined;
}

/**
 * Applies a verified withdrawal of consent, or objection to direct marketing, to the consent
 * ledger for the requester's verified email identities (`email:<address>`, the subject the
 * newsletter sign-up records under): each standing grant is withdrawn, and — for an objection —
 * a direct-marketing purpose not yet decided on is recorded as refused, so no later process
 * reads the silence as room to ask. Idempotent: what is already withdrawn or refused is left as
 * it is, so it runs when the requester verifies (hostile case 23: at once) and again when staff
 * complete the request. Before, completing such a request changed nothing in the ledger. Only a
 * grant decided no later than the address's verification is withdrawn: one given afterwards is
 * the requester's later choice (they signed up again), kept and reported in `kept` — before, staff
 * completing the request days later withdrew it again.
 *
 * Cookie choices belong to a browser's pseudonymous subject, which no email leads to: they are
 * withdrawn on the browser's own consent page.
 */
export async function applyConsentRequest(options: {
  ledger: ConsentLedger;
  policy: Policy;
  dataMap: DataMap;
  record: Pick<RequestRecord, 'right' | 'details' | 'identities'>;
}): Promise<ConsentRequestOutcome | undefined> {
  const { ledger, policy, record } = options;
  const asked = consentPurposesOf(policy, record);
  if (!asked) return undefined;
  const outcome: ConsentRequestOutcome = {
    withdrawn: [],
    refused: [],
    kept: [],
    noGrant: [],
    otherBasis: [],
    notify: [],
  };
  // Each subject with the time its address was verified: the request speaks for the consent on
  // record then, not for a grant the requester gives afterwards (staff complete it days later).
  const verifiedAt = new Map<string, number>();
  for (const identity of record.identities) {
    if (identity.kind !== 'email' || !identity.verified) continue;
    const subjectId = emailSubjectId(options.dataMap, identity.value);
    const at = identity.verifiedAt ? Date.parse(identity.verifiedAt) : Number.POSITIVE_INFINITY;
    verifiedAt.set(subjectId, Math.max(verifiedAt.get(subjectId) ?? Number.NEGATIVE_INFINITY, at));
  }
  const subjects = [...verifiedAt.keys()];
  for (const purposeId of [...new Set(asked.purposes)]) {
    const purpose = policy.purposes.find((candidate) => candidate.id === purposeId);
    const onConsent = purpose?.legalBases.some((basis) => basis.basis === 'consent') ?? false;
    if (purpose && !onConsent) {
      outcome.otherBasis.push(purposeId);
      continue;
    }
    let found = false;
    for (const subjectId of subjects) {
      const status = (await ledger.current(subjectId)).purposes[purposeId];
      if (
        status?.state === 'granted' &&
        status.decidedAt !== undefined &&
        Date.parse(status.decidedAt) > (verifiedAt.get(subjectId) ?? Number.POSITIVE_INFINITY)
      ) {
        outcome.kept.push({ subjectId, purpose: purposeId, decidedAt: status.decidedAt });
        found = true;
      } else if (status?.state === 'granted') {
        // A grant awaiting re-consent, or one of a purpose since retired, is withdrawn too.
        const done = await ledger.withdraw(subjectId, purposeId, { source: 'form', method: 'form-submit' });
        outcome.withdrawn.push({ subjectId, purpose: purposeId, now: true });
        for (const recipient of done.notify ?? []) {
          if (!outcome.notify.some((known) => known.id === recipient.id)) outcome.notify.push(recipient);
        }
        found = true;
      } else if (status?.state === 'withdrawn') {
        outcome.withdrawn.push({ subjectId, purpose: purposeId, now: false });
        found = true;
      } else if (asked.objection && status?.state === 'refused') {
        outcome.refused.push({ subjectId, purpose: purposeId, now: false });
        found = true;
      } else if (asked.objection && purpose) {
        await ledger.record({
          subjectId,
          purpose: purposeId,
          state: 'refused',
          source: 'form',
          method: 'form-submit',
        });
        outcome.refused.push({ subjectId, purpose: purposeId, now: true });
        found = true;
      }
    }
    if (!found) outcome.noGrant.push(purposeId);
  }
  return outcome;
}

/** The outcome in words for the requester (the completion note) and the audit trail. */
export function describeConsentOutcome(policy: Policy, outcome: ConsentRequestOutcome): string {
  const name = (id: string) => policy.purposes.find((purpose) => purpose.id === id)?.name ?? id;
  const names = (ids: string[]) => [...new Set(ids)].map(name).join(', ');
  const parts: string[] = [];
  if (outcome.withdrawn.length) {
    parts.push(
      `Consent withdrawn in our consent ledger for: ${names(outcome.withdrawn.map((w) => w.purpose))}.`,
    );
  }
  if (outcome.refused.length) {
    parts.push(`Recorded as refused (your objection): ${names(outcome.refused.map((r) => r.purpose))}.`);
  }
  if (outcome.kept.length) {
    parts.push(
      `Kept, as consent you gave again after confirming this request: ${names(outcome.kept.map((k) => k.purpose))} (withdraw it again on our consent pages or with the unsubscribe link in our mail).`,
    );
  }
  if (outcome.noGrant.length) {
    parts.push(
      `No consent on record under your email address for: ${names(outcome.noGrant)} (cookie choices are per browser: change them on the cookie settings page).`,
    );
  }
  if (outcome.otherBasis.length) {
    parts.push(`Stopped on your objection, outside the consent ledger: ${names(outcome.otherBasis)}.`);
  }
  return parts.join(' ') || 'Nothing was on record to withdraw.';
}
