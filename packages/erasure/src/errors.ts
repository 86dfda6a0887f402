import { PrivacyKitError } from '@privacykit/core';

/** Stable codes thrown by `@privacykit/erasure`. */
export type ErasureErrorCode =
  | 'erasure/invalid-input'
  | 'erasure/no-identities'
  | 'erasure/unknown-table'
  | 'erasure/invalid-strategy'
  | 'erasure/plan-not-found'
  | 'erasure/changed-while-planning'
  /** Another worker holds the plan's lease (executing or verifying it): nothing was written. */
  | 'erasure/plan-locked'
  /**
   * This worker's lease was taken over (it expired): the batch in flight was rolled back, or the
   * verification was not stored.
   */
  | 'erasure/lease-lost'
  /** Identities can be purged only once the plan is executed and verified. */
  | 'erasure/not-verified'
  /** Identities can be purged only once every Art 19 notification of the plan is delivered. */
  | 'erasure/notifications-pending'
  /** The plan's identities (and secrets) were purged: it can no longer be executed or verified. */
  | 'erasure/identities-purged'
  /**
   * A legal hold placed since the plan was made covers a row the plan would change: nothing was
   * erased; plan again with `replace: true` (the new plan keeps the held rows, Art 17(3)(e)).
   */
  | 'erasure/held-since-planning'
  /**
   * `planErasure({ replace: true })`: the request's current plan has started or finished (its
   * status is past `planned`, it has progress, or a worker holds it): nothing was changed.
   */
  | 'erasure/plan-already-run'
  /**
   * The plan was replaced by a newer plan of its request (`planErasure({ replace: true })`): it
   * is never executed or verified; nothing was written. `details.supersededBy` names the new plan.
   */
  | 'erasure/plan-superseded'
  /**
   * `deliverPending`: the recipient accepted an Art 19 notification but the database failed to
   * record the delivery. The notification stays claimed until `details.claimedUntil`, then is
   * sent again under the same idempotency key; the other due notifications were left for the
   * next call.
   */
  | 'erasure/delivery-not-recorded'
  /** The Art 19 notification was delivered already; its first receipt is kept. */
  | 'erasure/notification-already-delivered'
  /**
   * A write lost to concurrent writers (a deadlock the database broke, or a serialization
   * failure) every time it was run again: nothing of it was stored; call again.
   */
  | 'erasure/write-conflict';

export function erasureError(
  code: ErasureErrorCode,
  message: string,
  options: ConstructorParameters<typeof PrivacyKitError>[2] = {},
): PrivacyKitError<ErasureErrorCode> {
  return new PrivacyKitError<ErasureErrorCode>(code, message, options);
}

/**
 * Checks the page and batch sizes and the lease of an execution or a verification before either
 * claims the plan: a size of 0 read a page of nothing as the end (tables marked done, a
 * verification passed, with nothing looked at) or never ended.
 */
export function assertRunOptions(options: Readonly<Record<string, unknown>>, names: readonly string[]): void {
  for (const name of names) {
    const value = options[name];
    if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 1)) {
      throw erasureError('erasure/invalid-input', `${name} must be a positive integer, got ${String(value)}`);
    }
  }
}
