import { normaliseIdentity, systemClock, toInstant } from '@privacykit/core';
import type { Clock, DataMap } from '@privacykit/core';
import { countSubjectRows, subjectRowsQuery } from '@privacykit/core/db';
import type { SubjectScope } from '@privacykit/core/db';
import type { ExpressionBuilder, Kysely } from 'kysely';
import {
  assertStoredPlan,
  isKept,
  isRestricted,
  loadRetained,
  planDataMap,
  sharedKeptMask,
} from './execute.js';
import { keysMatchInSql } from './kept-by-set.js';
import { assertRunOptions, erasureError } from './errors.js';
import { DEFAULT_LEASE_MS, claimPlanLease } from './plan-lease.js';
import type { PlanLease } from './plan-lease.js';
import type { ErasurePlan, TablePlan } from './plan.js';
import { rowKey } from './row-key.js';
import { looksMasked } from './strategy.js';
import type { ErasureSecrets } from './strategy.js';
import { subjectPage } from './subject-pages.js';
import { distinctValuesLookMasked, setBasedMasking } from './value-masks.js';

export interface Leftover {
  table: string;
  key?: string;
  reason: string;
}

export interface ErasureVerification {
  planId: string;
  ok: boolean;
  checkedAt: string;
  /** Per table: the subject's rows still found, and of them how many the plan keeps or masked. */
  tables: Record<string, { found: number; retained: number; masked: number }>;
  /** Rows that should not be there (at most `maxLeftovers` listed; `leftoverCount` counts all). */
  leftovers: Leftover[];
  leftoverCount: number;
}

export interface VerifyErasureOptions {
  db: Kysely<any>;
  plan: ErasurePlan;
  /** Defaults to the data map the plan was made with. */
  dataMap?: DataMap;
  clock?: Clock;
  batchSize?: number;
  maxLeftovers?: number;
  /**
   * How long this verification's hold on the plan lasts without being renewed (default 5
   * minutes). It is renewed before each table and each page of rows read one by one, so it only
   * needs to outlast the longest query.
   */
  leaseMs?: number;
  /** Called after each table is checked; an error thrown here stops the verification (nothing stored). */
  onTable?: (progress: VerifyProgress) => void | Promise<void>;
}

/** Reported after each table is checked, e.g. for a progress bar. */
export interface VerifyProgress {
  planId: string;
  table: string;
  /** The subject's rows found in the table (kept, masked, or leftovers). */
  found: number;
}

/**
 * Proves an erasure (Art 17, Art 5(2)): re-runs the subject traversal from the ORIGINAL
 * identities and checks that only the planned remainder is left — every row found is one the
 * plan keeps (and it is restricted, and its masked columns are masked) or one of a masking
 * table whose masked columns no longer hold the subject's values. The result is stored with the
 * plan, as part of the request's record.
 *
 * A verification takes the plan's lease, as an execution does, so the two never overlap: while
 * a worker executes the plan (or verifies it), `verifyErasure` refuses with
 * `erasure/plan-locked` and stores nothing, and an execution started meanwhile is refused the
 * same way. The lease is renewed as the tables are read and released at the end; a verifier that
 * stalled past it and was taken over stops with `erasure/lease-lost` without storing its result,
 * which would describe the rows as they were before the other worker changed them.
 *
 * Limits: a pseudonym cannot be told from an original without the original, so `hmac` columns
 * are checked for a pseudonym's shape and against the subject's identities.
 *
 * Verification needs the identities: once they are purged (`purgeErasureIdentities`), the
 * stored verification is the proof and a new one is refused.
 *
 * @throws PrivacyKitError `erasure/plan-locked` while another worker executes or verifies the
 *   plan, `erasure/lease-lost` when this verification stalled past its lease and another worker
 *   took the plan over, `erasure/identities-purged` after the plan's identities were purged,
 *   `erasure/plan-not-found`, `erasure/invalid-input` for a bad `leaseMs`.
 */
export async function verifyErasure(options: VerifyErasureOptions): Promise<ErasureVerification> {
  // A batch of 0 read a page of nothing as the end: verified, with nothing looked at.
  assertRunOptions(options as unknown as Record<string, unknown>, ['leaseMs', 'batchSize']);
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const clock = options.clock ?? systemClock;
  const lease = await claimPlanLease({
    db: options.db,
    plan: options.plan,
    clock,
    leaseMs,
    purpose: 'verification',
  });
  let verification: ErasureVerification;
  try {
    verification = await verifyLeased(options, lease);
  } catch (error) {
    // Released now so an execution can start at once; if this fails too, the lease expires.
    await lease.release().catch(() => undefined);
    throw error;
  }
  await lease.release();
  return verification;
}

