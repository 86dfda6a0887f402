import { DEFAULT_TENANT, systemClock, toInstant } from '@privacykit/core';
import type { Clock } from '@privacykit/core';
import { truncateSqliteLog, writeTransaction } from '@privacykit/core/db';
import type { Kysely } from 'kysely';
import { erasureError } from './errors.js';
import { planLockedError } from './plan-lease.js';
import { getErasureRecord } from './plan.js';
import type { ErasureReport } from './execute.js';
import type { ErasurePlan, ErasureRecord } from './plan.js';

export interface PurgeErasureIdentitiesOptions {
  db: Kysely<any>;
  planId: string;
  tenant?: string;
  clock?: Clock;
}

/** Attempts when the plan changes between the checks and the purge (a verification, a run). */
const ATTEMPTS = 3;

/**
 * Purges the subject's identities from an erasure's record once it is done (Art 5(1)(c) data
 * minimisation, Art 5(1)(e) storage limitation): the plan's `identities` become empty, and so do
 * those of its delivered Art 19 notifications; the plan's per-request secrets (the HMAC key of
 * its pseudonyms and the seed of its random values) are destroyed, so a guessed identity can no
 * longer be turned into the pseudonym it left in the kept rows (Recital 26); and the
 * consent-ledger `subjectId` is removed from the plan and its report. What proves the erasure
 * stays: the plan's tables, counts and retention grounds, the execution report, the stored
 * verification, the timestamps (shredding included), the kept rows and their restrictions, the
 * notifications' receipts. Purging twice is a no-op.
 *
 * Afterwards the plan cannot be executed or verified again (both need the identities): they
 * throw `erasure/identities-purged`.
 *
 * @throws PrivacyKitError `erasure/not-verified` unless the plan is `complete` or `partial` and
 *   its last verification is `ok`; `erasure/notifications-pending` while an Art 19 notification
 *   is not delivered (its recipient still needs the identities); `erasure/plan-locked` while a
 *   worker executes or verifies the plan; `erasure/plan-not-found`.
 */
export async function purgeErasureIdentities(options: PurgeErasureIdentitiesOptions): Promise<ErasureRecord> {
  const { db, planId } = options;
  const tenant = options.tenant ?? DEFAULT_TENANT;
  const clock = options.clock ?? systemClock;
  for (let attempt = 1; ; attempt++) {
    const row = await db
      .selectFrom('privacykit_erasure_plans')
      .select([
        'status',
        'plan',
        'report',
        'verification',
        'identities_purged_at',
        'lease_owner',
        'lease_expires_at',
      ])
      .where('tenant', '=', tenant)
      .where('id', '=', planId)
      .executeTakeFirst();
    if (!row) throw erasureError('erasure/plan-not-found', `no erasure plan ${planId}`);
    if (row.identities_purged_at) return getErasureRecord({ db, planId, tenant });
    if (row.status !== 'complete' && row.status !== 'partial') {
      throw erasureError(
        'erasure/not-verified',
        `erasure plan ${planId} is ${row.status}: execute it to completion and verify it before purging its identities`,
        { details: { planId, status: row.status } },
      );
    }
    const verification = row.verification ? (JSON.parse(row.verification) as { ok?: unknown }) : undefined;
    if (verification?.ok !== true) {
      throw erasureError(
        'erasure/not-verified',
        verification
          ? `the last verification of erasure plan ${planId} found leftovers: fix them and verify again before purging its identities`
          : `erasure plan ${planId} is not verified: run verifyErasure before purging its identities`,
        { details: { planId, status: row.status } },
      );
    }
    const now = toInstant(clock.now());
    if (row.lease_owner && row.lease_expires_at > now) {
      throw planLockedError(planId, row.lease_owner, row.lease_expires_at);
    }
    // The consent-ledger subject id goes too: it is often derived from an identity
    // (`email:<address>`), and the shredding it served is done (`shreddedAt` stays as proof).
    const { subjectId: _subjectId, ...plan } = JSON.parse(String(row.plan)) as ErasurePlan;
    const report = JSON.parse(String(row.report)) as ErasureReport;
    if (report.shredding) delete report.shredding.subjectId;
    // Core's, not retried: it inserts nothing (no unique key to lose), and it locks the plan's
    // row before the notices' (by primary key), the order of every other transaction that writes
    // both, so the database has no deadlock to break. A plan changed since the checks is this
    // loop's to handle. SQLite: `BEGIN IMMEDIATE`, waiting off the thread for a write lock
    // another connection of the process holds.
    const purged = await writeTransaction(db, async (trx) => {
      // The conditional update first: it locks the plan's row (and, on SQLite, the database)
      // before anything is read, and only applies if nothing changed since the checks above.
      const result = await trx
        .updateTable('privacykit_erasure_plans')
        .set({
          plan: JSON.stringify({ ...plan, identities: {} }),
          report: JSON.stringify(report),
          // The per-request secrets go too: with the HMAC key, anyone holding the database could
          // recompute a guessed identity's pseudonym (emails are easy to guess) and find the kept
          // rows it masked; with the seed, which rows' `random` values were drawn for this
          // subject. Nothing needs them any more: the plan can no longer be executed or verified.
          // The columns are NOT NULL: empty text is "no secret".
          hmac_key: '',
          seed: '',
          identities_purged_at: now,
          updated_at: now,
        })
        .where('tenant', '=', tenant)
        .where('id', '=', planId)
        .where('identities_purged_at', 'is', null)
        .where('status', '=', row.status)
        .where('verification', '=', row.verification)
        .where('report', '=', row.report)
        .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_expires_at', '<=', now)]))
        .executeTakeFirst();
      if (Number(result.numUpdatedRows ?? 0) !== 1) return false;
      const notices = await trx
        .selectFrom('privacykit_erasure_outbox')
        .select(['id', 'recipient_id', 'status', 'payload'])
        .where('tenant', '=', tenant)
        .where('plan_id', '=', planId)
        .execute();
      const undelivered = notices.filter((notice) => notice.status !== 'delivered');
      if (undelivered.length > 0) {
        throw erasureError(
          'erasure/notifications-pending',
          `erasure plan ${planId} has Art 19 notifications not delivered yet (${undelivered
            .map((notice) => `${notice.recipient_id}: ${notice.status}`)
            .join(', ')}): deliver or confirm them before purging the identities they carry`,
          {
            details: {
              planId,
              notifications: undelivered.map((notice) => ({
                id: notice.id,
                recipientId: notice.recipient_id,
                status: notice.status,
              })),
            },
          },
        );
      }
      for (const notice of notices) {
        const payload = JSON.parse(String(notice.payload)) as Record<string, unknown>;
        await trx
          .updateTable('privacykit_erasure_outbox')
          .set({ payload: JSON.stringify({ ...payload, identities: {} }) })
          .where('tenant', '=', tenant)
          .where('id', '=', notice.id)
          .execute();
      }
      return true;
    });
    if (purged) {
      // The identities are zeroed in the file (secure_delete); their old page images leave the
      // write-ahead log too.
      await truncateSqliteLog(db);
      return getErasureRecord({ db, planId, tenant });
    }
    if (attempt >= ATTEMPTS) {
      throw erasureError('erasure/plan-locked', `erasure plan ${planId} kept changing: try again`, {
        details: { planId },
      });
    }
  }
}
