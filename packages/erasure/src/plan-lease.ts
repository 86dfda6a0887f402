import { randomToken, toInstant } from '@privacykit/core';
import type { Clock } from '@privacykit/core';
import { writeStatement } from '@privacykit/core/db';
import type { Kysely } from 'kysely';
import { erasureError } from './errors.js';
import type { ErasurePlan } from './plan.js';
import { writeTransaction } from './write-transaction.js';

/** How long an execution lease lasts without being renewed, by default (5 minutes). */
export const DEFAULT_LEASE_MS = 300_000;

/**
 * What a lease is held for: executing the plan, or verifying it (a verification read while an
 * execution changes the rows would prove nothing, so the two exclude each other).
 */
export type LeasePurpose = 'execution' | 'verification';

/** The owner token starts with the purpose, so a refusal can say what holds the plan. */
const VERIFICATION_PREFIX = 'verify:';

/** What the stored owner token says the lease is held for (tokens without a prefix: execution). */
export function leasePurposeOf(owner: string): LeasePurpose {
  return owner.startsWith(VERIFICATION_PREFIX) ? 'verification' : 'execution';
}

/** The `erasure/plan-locked` error for a plan whose lease another worker holds until `expiresAt`. */
export function planLockedError(planId: string, owner: string, expiresAt: string) {
  const heldFor = leasePurposeOf(owner);
  return erasureError(
    'erasure/plan-locked',
    `erasure plan ${planId} is being ${heldFor === 'verification' ? 'verified' : 'executed'} by another worker (lease until ${expiresAt}): nothing was written; try again once it is done`,
    { details: { planId, heldFor, leaseExpiresAt: expiresAt } },
  );
}

/**
 * The `erasure/plan-superseded` error for a plan replaced by `supersededBy` (`planErasure` with
 * `replace: true`): a worker or a page still holding the old plan must not run it.
 */
export function planSupersededError(planId: string, supersededBy: string | null | undefined) {
  return erasureError(
    'erasure/plan-superseded',
    `erasure plan ${planId} was replaced by ${supersededBy ? `plan ${supersededBy}` : 'a newer plan of its request'}: it is never executed or verified, and nothing was written`,
    { details: { planId, ...(supersededBy ? { supersededBy } : {}) } },
  );
}

/**
 * One worker's exclusive right to execute or verify a plan, held in the plan's row (an owner
 * token and an expiry). Every write goes through `transaction`, whose first statement renews
 * the lease only while this worker still owns it: a worker that stalled past its lease and was
 * taken over cannot commit another batch, so two workers never interleave their writes.
 */
export interface PlanLease {
  readonly owner: string;
  /**
   * A transaction whose first statement renews the lease.
   *
   * @throws PrivacyKitError `erasure/lease-lost` (nothing of `fn` is committed) when another
   *   worker took the plan over.
   */
  transaction<T>(fn: (trx: Kysely<any>) => Promise<T>): Promise<T>;
  /** Renews the lease on its own, before a step that writes nothing to the database. */
  renew(): Promise<void>;
  /** Gives the lease up, if this worker still holds it. */
  release(): Promise<void>;
}

interface ClaimOptions {
  db: Kysely<any>;
  plan: ErasurePlan;
  clock: Clock;
  leaseMs: number;
  /** Default `execution`. */
  purpose?: LeasePurpose;
}

function planRow(db: Kysely<any>, plan: ErasurePlan) {
  return db
    .updateTable('privacykit_erasure_plans')
    .where('tenant', '=', plan.tenant)
    .where('id', '=', plan.id);
}

/**
 * Takes the plan's lease with one conditional `UPDATE` (free, or expired because its
 * worker crashed or stalled), checked by the affected-row count — atomic on every engine.
 *
 * @throws PrivacyKitError `erasure/plan-locked` while another worker's lease runs,
 *   `erasure/plan-superseded` once a newer plan of its request replaced it,
 *   `erasure/identities-purged` once the plan's identities are purged, `erasure/plan-not-found`.
 */
