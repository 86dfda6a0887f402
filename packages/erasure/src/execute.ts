import {
  canonicalJson,
  defineDataMap,
  isPrivacyKitError,
  newId,
  systemClock,
  toInstant,
} from '@privacykit/core';
import type { Clock, DataMap, DataMapTable, JsonValue } from '@privacykit/core';
import {
  countSubjectRows,
  engineOf,
  subjectCondition,
  subjectRowsQuery,
  truncateSqliteLog,
} from '@privacykit/core/db';
import type { SubjectScope } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { Expression, ExpressionBuilder, Kysely, RawBuilder, SqlBool } from 'kysely';
import { assertRunOptions, erasureError } from './errors.js';
import { holdSourceOf } from './hold-source.js';
import type { HoldLookup, HoldSource } from './hold-source.js';
import type { KeyShredder } from './key-shredder.js';
import { notificationRows } from './outbox.js';
import { DEFAULT_LEASE_MS, claimPlanLease, planSupersededError } from './plan-lease.js';
import type { PlanLease } from './plan-lease.js';
import type { ErasureGround, ErasurePlan, RetentionSource, TablePlan } from './plan.js';
import { erasureGroundArticle } from './plan.js';
import { rowKey } from './row-key.js';
import { maskValue, sameValue } from './strategy.js';
import type { ColumnStrategy, ErasureSecrets } from './strategy.js';
import { subjectPage } from './subject-pages.js';
import { keyText, keysMatchInSql } from './kept-by-set.js';
import { holdsMaskedValue, maskAssignments, setBasedMasking, valueMasks } from './value-masks.js';
import type { ValueMask } from './value-masks.js';

export interface ExecuteErasureOptions {
  db: Kysely<any>;
  clock?: Clock;
  /** Rows read through the client per batch; each batch is one transaction (default 1000). */
  batchSize?: number;
  /**
   * Rows per transaction for the set-based paths that send no rows or keys through the client
   * (deletes of tables with nothing kept, value-only masks by key range): memory stays bounded
   * whatever the size, so only the length of each transaction is limited (default 50,000).
   */
  setBasedBatchSize?: number;
  /** Destroys the subject's consent-ledger key (crypto-shredding) when the plan has a `subjectId`. */
  keyShredder?: KeyShredder;
  /**
   * Called after each committed batch, e.g. for a progress bar. An error thrown here stops the
   * execution as a crash would (the next run resumes after the last committed batch).
   */
  onBatch?: (progress: BatchProgress) => void | Promise<void>;
  /**
   * How long this worker's hold on the plan lasts without being renewed (default 5 minutes). It
   * is renewed with every batch, so it only needs to outlast the longest batch (and the
   * `keyShredder` call); a worker that crashed is taken over once its lease has expired.
   */
  leaseMs?: number;
  /**
   * The legal holds, asked again before anything is erased: a hold placed since the plan was
   * made (the case opened while the erasure awaited approval) stops the execution with
   * `erasure/held-since-planning` before any row changes; plan again with `replace: true` to keep
   * those rows and erase the rest.
   * Pass the same source as to `planErasure` (e.g. the retention engine).
   */
  holds?: HoldSource | HoldLookup;
}

export interface BatchProgress {
  planId: string;
  table: string;
  deleted: number;
  updated: number;
  restricted: number;
}

export interface TableReport {
  table: string;
  /** `done`, `failed` (with `reason`), or `skipped` because a child table failed first. */
  status: 'done' | 'failed' | 'skipped';
  /** Rows deleted, masked and restricted by this run (0 on a repeated run). */
  deleted: number;
  updated: number;
  restricted: number;
  reason?: string;
  ms: number;
}

export interface RetainedReport {
  table: string;
  source: RetentionSource;
  ground: ErasureGround;
  article: string;
  ruleId?: string;
  reason: string;
  rows: number;
  retainUntil: { earliest?: string; latest?: string; open: number };
}

/**
 * The outcome of an execution (Art 17, R09): `complete` when everything was erased,
 * `partial` when everything planned was done but rows are kept under Art 17(3) grounds (listed
 * in `retained`, to be told to the subject), `failed` when a table could not be erased (listed
 * in `failures`) — never a silent "complete".
 */
export interface ErasureReport {
  planId: string;
  requestId?: string;
  tenant: string;
  status: 'complete' | 'partial' | 'failed';
  startedAt: string;
  finishedAt: string;
  ms: number;
  /** Rows changed by this run; 0 when the plan had already been executed. */
  changes: number;
  tables: TableReport[];
  failures: { table: string; reason: string }[];
  retained: RetainedReport[];
  shredding?: {
    /** Removed from the stored report by `purgeErasureIdentities` (it may be an identity). */
    subjectId?: string;
    status: 'shredded' | 'already-shredded' | 'failed';
    at?: string;
    reason?: string;
  };
  /** Art 19 notifications in the outbox for this plan. */
  notifications: number;
}

interface StoredRetained {
  mask: Record<string, ColumnStrategy>;
  ground: string;
  reason: string | null;
  until: string | null;
}

interface PlanRow {
  plan: string;
  status: string;
  superseded_by: string | null;
  hmac_key: string;
  seed: string;
  shredded_at: string | null;
  report: string | null;
}

async function loadPlanRow(db: Kysely<any>, plan: ErasurePlan): Promise<PlanRow> {
  const row = await db
    .selectFrom('privacykit_erasure_plans')
    .select(['plan', 'status', 'superseded_by', 'hmac_key', 'seed', 'shredded_at', 'report'])
    .where('tenant', '=', plan.tenant)
    .where('id', '=', plan.id)
    .executeTakeFirst();
  if (!row)
    throw erasureError('erasure/plan-not-found', `no erasure plan ${plan.id} for tenant ${plan.tenant}`);
  assertStoredPlan(plan, String((row as PlanRow).plan));
  return row as PlanRow;
}

