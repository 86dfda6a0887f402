import type { Policy } from '@privacykit/core';
import type { RedactionCandidate } from '@privacykit/requests';
import { planRetention, ruleZone, startOfCivilDay } from '@privacykit/retention';

/** The policy's rule for what a rights request holds: one year after closure for access or rectification, three for objection. */
export const REQUEST_LOG_RULE = 'id-documents';

/**
 * Days after receipt when a request never verified loses its personal data. The policy gives no
 * period for abandoned submissions: this is the portal's own default (anyone can type someone
 * else's address, so an unproven submission is kept only long enough for its subject to verify
 * it or ask about it). `AppDeps.unverifiedRequestDays` overrides it.
 */
export const DEFAULT_UNVERIFIED_REQUEST_DAYS = 30;

/**
 * When a request's personal data is due to go (`RequestService.redact`'s `dueAt`), from the
 * policy's `id-documents` rule itself — evaluated by `@privacykit/retention` with the request's
 * closure and right as the rule's facts — so the notice the subject reads and what the portal
 * enforces cannot drift (Art 5(1)(e), 13(2)(a)). Rights the rule does not name get null: the
 * policy states no period for them, so they are kept. Requests never verified go
 * `unverifiedDays` after receipt.
 *
 * @throws at start when the policy has no `id-documents` rule, or `unverifiedDays` is not a whole number ≥ 1.
 */
export function requestLogDueAt(
  policy: Policy,
  options: { unverifiedDays?: number } = {},
): (request: RedactionCandidate) => Date | null {
  const rule = policy.retention.find((candidate) => candidate.id === REQUEST_LOG_RULE);
  if (!rule) throw new Error(`the policy has no "${REQUEST_LOG_RULE}" retention rule for the request log`);
  const zone = ruleZone(rule, policy.zone);
  const unverifiedDays = options.unverifiedDays ?? DEFAULT_UNVERIFIED_REQUEST_DAYS;
  if (!Number.isInteger(unverifiedDays) || unverifiedDays < 1)
    throw new Error('unverifiedRequestDays must be a whole number of days, at least 1');
  return (request) => {
    if (request.closedAt === null) {
      return new Date(request.receivedAt.getTime() + unverifiedDays * 86_400_000);
    }
    const plan = planRetention(
      rule,
      { requestClosed: request.closedAt, requestType: request.right },
      { zone },
    );
    // The rule's last phase is when nothing of the request is left.
    const due = plan.phases.at(-1)?.due ?? null;
    return due === null ? null : startOfCivilDay(due, zone);
  };
}