export async function claimPlanLease(options: ClaimOptions): Promise<PlanLease> {
  const { db, plan, clock, leaseMs } = options;
  const purpose = options.purpose ?? 'execution';
  const owner = `${purpose === 'verification' ? VERIFICATION_PREFIX : ''}${randomToken(16)}`;
  const expiry = () => toInstant(new Date(clock.now().getTime() + leaseMs));

  // A second attempt only when the lease was released between the claim and the read-back.
  for (let attempt = 0; ; attempt++) {
    const now = toInstant(clock.now());
    // SQLite: waits off the thread for a write lock another connection of the process holds.
    const claimed = await writeStatement(db, (trx) =>
      planRow(trx, plan)
        .set({ lease_owner: owner, lease_expires_at: expiry() })
        .where('identities_purged_at', 'is', null)
        // In the same conditional update as the lease: a re-plan marks the plan superseded only
        // while no lease is live, so either it wins and no lease is ever granted, or it refuses.
        .where('status', '<>', 'superseded')
        .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_expires_at', '<=', now)]))
        .executeTakeFirst(),
    );
    if (Number(claimed.numUpdatedRows ?? 0) === 1) break;
    const row = await db
      .selectFrom('privacykit_erasure_plans')
      .select(['status', 'superseded_by', 'lease_owner', 'lease_expires_at', 'identities_purged_at'])
      .where('tenant', '=', plan.tenant)
      .where('id', '=', plan.id)
      .executeTakeFirst();
    if (!row)
      throw erasureError('erasure/plan-not-found', `no erasure plan ${plan.id} for tenant ${plan.tenant}`);
    // Before the purge: a superseded plan's identities are purged with it, and "replaced" is why.
    if (row.status === 'superseded') throw planSupersededError(plan.id, row.superseded_by);
    if (row.identities_purged_at) {
      throw erasureError(
        'erasure/identities-purged',
        purpose === 'verification'
          ? `the identities of erasure plan ${plan.id} were purged at ${row.identities_purged_at}: it cannot be verified again (its stored verification stands)`
          : `the identities of erasure plan ${plan.id} were purged at ${row.identities_purged_at}: it cannot be executed again`,
        { details: { planId: plan.id, identitiesPurgedAt: row.identities_purged_at } },
      );
    }
    if (row.lease_owner && row.lease_expires_at > toInstant(clock.now())) {
      throw planLockedError(plan.id, row.lease_owner, row.lease_expires_at);
    }
    if (attempt >= 2) {
      throw erasureError('erasure/plan-locked', `erasure plan ${plan.id} is contended: try again`, {
        details: { planId: plan.id },
      });
    }
  }

  const lost = () =>
    erasureError(
      'erasure/lease-lost',
      purpose === 'verification'
        ? `the verification lease of erasure plan ${plan.id} expired and another worker took the plan over: this verification stopped and was not stored`
        : `the execution lease of erasure plan ${plan.id} expired and another worker took it over: this run stopped, nothing of its last batch was written`,
      { details: { planId: plan.id } },
    );
  const renewWith = async (executor: Kysely<any>) => {
    const result = await planRow(executor, plan)
      .set({ lease_expires_at: expiry() })
      .where('lease_owner', '=', owner)
      // A worker that stalled past its lease before writing anything may find its plan replaced
      // meanwhile (a plan never run can be superseded once no lease is live): it must not start.
      .where('status', '<>', 'superseded')
      .executeTakeFirst();
    if (Number(result.numUpdatedRows ?? 0) === 1) return;
    const row = await executor
      .selectFrom('privacykit_erasure_plans')
      .select(['status', 'superseded_by'])
      .where('tenant', '=', plan.tenant)
      .where('id', '=', plan.id)
      .executeTakeFirst();
    if (row?.status === 'superseded') throw planSupersededError(plan.id, row.superseded_by);
    throw lost();
  };
  return {
    owner,
    // Run again, whole, when it lost to a concurrent writer: another plan of the same subject
    // restricting the same kept rows (a unique key), or a deadlock with the host's own writes.
    // SQLite: `BEGIN IMMEDIATE`, waiting off the thread for a write lock another connection of
    // the process holds (see core's `writeTransaction`).
    transaction: (fn) =>
      writeTransaction(db, async (trx) => {
        // First, so the plan row is locked before any host row: every worker locks in one order.
        await renewWith(trx);
        return fn(trx);
      }),
    // Each through core's `writeStatement`, like the claim.
    renew: () => writeStatement(db, renewWith),
    async release() {
      await writeStatement(db, (trx) =>
        planRow(trx, plan)
          .set({ lease_owner: null, lease_expires_at: null })
          .where('lease_owner', '=', owner)
          .execute(),
      );
    },
  };
}