/**
 * The plan given is the plan stored under its id: what was reviewed and approved is what runs. A
 * plan file edited or stale (other identities, other tables) ran as given before, against the
 * stored plan's record — another person erased, and a kept invoice deleted.
 */
export function assertStoredPlan(plan: ErasurePlan, stored: string): void {
  let given: string;
  try {
    given = canonicalJson(JSON.parse(JSON.stringify(plan)) as JsonValue);
  } catch (cause) {
    throw erasureError('erasure/invalid-input', 'the plan is not a plan planErasure made', { cause });
  }
  if (given !== canonicalJson(JSON.parse(stored) as JsonValue)) {
    throw erasureError(
      'erasure/invalid-input',
      `the plan given differs from the stored plan ${plan.id} (edited, or not the latest of it): run the stored plan (getErasureRecord) after reviewing it`,
    );
  }
}

export async function loadRetained(
  db: Kysely<any>,
  plan: ErasurePlan,
  table: string,
): Promise<Map<string, StoredRetained>> {
  // The plan lists every group of rows it keeps: a table with none has no retained rows stored.
  if (!plan.tables.some((t) => t.table === table && t.retained.some((group) => group.rows > 0))) {
    return new Map();
  }
  const rows = await db
    .selectFrom('privacykit_erasure_retained')
    .select(['row_key', 'mask', 'ground', 'reason', 'retain_until'])
    .where('plan_id', '=', plan.id)
    .where('tenant', '=', plan.tenant)
    .where('table_name', '=', table)
    .execute();
  // Rows of one group share their mask: parse each distinct mask once.
  const masks = new Map<string, Record<string, ColumnStrategy>>();
  const maskOf = (text: string): Record<string, ColumnStrategy> => {
    let mask = masks.get(text);
    if (!mask) {
      mask = JSON.parse(text) as Record<string, ColumnStrategy>;
      masks.set(text, mask);
    }
    return mask;
  };
  return new Map(
    rows.map((row) => [
      String(row.row_key),
      {
        mask: row.mask ? maskOf(String(row.mask)) : {},
        ground: row.ground,
        reason: row.reason,
        until: row.retain_until,
      },
    ]),
  );
}

/**
 * The mask of a table's kept rows when every kept row has the same one (one group, or groups
 * with equal masks); `undefined` when the plan keeps none of its rows or masks them unlike.
 */
export function sharedKeptMask(tablePlan: TablePlan): Record<string, ColumnStrategy> | undefined {
  const groups = tablePlan.retained.filter((group) => group.rows > 0);
  if (groups.length === 0) return undefined;
  const first = JSON.stringify(groups[0]!.maskColumns);
  return groups.every((group) => JSON.stringify(group.maskColumns) === first)
    ? groups[0]!.maskColumns
    : undefined;
}

/**
 * `exists` a stored kept row of the plan for the subject row's key: one lookup by the kept
 * rows' primary key per row. On PostgreSQL the `offset 0` keeps it a per-row subplan: pulled up
 * into a join, freshly stored kept rows without statistics are estimated at one row and joined
 * by a nested loop over every pair (seconds for a few thousand rows).
 */
export function isKept(db: Kysely<any>, plan: ErasurePlan, table: DataMapTable) {
  return (eb: ExpressionBuilder<any, any>) =>
    eb.exists(
      db
        .selectFrom('privacykit_erasure_retained as kept')
        .select(sql`1`.as('one'))
        .where('kept.plan_id', '=', plan.id)
        .where('kept.table_name', '=', table.name)
        .where('kept.row_key', '=', keyText(table))
        .where('kept.tenant', '=', plan.tenant)
        .$if(engineOf(db) === 'postgres', (query) => query.offset(0)),
    );
}

/** `exists` a restriction of the plan for the subject row's key, by its primary key (see `isKept`). */
export function isRestricted(db: Kysely<any>, plan: ErasurePlan, table: DataMapTable) {
  return (eb: ExpressionBuilder<any, any>) =>
    eb.exists(
      db
        .selectFrom('privacykit_erasure_restrictions as restricted')
        .select(sql`1`.as('one'))
        .where('restricted.tenant', '=', plan.tenant)
        .where('restricted.table_name', '=', table.name)
        .where('restricted.row_key', '=', keyText(table))
        // By whichever plan: a second erasure of the same person restricts the rows both keep
        // under its own id, and the row is restricted all the same (before, the first plan could
        // then never verify, nor purge its identities).
        .$if(engineOf(db) === 'postgres', (query) => query.offset(0)),
    );
}

/** The data map the plan was made with (plans are self-contained so a re-run needs only `db`). */
export function planDataMap(plan: ErasurePlan): DataMap {
  return defineDataMap(plan.dataMap);
}

function keyIn(
  table: DataMapTable,
  keys: readonly unknown[][],
): (eb: ExpressionBuilder<any, any>) => Expression<SqlBool> {
  const pk = table.primaryKey;
  return (eb) =>
    pk.length === 1
      ? eb(
          eb.ref(pk[0]!),
          'in',
          keys.map((key) => key[0]),
        )
      : eb(
          eb.refTuple(...(pk as [string, string])),
          'in',
          keys.map((key) => eb.tuple(...(key as [unknown, unknown]))),
        );
}

function keyMatch(table: DataMapTable, key: readonly unknown[]): RawBuilder<unknown> {
  return sql.join(
    table.primaryKey.map((column, i) => sql`${sql.ref(column)} = ${key[i]}`),
    sql` and `,
  );
}