async function verifyLeased(options: VerifyErasureOptions, lease: PlanLease): Promise<ErasureVerification> {
  const { db, plan } = options;
  const clock = options.clock ?? systemClock;
  const batchSize = options.batchSize ?? 10_000;
  const maxLeftovers = options.maxLeftovers ?? 1000;
  const row = await db
    .selectFrom('privacykit_erasure_plans')
    .select(['plan', 'hmac_key', 'seed'])
    .where('tenant', '=', plan.tenant)
    .where('id', '=', plan.id)
    .executeTakeFirstOrThrow();
  // What is verified is the stored plan, as what is executed (see assertStoredPlan).
  assertStoredPlan(plan, String(row.plan));
  const secrets: ErasureSecrets = { hmacKey: row.hmac_key, seed: row.seed };
  const dataMap = options.dataMap ?? planDataMap(plan);
  const scope: SubjectScope = { db, dataMap, identities: plan.identities, tenant: plan.tenant };
  const identityValues = new Set(
    Object.entries(plan.identities).flatMap(([kind, values]) =>
      values.map((value) => normaliseIdentity(dataMap, kind, value).trim().toLowerCase()),
    ),
  );

  const leftovers: Leftover[] = [];
  let leftoverCount = 0;
  const leftover = (entry: Leftover) => {
    leftoverCount++;
    if (leftovers.length < maxLeftovers) leftovers.push(entry);
  };
  const tables: ErasureVerification['tables'] = {};
  const counts = await countSubjectRows(
    scope,
    plan.tables.map((t) => t.table),
  );

  /** Checks one table's rows found for the subject, counting them into `summary`. */
  const checkTable = async (tablePlan: TablePlan, summary: ErasureVerification['tables'][string]) => {
    const { found } = summary;
    const table = dataMap.tables.get(tablePlan.table)!;
    if (table.primaryKey.length === 0) {
      leftover({ table: table.name, reason: `${found} rows left in a table without a primary key` });
      return;
    }
    const keptMask = sharedKeptMask(tablePlan);
    if (
      keptMask &&
      tablePlan.action === 'delete-row' &&
      setBasedMasking(scope, table, keptMask) &&
      (await keysMatchInSql(scope, table))
    ) {
      // Every row found is kept and restricted (counted against the stored keys in SQL), and
      // every value left in the masked columns looks masked: nothing to list. Otherwise the
      // rows are checked one by one below, which names them.
      const row = (await subjectRowsQuery(scope, table.name)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where(isKept(db, plan, table))
        .where(isRestricted(db, plan, table))
        .executeTakeFirst()) as { n: unknown } | undefined;
      if (
        Number(row?.n ?? 0) === found &&
        (await distinctValuesLookMasked(scope, table, keptMask, { secrets, identities: identityValues }))
      ) {
        summary.retained = found;
        return;
      }
    }
    const retained = await loadRetained(db, plan, table.name);
    if (
      tablePlan.action === 'mask' &&
      retained.size === 0 &&
      setBasedMasking(scope, table, tablePlan.maskColumns) &&
      (await distinctValuesLookMasked(scope, table, tablePlan.maskColumns, {
        secrets,
        identities: identityValues,
      }))
    ) {
      // Every value left in every masked column looks masked: no row to list. (Otherwise the
      // rows are checked one by one below, which names them.)
      summary.masked = found;
      return;
    }
    const restricted = new Set(
      (
        await db
          .selectFrom('privacykit_erasure_restrictions')
          .select('row_key')
          .where('tenant', '=', plan.tenant)
          .where('table_name', '=', table.name)
          // Restricted by this plan or by a later one of the same person (see isRestricted).
          .where('row_key', 'in', (eb: ExpressionBuilder<any, any>) =>
            eb
              .selectFrom('privacykit_erasure_retained')
              .select('row_key')
              .where('plan_id', '=', plan.id)
              .where('tenant', '=', plan.tenant)
              .where('table_name', '=', table.name),
          )
          .execute()
      ).map((r) => String(r.row_key)),
    );
    const maskColumns = new Set(Object.keys(tablePlan.maskColumns));
    for (const entry of retained.values())
      for (const column of Object.keys(entry.mask)) maskColumns.add(column);
    let after: unknown[] | undefined;
    for (;;) {
      const page = await subjectPage(scope, table, { columns: [...maskColumns], after, limit: batchSize });
      if (page.length === 0) break;
      for (const current of page) {
        const key = rowKey(current, table.primaryKey);
        const kept = retained.get(key);
        const strategies = kept ? kept.mask : tablePlan.action === 'mask' ? tablePlan.maskColumns : undefined;
        if (kept) {
          summary.retained++;
          if (!restricted.has(key)) leftover({ table: table.name, key, reason: 'kept but not restricted' });
        }
        if (!strategies) {
          leftover({ table: table.name, key, reason: 'still present' });
          continue;
        }
        const unmasked = Object.entries(strategies)
          .filter(
            ([column, strategy]) =>
              !looksMasked(current[column], strategy, {
                secrets,
                table: table.name,
                column,
                key,
                identities: identityValues,
              }),
          )
          .map(([column]) => column);
        if (unmasked.length > 0) {
          leftover({ table: table.name, key, reason: `not masked: ${unmasked.join(', ')}` });
        } else if (!kept) summary.masked++;
      }
      if (page.length < batchSize) break;
      const tail = page[page.length - 1]!;
      after = table.primaryKey.map((column) => tail[column]);
      await lease.renew();
    }
  };

  for (const tablePlan of plan.tables) {
    const found = counts[tablePlan.table] ?? 0;
    const summary = { found, retained: 0, masked: 0 };
    tables[tablePlan.table] = summary;
    if (found > 0) {
      // Renewed before each table (and each page read row by row): a long verification keeps the
      // plan, and one taken over after stalling finds out before reading on.
      await lease.renew();
      await checkTable(tablePlan, summary);
    }
    if (options.onTable) await options.onTable({ planId: plan.id, table: tablePlan.table, found });
  }

  const verification: ErasureVerification = {
    planId: plan.id,
    ok: leftoverCount === 0,
    checkedAt: toInstant(clock.now()),
    tables,
    leftovers,
    leftoverCount,
  };
  // Stored only while this verification still holds the plan (fenced like an execution's batch).
  await lease.transaction(async (trx) => {
    await trx
      .updateTable('privacykit_erasure_plans')
      .set({ verification: JSON.stringify(verification), updated_at: verification.checkedAt })
      .where('tenant', '=', plan.tenant)
      .where('id', '=', plan.id)
      .execute();
  });
  return verification;
}