async function postgresTypes(db: Kysely<any>, table: string): Promise<Map<string, string>> {
  const result = await sql<{ name: string; type: string }>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
    from pg_attribute a
    where a.attrelid = to_regclass(${table}) and a.attnum > 0 and not a.attisdropped`.execute(db);
  return new Map(result.rows.map((row) => [row.name, row.type]));
}

interface MaskedRow {
  key: unknown[];
  values: Record<string, unknown>;
}

/** One set-based update for a batch: `set c = case when pk = ? then ? … end where pk in (…)`. */
async function applyMasks(
  trx: Kysely<any>,
  table: DataMapTable,
  rows: readonly MaskedRow[],
  types: Map<string, string> | undefined,
): Promise<number> {
  if (rows.length === 0) return 0;
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row.values)))];
  const set: Record<string, RawBuilder<unknown>> = {};
  for (const column of columns) {
    const relevant = rows.filter((row) => column in row.values);
    const first = relevant[0]!.values[column];
    const uniform =
      relevant.length === rows.length && relevant.every((row) => sameValue(row.values[column], first));
    let expression: RawBuilder<unknown>;
    if (uniform) expression = sql`${first}`;
    else {
      const branches = relevant.map(
        (row) => sql`when ${keyMatch(table, row.key)} then ${row.values[column]}`,
      );
      expression = sql`case ${sql.join(branches, sql` `)} else ${sql.ref(column)} end`;
      // PostgreSQL types a CASE over untyped parameters as text: cast it to the column's type.
      const type = types?.get(column);
      if (type) expression = sql`cast(${expression} as ${sql.raw(type)})`;
    }
    set[column] = expression;
  }
  const result = await trx
    .updateTable(table.name)
    .set(set)
    .where(
      keyIn(
        table,
        rows.map((row) => row.key),
      ),
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows ?? 0);
}

/** Rows per transaction of the set-based paths by default. */
const DEFAULT_SET_BASED_BATCH_SIZE = 50_000;

/** Bound parameters per statement: under SQLite's 32,766 and PostgreSQL's and MySQL's 65,535. */
const STATEMENT_PARAMETERS = 30_000;

async function deleteInBatches(options: {
  db: Kysely<any>;
  lease: PlanLease;
  scope: SubjectScope;
  table: DataMapTable;
  batchSize: number;
  planId: string;
  report: TableReport;
  onBatch: ExecuteErasureOptions['onBatch'];
  at: () => string;
}): Promise<void> {
  const { db, scope, table, batchSize, report } = options;
  const pk = table.primaryKey;
  const mysql = engineOf(db) === 'mysql';
  for (;;) {
    const batch = subjectRowsQuery(scope, table.name)
      .select(pk.map((column) => `${table.name}.${column}`))
      .limit(batchSize);
    // MySQL refuses a subquery on the table being deleted from unless it is materialised.
    const keys = mysql
      ? db.selectFrom(batch.as('batch')).select(pk.map((column) => `batch.${column}`))
      : batch;
    const deleted = await options.lease.transaction(async (trx) => {
      const result = await trx
        .deleteFrom(table.name)
        .where((eb) =>
          pk.length === 1
            ? eb(eb.ref(pk[0]!), 'in', keys)
            : eb(eb.refTuple(...(pk as [string, string])), 'in', keys as never),
        )
        .executeTakeFirst();
      const n = Number(result.numDeletedRows ?? 0);
      await trx
        .updateTable('privacykit_erasure_progress')
        .set((eb) => ({
          deleted: eb('deleted', '+', n),
          // The last batch also marks the table done: one commit fewer, same crash safety.
          ...(n < batchSize
            ? { status: 'done', error: null, finished_at: options.at() }
            : { status: 'running' }),
        }))
        .where('plan_id', '=', options.planId)
        .where('table_name', '=', table.name)
        .execute();
      return n;
    });
    report.deleted += deleted;
    if (deleted > 0)
      await reportBatch(options.onBatch, { planId: options.planId, table: table.name, deleted });
    if (deleted < batchSize) break;
  }
}

/**
 * Value-only masks of a whole table in key-range batches: each batch is one transaction holding
 * one `UPDATE … SET c = CASE …` over the subject's rows in the range and the table's progress
 * (its last key, or `done` with the last batch), so a crash loses nothing and a re-run never
 * masks a row twice (a pseudonym of a pseudonym would differ).
 */
async function maskInKeyRanges(options: {
  lease: PlanLease;
  scope: SubjectScope;
  table: DataMapTable;
  masks: readonly ValueMask[];
  types: Map<string, string> | undefined;
  after: unknown;
  batchSize: number;
  planId: string;
  tenant: string;
  report: TableReport;
  onBatch: ExecuteErasureOptions['onBatch'];
  at: () => string;
}): Promise<void> {
  const { scope, table, masks, report } = options;
  const ref = `${table.name}.${table.primaryKey[0]!}`;
  const set = maskAssignments(masks, options.types);
  const changes = Object.keys(set).length > 0;
  let after = options.after;
  for (;;) {
    let next = subjectRowsQuery(scope, table.name).select(`${ref} as k`);
    if (after !== undefined) next = next.where(ref, '>', after);
    const boundary = (await next
      .orderBy(ref)
      .limit(1)
      .offset(options.batchSize - 1)
      .executeTakeFirst()) as { k: unknown } | undefined;
    const last = boundary?.k;
    const updated = await options.lease.transaction(async (trx) => {
      let n = 0;
      if (changes) {
        let update = trx
          .updateTable(table.name)
          .set(set)
          .where(subjectCondition(scope, table.name))
          .where(holdsMaskedValue(table, masks));
        if (after !== undefined) update = update.where(ref, '>', after);
        if (last !== undefined) update = update.where(ref, '<=', last);
        n = Number((await update.executeTakeFirst()).numUpdatedRows ?? 0);
      }
      await trx
        .updateTable('privacykit_erasure_progress')
        .set((eb) => ({
          updated: eb('updated', '+', n),
          ...(last !== undefined
            ? { status: 'running', last_key: JSON.stringify([last]) }
            : { status: 'done', error: null, finished_at: options.at() }),
        }))
        .where('plan_id', '=', options.planId)
        .where('tenant', '=', options.tenant)
        .where('table_name', '=', table.name)
        .execute();
      return n;
    });
    report.updated += updated;
    if (updated > 0)
      await reportBatch(options.onBatch, { planId: options.planId, table: table.name, updated });
    if (last === undefined) return;
    after = last;
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function ancestorsOf(map: DataMap, name: string): Set<string> {
  const out = new Set<string>();
  const visit = (table: string) => {
    for (const parent of map.tables.get(table)?.parents ?? []) {
      if (!out.has(parent)) {
        out.add(parent);
        visit(parent);
      }
    }
  };
  visit(name);
  return out;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Executes an erasure plan (Art 17): children before parents, in bounded batches by key, one
 * transaction per batch holding the set-based deletes and updates, the restrictions of kept
 * rows (Art 18(2): storage only) and the table's progress — so a crash loses nothing and a
 * re-run resumes after the last committed batch, and running a finished plan again changes
 * nothing. Pseudonyms and random values come from the plan's stored secrets, identical on every
 * retry. A table without a primary key, or one the database refuses (permissions, constraints),
 * fails the request loudly: the report is `failed`, names the table and reason, and its parent
 * tables are skipped (erasing a parent first would orphan the child rows out of reach). When
 * nothing failed, the plan's completion and its Art 19 notifications are written in one
 * transaction; the consent-ledger key is shredded when a `keyShredder` and `subjectId` are given.
 *
 * One worker at a time: execution first takes the plan's lease (a conditional update of the
 * plan's row), renews it in every batch's transaction and releases it at the end. Another
 * worker meanwhile gets `erasure/plan-locked` and writes nothing — whether it executes or
 * verifies (`verifyErasure` takes the same lease); once a crashed worker's lease has expired
 * (`leaseMs`), the next run takes the plan over and resumes where it stopped.
 *
 * A plan replaced by a newer one (`planErasure` with `replace: true`) is refused with
 * `erasure/plan-superseded` before anything is written, checked in the same conditional update
 * that takes the lease and again in every renewal.
 *
 * @throws PrivacyKitError `erasure/plan-locked` while another worker executes or verifies the plan,
 *   `erasure/plan-superseded` for a replaced plan, `erasure/lease-lost` when this worker stalled past its lease and another took the plan over
 *   (its batch in flight is rolled back), `erasure/identities-purged` once the plan's identities
 *   were purged, `erasure/plan-not-found`.
 */
export async function executeErasure(
  plan: ErasurePlan,
  options: ExecuteErasureOptions,
): Promise<ErasureReport> {
  // Before the lease: a batch of 0 marked tables done with nothing erased (a page of none reads
  // as the end), and a set-based batch of 0 never ended, committing empty transactions for ever.
  assertRunOptions(options as unknown as Record<string, unknown>, [
    'leaseMs',
    'batchSize',
    'setBasedBatchSize',
  ]);
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const clock = options.clock ?? systemClock;
  const lease = await claimPlanLease({ db: options.db, plan, clock, leaseMs });
  let report: ErasureReport;
  try {
    report = await executeLeased(plan, options, lease);
  } catch (error) {
    // Released now so a re-run can resume at once; if this fails too, the lease simply expires.
    // The execution's own error is the one to report.
    await lease.release().catch(() => undefined);
    throw error;
  }
  await lease.release();
  // What was deleted or masked is zeroed in a SQLite file (secure_delete); its old page images
  // leave the write-ahead log too, so a copy of the files taken now holds none of it.
  await truncateSqliteLog(options.db);
  return report;
}

/**
 * Refuses to execute when a hold now covers a row of the subject that the plan would change:
 * one it deletes or masks, or one it keeps masked. Rows the plan already keeps untouched (held
 * when it was made) may stay held.
 */
async function assertNoNewHolds(
  plan: ErasurePlan,
  scope: SubjectScope,
  holds: HoldSource,
  batchSize: number,
): Promise<void> {
  for (const tablePlan of plan.tables) {
    const table = scope.dataMap.tables.get(tablePlan.table);
    if (!table) continue;
    const retained = await loadRetained(scope.db, plan, table.name);
    let after: unknown[] | undefined;
    for (;;) {
      const page = await subjectPage(scope, table, { columns: [], after, limit: batchSize });
      if (page.length === 0) break;
      const keys = page.map((row) => rowKey(row, table.primaryKey));
      const newlyHeld: { key: string; reason?: string }[] = [];
      for (const entry of await holds.heldRows({ tenant: plan.tenant, table: table.name, keys })) {
        const held = typeof entry === 'string' ? { key: entry } : entry;
        const kept = retained.get(held.key);
        if (!kept || Object.keys(kept.mask).length > 0) newlyHeld.push(held);
      }
      if (newlyHeld.length > 0) {
        throw erasureError(
          'erasure/held-since-planning',
          `a legal hold placed since the plan was made covers ${newlyHeld.length === 1 ? 'a row' : `${newlyHeld.length} rows`} of "${table.name}" it would change (${newlyHeld[0]?.reason ?? 'legal hold'}): nothing was erased; plan the erasure again (replace: true) to keep the held rows and erase the rest`,
          {
            details: {
              table: table.name,
              keys: newlyHeld.slice(0, 20).map((held) => held.key),
              reasons: [...new Set(newlyHeld.map((held) => held.reason ?? 'legal hold'))],
            },
          },
        );
      }
      if (page.length < batchSize) break;
      const tail = page[page.length - 1]!;
      after = table.primaryKey.map((column) => tail[column]);
    }
  }
}

async function executeLeased(
  plan: ErasurePlan,
  options: ExecuteErasureOptions,
  lease: PlanLease,
): Promise<ErasureReport> {
  const { db } = options;
  const clock = options.clock ?? systemClock;
  const batchSize = options.batchSize ?? 1000;
  const setBasedBatchSize = options.setBasedBatchSize ?? DEFAULT_SET_BASED_BATCH_SIZE;
  const stored = await loadPlanRow(db, plan);
  // The lease was refused to a superseded plan; this only catches a row changed by hand.
  if (stored.status === 'superseded') throw planSupersededError(plan.id, stored.superseded_by);
  const secrets: ErasureSecrets = { hmacKey: stored.hmac_key, seed: stored.seed };
  const dataMap = planDataMap(plan);
  const scope: SubjectScope = { db, dataMap, identities: plan.identities, tenant: plan.tenant };
  const postgres = engineOf(db) === 'postgres';
  const started = clock.now();
  const startedMs = performance.now();

  // A complete run changes nothing more: only a run that will still erase is checked.
  const holds = holdSourceOf(options.holds);
  if (holds && stored.status !== 'complete') await assertNoNewHolds(plan, scope, holds, batchSize);

  const progressByTable = await startProgress(db, lease, plan, {
    at: toInstant(started),
    planned: stored.status === 'planned',
  });

  const reports: TableReport[] = [];
  const failed = new Set<string>();
  const blockedByChild = new Map<string, string>();

  for (const tablePlan of plan.tables) {
    const tableStarted = performance.now();
    const table = dataMap.tables.get(tablePlan.table)!;
    const report: TableReport = {
      table: table.name,
      status: 'done',
      deleted: 0,
      updated: 0,
      restricted: 0,
      ms: 0,
    };
    reports.push(report);
    const fail = async (reason: string, status: 'failed' | 'skipped' = 'failed') => {
      report.status = status;
      report.reason = reason;
      failed.add(table.name);
      for (const ancestor of ancestorsOf(dataMap, table.name)) {
        if (!blockedByChild.has(ancestor)) blockedByChild.set(ancestor, table.name);
      }
      await saveProgress(lease, plan, table.name, {
        status: 'failed',
        error: reason,
        at: toInstant(clock.now()),
      });
    };

    const progress = progressByTable.get(table.name) ?? { status: 'pending', restricted: 0 };
    if (progress.status === 'done') {
      report.ms = performance.now() - tableStarted;
      continue;
    }
    const child = blockedByChild.get(table.name);
    if (child) {
      await fail(`not erased because its child table "${child}" could not be erased first`, 'skipped');
      report.ms = performance.now() - tableStarted;
      continue;
    }
    if (table.primaryKey.length === 0) {
      try {
        const left = (await countSubjectRows(scope, [table.name]))[table.name] ?? 0;
        if (left > 0) {
          await fail(
            tablePlan.blockedReason ?? `"${table.name}" has no primary key: it cannot be erased by key`,
          );
        } else {
          await saveProgress(lease, plan, table.name, { status: 'done', at: toInstant(clock.now()) });
        }
      } catch (error) {
        if (
          isPrivacyKitError(error, 'erasure/lease-lost') ||
          isPrivacyKitError(error, 'erasure/plan-superseded')
        )
          throw error;
        await fail(message(error));
      }
      report.ms = performance.now() - tableStarted;
      continue;
    }

    let after: unknown[] | undefined = progress.lastKey;
    // Value-only masks of every remaining row, in SQL by key range (no rows through the client).
    const maskAllInKeyRanges = (masks: readonly ValueMask[], types: Map<string, string> | undefined) =>
      maskInKeyRanges({
        lease,
        scope,
        table,
        masks,
        types,
        after: after?.[0],
        batchSize: setBasedBatchSize,
        planId: plan.id,
        tenant: plan.tenant,
        report,
        onBatch: options.onBatch,
        at: () => toInstant(clock.now()),
      });
    try {
      const keptMask = tablePlan.action === 'delete-row' ? sharedKeptMask(tablePlan) : undefined;
      if (keptMask && setBasedMasking(scope, table, keptMask) && (await keysMatchInSql(scope, table))) {
        // Rows kept alike (one mask): restricted, the others deleted, the kept ones masked —
        // all set-based from the plan's stored keys, no rows through the client.
        if (progress.restricted === 0) {
          report.restricted += await restrictRetained(lease, plan, table.name, toInstant(clock.now()));
        }
        const deleted = await lease.transaction(async (trx) => {
          const result = await trx
            .deleteFrom(table.name)
            .where(subjectCondition({ ...scope, db: trx }, table.name))
            .where((eb) => eb.not(isKept(trx, plan, table)(eb)))
            .executeTakeFirst();
          const n = Number(result.numDeletedRows ?? 0);
          if (n > 0) {
            await trx
              .updateTable('privacykit_erasure_progress')
              .set((eb) => ({ deleted: eb('deleted', '+', n), status: 'running' }))
              .where('plan_id', '=', plan.id)
              .where('tenant', '=', plan.tenant)
              .where('table_name', '=', table.name)
              .execute();
          }
          return n;
        });
        report.deleted += deleted;
        if (deleted > 0) await reportBatch(options.onBatch, { planId: plan.id, table: table.name, deleted });
        const types =
          postgres && Object.keys(keptMask).length > 0 ? await postgresTypes(db, table.name) : undefined;
        const masks = await valueMasks(scope, table, keptMask, { secrets, after: after?.[0] });
        if (masks) {
          await maskAllInKeyRanges(masks, types);
          report.ms = performance.now() - tableStarted;
          continue;
        }
        // Too many distinct values to mask in SQL: the kept rows are masked page by page below.
      }
      const retained = await loadRetained(db, plan, table.name);
      const maskColumns = new Set(Object.keys(tablePlan.maskColumns));
      for (const entry of retained.values())
        for (const column of Object.keys(entry.mask)) maskColumns.add(column);
      const pseudonyms = new Map<string, unknown>();
      const types = postgres && maskColumns.size > 0 ? await postgresTypes(db, table.name) : undefined;
      if (tablePlan.action === 'delete-row' && retained.size === 0) {
        // Nothing of this table is kept: set-based batches straight from the traversal, no
        // keys through the client. Deleted rows leave the traversal, so a re-run simply
        // continues with what is left.
        await deleteInBatches({
          db,
          lease,
          scope,
          table,
          batchSize: setBasedBatchSize,
          planId: plan.id,
          report,
          onBatch: options.onBatch,
          at: () => toInstant(clock.now()),
        });
        report.ms = performance.now() - tableStarted;
        continue;
      }
      if (
        tablePlan.action === 'mask' &&
        retained.size === 0 &&
        setBasedMasking(scope, table, tablePlan.maskColumns)
      ) {
        // Every row gets the table's value-only masks: done in SQL, one key range per batch,
        // from the distinct values of the subject's rows — no rows through the client.
        const masks = await valueMasks(scope, table, tablePlan.maskColumns, { secrets, after: after?.[0] });
        if (masks) {
          await maskAllInKeyRanges(masks, types);
          report.ms = performance.now() - tableStarted;
          continue;
        }
      }
      let finished = false;
      if (retained.size > 0 && progress.restricted === 0) {
        report.restricted += await restrictRetained(lease, plan, table.name, toInstant(clock.now()));
      }
      for (;;) {
        const page = await subjectPage(scope, table, { columns: [...maskColumns], after, limit: batchSize });
        if (page.length === 0) break;
        const deletes: unknown[][] = [];
        const masks: MaskedRow[] = [];
        for (const row of page) {
          const key = rowKey(row, table.primaryKey);
          const keyValues = table.primaryKey.map((column) => row[column]);
          const kept = retained.get(key);
          const strategies = kept
            ? kept.mask
            : tablePlan.action === 'mask'
              ? tablePlan.maskColumns
              : undefined;
          if (!strategies) {
            deletes.push(keyValues);
            continue;
          }
          const values: Record<string, unknown> = {};
          for (const [column, strategy] of Object.entries(strategies)) {
            const value = row[column];
            let next: unknown;
            // A pseudonym depends only on the value: one HMAC per distinct value.
            if (strategy.strategy === 'hmac' && (typeof value === 'string' || typeof value === 'number')) {
              const memo = `${column}\u0000${typeof value}\u0000${value}`;
              next = pseudonyms.get(memo);
              if (next === undefined) {
                next = maskValue(value, strategy, { secrets, table: table.name, column, key });
                pseudonyms.set(memo, next);
              }
            } else next = maskValue(value, strategy, { secrets, table: table.name, column, key });
            if (!sameValue(next, row[column])) values[column] = next;
          }
          if (Object.keys(values).length > 0) masks.push({ key: keyValues, values });
        }
        const tail = page[page.length - 1]!;
        const lastKey = table.primaryKey.map((column) => tail[column]);
        const counts = await lease.transaction(async (trx) => {
          let deleted = 0;
          let updated = 0;
          // Chunks keep every statement under the engines' bound-parameter limits.
          for (const chunk of chunks(deletes, Math.floor(STATEMENT_PARAMETERS / table.primaryKey.length))) {
            const result = await trx.deleteFrom(table.name).where(keyIn(table, chunk)).executeTakeFirst();
            deleted += Number(result.numDeletedRows ?? 0);
          }
          const first = masks[0];
          const uniform =
            first !== undefined &&
            table.primaryKey.length === 1 &&
            masks.length === page.length &&
            masks.every(
              (row) =>
                Object.keys(row.values).length === Object.keys(first.values).length &&
                Object.entries(first.values).every(([column, value]) => sameValue(row.values[column], value)),
            );
          if (uniform) {
            // Every row of the page gets the same values: one update over the page's key range,
            // still limited to the subject's rows, with no key list to send.
            const pk = table.primaryKey[0]!;
            const result = await trx
              .updateTable(table.name)
              .set(first.values)
              .where(pk, '>=', first.key[0])
              .where(pk, '<=', lastKey[0])
              .where(subjectCondition(scope, table.name))
              .executeTakeFirst();
            updated += Number(result.numUpdatedRows ?? 0);
          } else {
            const perRow = table.primaryKey.length * (1 + maskColumns.size) + maskColumns.size;
            for (const chunk of chunks(masks, Math.max(1, Math.floor(STATEMENT_PARAMETERS / perRow)))) {
              updated += await applyMasks(trx, table, chunk, types);
            }
          }
          await trx
            .updateTable('privacykit_erasure_progress')
            .set((eb) => ({
              last_key: JSON.stringify(lastKey),
              deleted: eb('deleted', '+', deleted),
              updated: eb('updated', '+', updated),
              // A short page is the last: it also marks the table done (one commit fewer).
              ...(page.length < batchSize
                ? { status: 'done', error: null, finished_at: toInstant(clock.now()) }
                : { status: 'running' }),
            }))
            .where('plan_id', '=', plan.id)
            .where('table_name', '=', table.name)
            .execute();
          return { deleted, updated, restricted: 0 };
        });
        report.deleted += counts.deleted;
        report.updated += counts.updated;
        report.restricted += counts.restricted;
        after = lastKey;
        await reportBatch(options.onBatch, { planId: plan.id, table: table.name, ...counts });
        if (page.length < batchSize) {
          finished = true;
          break;
        }
      }
      if (!finished)
        await saveProgress(lease, plan, table.name, { status: 'done', at: toInstant(clock.now()) });
    } catch (error) {
      // The caller's own error (a crash, a cancellation) stops the run; the next run resumes.
      if (error instanceof CallerError) throw error.cause;
      // Another worker owns the plan now: this run stops without writing anything more.
      if (
        isPrivacyKitError(error, 'erasure/lease-lost') ||
        isPrivacyKitError(error, 'erasure/plan-superseded')
      )
        throw error;
      await fail(message(error));
    }
    report.ms = performance.now() - tableStarted;
  }

  let shredding: ErasureReport['shredding'];
  if (options.keyShredder && plan.subjectId) {
    if (stored.shredded_at) {
      shredding = { subjectId: plan.subjectId, status: 'already-shredded', at: stored.shredded_at };
    } else {
      // The key store is not in this database: the lease is renewed first so it outlasts the call.
      await lease.renew();
      let failure: unknown;
      try {
        await options.keyShredder.shredSubject(plan.subjectId);
      } catch (error) {
        failure = error;
      }
      if (failure === undefined) {
        const at = toInstant(clock.now());
        await lease.transaction(async (trx) => {
          await trx
            .updateTable('privacykit_erasure_plans')
            .set({ shredded_at: at, updated_at: at })
            .where('tenant', '=', plan.tenant)
            .where('id', '=', plan.id)
            .execute();
        });
        shredding = { subjectId: plan.subjectId, status: 'shredded', at };
      } else {
        shredding = { subjectId: plan.subjectId, status: 'failed', reason: message(failure) };
      }
    }
  }

  const failures = reports
    .filter((r) => r.status !== 'done')
    .map((r) => ({ table: r.table, reason: r.reason ?? 'failed' }));
  if (shredding?.status === 'failed')
    failures.push({ table: '(consent key store)', reason: shredding.reason ?? 'failed' });
  const retained: RetainedReport[] = plan.tables.flatMap((t: TablePlan) =>
    t.retained.map((g) => ({
      table: t.table,
      source: g.source,
      ground: g.ground,
      article: g.article ?? erasureGroundArticle[g.ground],
      ...(g.ruleId ? { ruleId: g.ruleId } : {}),
      reason: g.reason,
      rows: g.rows,
      retainUntil: g.retainUntil,
    })),
  );
  const status: ErasureReport['status'] =
    failures.length > 0 ? 'failed' : retained.length > 0 ? 'partial' : 'complete';
  const finished = clock.now();
  const report: ErasureReport = {
    planId: plan.id,
    ...(plan.requestId ? { requestId: plan.requestId } : {}),
    tenant: plan.tenant,
    status,
    startedAt: toInstant(started),
    finishedAt: toInstant(finished),
    ms: Math.round(performance.now() - startedMs),
    changes: reports.reduce((n, r) => n + r.deleted + r.updated + r.restricted, 0),
    tables: reports.map((r) => ({ ...r, ms: Math.round(r.ms * 10) / 10 })),
    failures,
    retained,
    ...(shredding ? { shredding } : {}),
    notifications: 0,
  };

  report.notifications = await lease.transaction(async (trx) => {
    let count = 0;
    if (status !== 'failed') {
      const existing = new Set(
        (
          await trx
            .selectFrom('privacykit_erasure_outbox')
            .select('idempotency_key')
            .where('tenant', '=', plan.tenant)
            .where('plan_id', '=', plan.id)
            .execute()
        ).map((row) => String(row.idempotency_key)),
      );
      const rows = notificationRows(plan, toInstant(finished)).filter(
        (row) => !existing.has(row.idempotency_key),
      );
      if (rows.length > 0) {
        await trx
          .insertInto('privacykit_erasure_outbox')
          .values(rows.map((row) => ({ ...row, id: newId(finished) })))
          .execute();
      }
      count = existing.size + rows.length;
    }
    await trx
      .updateTable('privacykit_erasure_plans')
      .set({
        status,
        report: JSON.stringify(
          await planTotals(trx, plan, { ...report, notifications: count }, stored.report),
        ),
        updated_at: toInstant(finished),
        ...(status === 'failed' ? {} : { completed_at: toInstant(finished) }),
      })
      .where('tenant', '=', plan.tenant)
      .where('id', '=', plan.id)
      .execute();
    return count;
  });
  return report;
}

/**
 * The report stored on the plan: what every run of it changed, not only the last one — a run
 * resumed after a crash, or a second run of a finished plan, reports (and returns) its own
 * changes, but must not overwrite the record of what the erasure did. Counts come from the
 * per-table progress rows, which each batch updates in its own transaction; the start is the
 * first run's.
 */
async function planTotals(
  trx: Kysely<any>,
  plan: ErasurePlan,
  run: ErasureReport,
  previous: string | null,
): Promise<ErasureReport> {
  const rows = await trx
    .selectFrom('privacykit_erasure_progress')
    .select(['table_name', 'deleted', 'updated', 'restricted'])
    .where('plan_id', '=', plan.id)
    .where('tenant', '=', plan.tenant)
    .execute();
  const totals = new Map(rows.map((row) => [String(row.table_name), row]));
  const tables = run.tables.map((table) => {
    const total = totals.get(table.table);
    return total
      ? {
          ...table,
          deleted: Number(total.deleted),
          updated: Number(total.updated),
          restricted: Number(total.restricted),
        }
      : table;
  });
  const before = previous ? (JSON.parse(previous) as Partial<ErasureReport>) : undefined;
  return {
    ...run,
    startedAt: before?.startedAt ?? run.startedAt,
    changes: tables.reduce((n, table) => n + table.deleted + table.updated + table.restricted, 0),
    tables,
  };
}

/** Carries an error thrown by the caller's `onBatch` past the per-table failure handling. */
class CallerError extends Error {
  constructor(cause: unknown) {
    super('onBatch failed', { cause });
  }
}

/**
 * Tells the caller a batch committed (counts it does not name are 0); its callback throwing is
 * told apart from a database error.
 */
async function reportBatch(
  onBatch: ((progress: BatchProgress) => void | Promise<void>) | undefined,
  progress: Pick<BatchProgress, 'planId' | 'table'> & Partial<BatchProgress>,
): Promise<void> {
  if (!onBatch) return;
  try {
    await onBatch({ deleted: 0, updated: 0, restricted: 0, ...progress });
  } catch (error) {
    throw new CallerError(error);
  }
}

interface Progress {
  status: string;
  restricted: number;
  lastKey?: unknown[];
}

/**
 * Restricts the plan's kept rows of a table to storage only (Art 18(2)), set-based from the
 * plan's retained rows, in one transaction with the table's progress.
 */
async function restrictRetained(
  lease: PlanLease,
  plan: ErasurePlan,
  table: string,
  at: string,
): Promise<number> {
  return lease.transaction(async (trx) => {
    const kept = trx
      .selectFrom('privacykit_erasure_retained')
      .where('plan_id', '=', plan.id)
      .where('tenant', '=', plan.tenant)
      .where('table_name', '=', table);
    await trx
      .deleteFrom('privacykit_erasure_restrictions')
      .where('tenant', '=', plan.tenant)
      .where('table_name', '=', table)
      .where('row_key', 'in', kept.select('row_key'))
      .execute();
    const result = await trx
      .insertInto('privacykit_erasure_restrictions')
      .columns([
        'tenant',
        'table_name',
        'row_key',
        'plan_id',
        'purposes',
        'ground',
        'reason',
        'retain_until',
        'created_at',
      ])
      .expression(
        kept.select((eb) => [
          'tenant',
          'table_name',
          'row_key',
          'plan_id',
          eb.val('all').as('purposes'),
          'ground',
          'reason',
          'retain_until',
          eb.val(at).as('created_at'),
        ]),
      )
      .executeTakeFirst();
    const restricted = Number(result.numInsertedOrUpdatedRows ?? 0);
    await trx
      .updateTable('privacykit_erasure_progress')
      .set({ restricted })
      .where('plan_id', '=', plan.id)
      .where('table_name', '=', table)
      .execute();
    return restricted;
  });
}

/**
 * Every table's progress of the plan, read at once; the missing rows are created, and a fresh
 * plan marked `executing`, in one transaction (one commit, not one per table).
 */
async function startProgress(
  db: Kysely<any>,
  lease: PlanLease,
  plan: ErasurePlan,
  options: { at: string; planned: boolean },
): Promise<Map<string, Progress>> {
  const rows = await db
    .selectFrom('privacykit_erasure_progress')
    .select(['table_name', 'status', 'last_key', 'restricted'])
    .where('plan_id', '=', plan.id)
    .where('tenant', '=', plan.tenant)
    .execute();
  const progress = new Map<string, Progress>();
  for (const row of rows) {
    progress.set(String(row.table_name), {
      status: row.status,
      restricted: Number(row.restricted),
      ...(row.last_key ? { lastKey: JSON.parse(row.last_key) } : {}),
    });
  }
  const missing = plan.tables.map((t) => t.table).filter((table) => !progress.has(table));
  if (missing.length > 0 || options.planned) {
    await lease.transaction(async (trx) => {
      if (options.planned) {
        await trx
          .updateTable('privacykit_erasure_plans')
          .set({ status: 'executing', updated_at: options.at })
          .where('tenant', '=', plan.tenant)
          .where('id', '=', plan.id)
          .execute();
      }
      if (missing.length > 0) {
        await trx
          .insertInto('privacykit_erasure_progress')
          .values(
            missing.map((table) => ({
              plan_id: plan.id,
              table_name: table,
              tenant: plan.tenant,
              status: 'pending',
              started_at: options.at,
            })),
          )
          .execute();
      }
    });
  }
  for (const table of missing) progress.set(table, { status: 'pending', restricted: 0 });
  return progress;
}

async function saveProgress(
  lease: PlanLease,
  plan: ErasurePlan,
  table: string,
  change: { status: 'done' | 'failed'; error?: string; at: string },
): Promise<void> {
  await lease.transaction(async (trx) => {
    await trx
      .updateTable('privacykit_erasure_progress')
      .set({
        status: change.status,
        error: change.error ?? null,
        ...(change.status === 'done' ? { finished_at: change.at } : {}),
      })
      .where('plan_id', '=', plan.id)
      .where('tenant', '=', plan.tenant)
      .where('table_name', '=', table)
      .execute();
  });
}
