import { createHash } from 'node:crypto';
import { DEFAULT_TENANT, formatIssues, isPrivacyKitError, newId, zodIssues } from '@privacykit/core';
import type { Clock, DataMap, Policy } from '@privacykit/core';
import { hmacSha256Hex } from '@privacykit/core/crypto';
import {
  engineOf,
  selectExact,
  subjectCondition,
  truncateSqliteLog,
  writeStatement,
  writeTransaction,
} from '@privacykit/core/db';
import type { Engine } from '@privacykit/core/db';
import { expressionBuilder, sql } from 'kysely';
import type { Kysely, RawBuilder, SqlBool } from 'kysely';
import type { z } from 'zod';
import { candidateQuery, keyText } from './candidates.js';
import { addCivilDays, civilDateOf, startOfCivilDay } from './civil-date.js';
import type { CivilDate } from './civil-date.js';
import { duePredicate, not } from './due-predicate.js';
import type { Cutoff } from './due-predicate.js';
import { retentionError } from './errors.js';
import { withRetry } from './retry.js';
import { holdCoversTable, holdFromRow, placeHoldSchema, releaseHoldSchema } from './holds.js';
import type { HoldRow, LegalHold, PlaceHoldInput, ReleaseHoldInput } from './holds.js';
import { dueDate, factDate } from './plan.js';
import type { RetentionFacts } from './plan.js';
import { defineSchedule } from './schedule.js';
import type { RetentionSchedule, ScheduleEntry, ScheduleEntryInput } from './schedule.js';

export interface RetentionEngineOptions {
  db: Kysely<any>;
  /** Rules bound to tables: `defineSchedule(...)` or its input. */
  schedule: RetentionSchedule | readonly ScheduleEntryInput[];
  /** Needed for subject and category holds, and to check the schedule's tables. */
  dataMap?: DataMap;
  clock: Clock;
  /** Tenant, default zone, rule ids and the version certificates cite. */
  policy?: Policy;
  /** Key of the `pseudonym` anonymisation strategy (HMAC-SHA-256). */
  pseudonymKey?: string;
}

/**
 * What a sweep did to one rule's phase: `done` rows acted on, `cascade` child rows, `lifted`
 * restrictions, `invalid` rows left untouched because a fact the phase reads is malformed
 * (e.g. `15/01/2021` for a date): they need repairing, and every sweep reports them again.
 */
export interface DispositionCount {
  rule: string;
  table: string;
  phase: number;
  action: string;
  outcome: 'done' | 'cascade' | 'lifted' | 'invalid';
  count: number;
}

/** One row acted on: the evidence of Art 5(2) accountability, hashed into the run's certificate. */
export interface DispositionRecord {
  runId: string;
  tenant: string;
  rule: string;
  phase: number;
  action: string;
  table: string;
  key: string;
  dueDate: string | null;
  actedAt: string;
  outcome: DispositionCount['outcome'];
}

export interface RunCertificate {
  runId: string;
  tenant: string;
  policyVersion: string;
  startedAt: string;
  finishedAt: string | null;
  /** `failed`: the run stopped on an error; its counts and hash cover the batches committed before. */
  status: 'running' | 'finished' | 'failed';
  records: number;
  counts: DispositionCount[];
  /** SHA-256 over the run's disposition records, each as canonical JSON plus `\n`, in order. */
  hash: string | null;
}

export interface SweepOptions {
  /** Rows per batch, one transaction each (default 1000, at most 10000). */
  batchSize?: number;
  /**
   * Stop after this many rows disposed of (a number), or rows / milliseconds; the next sweep
   * resumes. Rows whose dates cannot be read are recorded `invalid` but not counted.
   */
  budget?: number | { rows?: number; milliseconds?: number };
}

export interface SweepResult extends RunCertificate {
  /** False when the budget ran out before every due row was handled (checked, not assumed). */
  complete: boolean;
  /** Expired holds released at the start of the run. */
  expiredHolds: number;
}

export interface DryRunPhase {
  rule: string;
  table: string;
  phase: number;
  action: string;
  today: CivilDate;
  /** The trigger bounds of the candidate query (`column <= value`). */
  cutoffs: Cutoff[];
  /** Rows the sweep would act on now. */
  due: number;
  /** Rows due but kept by a legal hold. */
  held: number;
  heldBy?: string;
  sampleKeys: string[];
}

export interface BacklogEntry {
  rule: string;
  table: string;
  phase: number;
  action: string;
  count: number;
  /** The earliest due date among them: how late the schedule runs. */
  oldestDue: CivilDate | null;
  /**
   * Rows the candidate query selects whose facts the planner cannot read (a malformed date):
   * never acted on, not in `count`, to be repaired.
   */
  invalid: number;
  /** Up to 20 of their keys, in key order. */
  invalidKeys: string[];
}

export interface CertificateCheck {
  runId: string;
  valid: boolean;
  expected: string | null;
  actual: string;
  records: number;
}

export interface ReviewItem {
  id: string;
  table: string;
  key: string;
  rule: string;
  phase: number;
  dueDate: string;
  queuedAt: string;
  runId: string;
}

export interface RetentionEngine {
  readonly schedule: RetentionSchedule;
  readonly tenant: string;
  /** The same candidate queries as `sweep`, counted and sampled; changes nothing. */
  dryRun(options?: { sample?: number }): Promise<DryRunPhase[]>;
  /** Applies every due phase in bounded batches, one transaction per batch (Art 5(1)(e)). */
  sweep(options?: SweepOptions): Promise<SweepResult>;
  /** Places a legal hold (Art 17(3)(e)): nothing it covers is disposed of until released. */
  placeHold(input: PlaceHoldInput): Promise<LegalHold>;
  releaseHold(id: string, input: ReleaseHoldInput): Promise<LegalHold>;
  holds(options?: { active?: boolean }): Promise<LegalHold[]>;
  /**
   * Which of `keys` (rows of `table`, keyed as `@privacykit/erasure` keys them: the primary-key
   * value as text, or a JSON array of the values for a composite key) an active hold covers — by
   * row, table, data category or subject. Each held key comes once, its reason naming every hold
   * on it (`legal hold <id>: <reason>`, oldest first, joined by "; ") and `until` the latest
   * expiry date, absent while any of its holds has none. It is the
   * `HoldSource` erasure asks, so a legal hold placed here keeps those rows out of an erasure
   * (Art 17(3)(e)). Subject and category holds need the engine's `dataMap`.
   */
  heldRows(request: {
    table: string;
    keys: readonly string[];
    tenant?: string;
  }): Promise<{ key: string; reason: string; until?: string }[]>;
  /** Releases holds whose expiry has passed (recorded as released by `system`). */
  releaseExpiredHolds(): Promise<number>;
  /** Due rows not yet handled, per rule and phase, with the oldest due date (for alerting). */
  backlog(): Promise<BacklogEntry[]>;
  certificate(runId: string): Promise<RunCertificate>;
  /** Recomputes a run's hash from its stored disposition records. */
  verifyCertificate(runId: string): Promise<CertificateCheck>;
  /** Whether a row is restricted by a retention phase (for `purpose`, when given). */
  isRestricted(input: { table: string; key: string | number; purpose?: string }): Promise<boolean>;
  /** Rows queued by `review` phases, awaiting a person. */
  reviews(): Promise<ReviewItem[]>;
}

interface DispositionRow {
  run_id: string;
  tenant: string;
  rule: string;
  phase: number;
  action: string;
  table_name: string;
  row_key: string;
  due_date: string | null;
  acted_at: string;
  outcome: string;
}

const maxParameters = 30_000;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function insertMany(db: Kysely<any>, table: string, rows: readonly Record<string, unknown>[]) {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0] ?? {}).length || 1;
  for (const part of chunks(rows, Math.floor(maxParameters / columns))) {
    await db.insertInto(table).values(part).execute();
  }
}

function toRecord(row: DispositionRow): DispositionRecord {
  return {
    runId: row.run_id,
    tenant: row.tenant,
    rule: row.rule,
    phase: Number(row.phase),
    action: row.action,
    table: row.table_name,
    key: row.row_key,
    dueDate: row.due_date,
    actedAt: row.acted_at,
    outcome: row.outcome as DispositionRecord['outcome'],
  };
}

const recordKeys = [
  'runId',
  'tenant',
  'rule',
  'phase',
  'action',
  'table',
  'key',
  'dueDate',
  'actedAt',
  'outcome',
] as const satisfies readonly (keyof DispositionRecord)[];
const sortedKeys = [...recordKeys].sort();

/**
 * A record's canonical JSON (RFC 8785) plus `\n`. Records have a fixed shape of strings, an
 * integer and null, so the canonical form is the keys in sorted order: written directly, it
 * equals `canonicalJson(record)` (a test checks) at a fraction of the cost.
 */
export function hashLine(record: DispositionRecord): string {
  let out = '{';
  for (let i = 0; i < sortedKeys.length; i++) {
    const key = sortedKeys[i] as (typeof recordKeys)[number];
    const value = record[key];
    out += `${i === 0 ? '' : ','}"${key}":${typeof value === 'number' ? String(value) : JSON.stringify(value)}`;
  }
  return `${out}}\n`;
}

/**
 * The hash lines of a batch of records, `records.map(hashLine).join('')`: a batch shares all
 * fields but the key and due date, so their JSON is written once per run of equal fields.
 */
function sameBatchFields(a: DispositionRecord, b: DispositionRecord): boolean {
  return (
    a.action === b.action &&
    a.actedAt === b.actedAt &&
    a.outcome === b.outcome &&
    a.phase === b.phase &&
    a.rule === b.rule &&
    a.runId === b.runId &&
    a.table === b.table &&
    a.tenant === b.tenant
  );
}

export function hashLines(records: readonly DispositionRecord[]): string {
  let out = '';
  let shared: DispositionRecord | undefined;
  let head = '';
  let tail = '';
  for (const r of records) {
    if (shared === undefined || !sameBatchFields(shared, r)) {
      shared = r;
      head = `{"actedAt":${JSON.stringify(r.actedAt)},"action":${JSON.stringify(r.action)},"dueDate":`;
      tail = `,"outcome":${JSON.stringify(r.outcome)},"phase":${String(r.phase)},"rule":${JSON.stringify(r.rule)},"runId":${JSON.stringify(r.runId)},"table":${JSON.stringify(r.table)},"tenant":${JSON.stringify(r.tenant)}}\n`;
    }
    out += `${head}${r.dueDate === null ? 'null' : JSON.stringify(r.dueDate)},"key":${JSON.stringify(r.key)}${tail}`;
  }
  return out;
}

/**
 * A memo key for a row's fact values (tagged and length-prefixed, so distinct values never
 * collide), or undefined for values not worth memoising.
 */
function factsKey(values: readonly unknown[]): string | undefined {
  let out = '';
  for (const value of values) {
    if (value === null || value === undefined) out += 'z;';
    else if (typeof value === 'string') out += `s${value.length}:${value}`;
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
      out += `${typeof value === 'number' ? 'n' : typeof value === 'boolean' ? 'b' : 'i'}${String(value)};`;
    else if (value instanceof Date) out += `d${value.getTime()};`;
    else return undefined;
  }
  return out;
}

/** Thrown inside a fast-path batch when the planner disagrees with SQL: the batch rolls back and reruns checked. */
class PlannerDisagrees extends Error {}

/** The due date of a row whose facts the planner cannot read (`retention/invalid-fact`). */
const unreadable = Symbol('unreadable');
type RowDue = CivilDate | null | typeof unreadable;

function holdRowsActive(now: string): RawBuilder<SqlBool> {
  return sql<SqlBool>`released_at is null and (expires_at is null or expires_at > ${now})`;
}

/**
 * Key order for records: integer keys come as numbers, or as decimal text beyond 2^53
 * (`selectExact`), compared as integers; anything else as JavaScript orders it.
 */
function keyOrder(a: unknown, b: unknown): number {
  const integer = (value: unknown) =>
    typeof value === 'number' && Number.isInteger(value)
      ? BigInt(value)
      : typeof value === 'string' && /^-?\d{16,}$/.test(value)
        ? BigInt(value)
        : undefined;
  const x = integer(a);
  const y = integer(b);
  if (x !== undefined && y !== undefined) return x < y ? -1 : x > y ? 1 : 0;
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/**
 * The retention engine of one tenant: dry runs, sweeps, legal holds, backlog and run
 * certificates over the host's tables as the schedule binds them (Art 5(1)(e), 5(2), 17(3)(e)).
 * Apply `retentionMigrations` first.
 *
 * @throws PrivacyKitError `retention/invalid-schedule`, `retention/unknown-rule`.
 */
export function createRetentionEngine(options: RetentionEngineOptions): RetentionEngine {
  const { db, clock, policy, dataMap } = options;
  const schedule = defineSchedule(options.schedule, { policy, dataMap });
  const tenant = policy?.tenant ?? DEFAULT_TENANT;
  const engine: Engine = engineOf(db);
  const policyVersion = policy?.version ?? 'unversioned';

  /**
   * The tables a table or row hold can name, with the key a row hold is compared on: the
   * schedule's tables and children, and the data map's. A hold on any other name (a typo, a
   * different case) would be active and protect nothing.
   */
  const holdTables = new Map<string, { key: string[]; tenantColumn?: string }>();
  for (const [table, mapped] of dataMap?.tables ?? []) {
    holdTables.set(table, { key: mapped.primaryKey, tenantColumn: mapped.tenantColumn });
  }
  for (const entry of schedule.entries) {
    holdTables.set(entry.table, { key: [entry.key], tenantColumn: entry.tenantColumn });
    for (const child of entry.children) {
      holdTables.set(child.table, {
        key: [child.key],
        tenantColumn: child.tenantColumn ?? dataMap?.tables.get(child.table)?.tenantColumn,
      });
    }
  }

  /**
   * A row hold's key as the sweep compares it (`cast(key as text)` = the hold's text): the
   * row is looked up by its key and its key text must be the one given. '01' for the integer
   * key 1 finds the row but would never match it in the sweep's comparison: refused, naming
   * the key to use; so is a key no row of the tenant has.
   */
  async function rowHoldKey(table: string, key: string | number): Promise<string> {
    const target = holdTables.get(table);
    const given = String(key);
    if (!target) throw retentionError('retention/invalid-hold', `unknown table "${table}"`);
    const [column, ...rest] = target.key;
    if (column === undefined || rest.length > 0) {
      // Composite keys are held as erasure keys them: a JSON array of the values, in key order.
      let values: unknown;
      try {
        values = JSON.parse(given);
      } catch {
        values = undefined;
      }
      if (!Array.isArray(values) || values.length !== target.key.length) {
        throw retentionError(
          'retention/invalid-hold',
          `"${table}" has a ${target.key.length}-column key: give the row's key as a JSON array of its values`,
        );
      }
      return given;
    }
    const ref = sql.ref(`${table}.${column}`);
    let query = db.selectFrom(table).select(keyText(engine, ref).as('k')).where(ref, '=', key).limit(2);
    if (target.tenantColumn) query = query.where(sql.ref(`${table}.${target.tenantColumn}`), '=', tenant);
    let rows: { k: unknown }[];
    try {
      rows = (await query.execute()) as { k: unknown }[];
    } catch (cause) {
      // PostgreSQL refuses text of the wrong type for the key ('abc' for an integer): SQLSTATE 22xxx.
      const code = (cause as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('22')) {
        throw retentionError('retention/invalid-hold', `"${given}" is not a key of "${table}"`, { cause });
      }
      throw cause;
    }
    const texts = rows.map((row) => String(row.k));
    if (texts.includes(given)) return given;
    if (texts.length > 0) {
      throw retentionError(
        'retention/invalid-hold',
        `"${given}" is not how "${table}" keys its row: the sweep compares keys as text, give "${texts[0]}"`,
      );
    }
    throw retentionError(
      'retention/invalid-hold',
      `"${table}" has no row with key "${given}": to hold records that do not exist yet, hold their subject ({ scope: { subject: … } }) or the table`,
    );
  }

  const nowText = () => clock.now().toISOString();
  // The civil date in a zone is the same from its day's first instant to the next day's:
  // remembered per zone with that range, so a sweep dates its batches without a zone lookup each.
  const days = new Map<string, { day: CivilDate; from: number; to: number }>();
  const today = (entry: ScheduleEntry): CivilDate => {
    const now = clock.now();
    const time = now.getTime();
    const known = days.get(entry.zone);
    if (known && time >= known.from && time < known.to) return known.day;
    const day = civilDateOf(now, entry.zone);
    days.set(entry.zone, {
      day,
      from: startOfCivilDay(day, entry.zone).getTime(),
      to: startOfCivilDay(addCivilDays(day, 1), entry.zone).getTime(),
    });
    return day;
  };

  /**
   * Makes a batch and the placing of a hold exclude each other, so that once `placeHold` has
   * returned no batch that read the holds before it can still delete what it covers: a batch
   * (`share`) reads the holds and acts on them under the lock; `placeHold` (`exclusive`) waits for
   * the batches in flight to commit, and the ones after it read its hold. PostgreSQL: a
   * transaction-scoped advisory lock per tenant (a new hold has no row to lock yet). MySQL /
   * MariaDB: a locking read of the tenant's holds, whose next-key locks on the holds' index block
   * the insert of a new hold until the batch commits (the insert needs no lock of its own).
   * SQLite: nothing — both run in a `writeTransaction`, whose `BEGIN IMMEDIATE` takes the
   * database's write lock before the batch reads the holds: one runs after the other.
   */
  async function lockHolds(trx: Kysely<any>, mode: 'share' | 'exclusive'): Promise<void> {
    if (engine === 'postgres') {
      const key = sql`hashtextextended(${`privacykit_retention_holds:${tenant}`}, 0)`;
      await (mode === 'share'
        ? sql`select pg_advisory_xact_lock_shared(${key})`
        : sql`select pg_advisory_xact_lock(${key})`
      ).execute(trx);
    } else if (engine === 'mysql' && mode === 'share') {
      await sql`select id from privacykit_retention_holds where tenant = ${tenant} lock in share mode`.execute(
        trx,
      );
    }
  }

  async function activeHolds(trx: Kysely<any>, now: string): Promise<LegalHold[]> {
    const rows = (await trx
      .selectFrom('privacykit_retention_holds')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('scope', '!=', 'row')
      .where(holdRowsActive(now))
      .execute()) as HoldRow[];
    return rows.map(holdFromRow);
  }

  function factsOfRow(entry: ScheduleEntry, row: Record<string, unknown>): RetentionFacts {
    const facts: Record<string, RetentionFacts[string]> = {};
    for (const [fact, binding] of Object.entries(entry.facts)) {
      facts[fact] = row[`f_${binding.column}`] as RetentionFacts[string];
    }
    return facts;
  }

  function anonymisedValue(entry: ScheduleEntry, column: string, value: unknown): unknown {
    const strategy = entry.anonymise[column];
    if (strategy === undefined || strategy === 'null') return null;
    if (typeof strategy === 'object') return strategy.value;
    if (value === null || value === undefined) return null;
    switch (strategy) {
      case 'pseudonym': {
        if (!options.pseudonymKey) {
          throw retentionError(
            'retention/needs-pseudonym-key',
            'the pseudonym strategy needs a pseudonymKey',
          );
        }
        return hmacSha256Hex(options.pseudonymKey, String(value));
      }
      case 'year':
      case 'month': {
        let date: string | null = null;
        try {
          date = factDate(value as string, entry.zone, column);
        } catch {
          date = null;
        }
        return date === null ? null : date.slice(0, strategy === 'year' ? 4 : 7);
      }
    }
  }

  interface SweepStep {
    entry: ScheduleEntry;
    index: number;
    batch: typeof processBatch;
  }

  interface BatchResult {
    /** Rows the batch read (keyset pagination: fewer than its limit means the end). */
    selected: number;
    /**
     * Rows it disposed of, which is what a row budget counts: rows whose dates cannot be read are
     * read and recorded every sweep, and counted, they starved every budgeted sweep of the due
     * rows behind them.
     */
    acted: number;
    lastKey: unknown;
    records: DispositionRecord[];
  }

  // Due dates are a pure function of a row's facts: memoised per entry and phase (rows share
  // dates far more often than not), bounded so a sweep over unique instants stays small.
  const dueMemos = new Map<ScheduleEntry, Map<number, (row: Record<string, unknown>) => RowDue>>();
  /**
   * The due date of a phase for a selected row (facts aliased `f_<column>`), memoised;
   * `unreadable` when a fact it reads is malformed. SQL only knows such a value is not below
   * '0001-01-01', so it selects the row: the sweep must leave it and report it, not stop.
   */
  function dueOf(entry: ScheduleEntry, phaseIndex: number): (row: Record<string, unknown>) => RowDue {
    let byPhase = dueMemos.get(entry);
    if (!byPhase) {
      byPhase = new Map();
      dueMemos.set(entry, byPhase);
    }
    const existing = byPhase.get(phaseIndex);
    if (existing) return existing;
    const phase = entry.rule.phases[phaseIndex];
    const aliases = factColumnsOf(entry).map((column) => `f_${column}`);
    const memo = new Map<string, RowDue>();
    const values: unknown[] = [];
    const due = (row: Record<string, unknown>): RowDue => {
      if (!phase) return null;
      for (let i = 0; i < aliases.length; i++) values[i] = row[aliases[i] as string];
      const id = factsKey(values);
      if (id !== undefined) {
        const known = memo.get(id);
        if (known !== undefined || memo.has(id)) return known ?? null;
      }
      let date: RowDue;
      try {
        date = dueDate(phase.due, entry.rule, factsOfRow(entry, row), entry.zone);
      } catch (error) {
        if (!isPrivacyKitError(error, 'retention/invalid-fact')) throw error;
        date = unreadable;
      }
      if (id !== undefined) {
        if (memo.size >= 50_000) memo.clear();
        memo.set(id, date);
      }
      return date;
    };
    byPhase.set(phaseIndex, due);
    return due;
  }

  const factColumnCache = new Map<ScheduleEntry, string[]>();
  function factColumnsOf(entry: ScheduleEntry): string[] {
    let columns = factColumnCache.get(entry);
    if (!columns) {
      columns = [...new Set(Object.values(entry.facts).map((binding) => binding.column))];
      factColumnCache.set(entry, columns);
    }
    return columns;
  }

  /**
   * SQLite, a delete phase without children: one `delete … where key in (candidates) returning`
   * selects and deletes the batch in one statement (in-process SQLite is fast enough that the
   * statements per batch, not the engine, set the pace). The planner still dates every row for
   * its disposition record; should it disagree with the SQL predicate the batch rolls back and
   * reruns on the checked path.
   */
  function deletesInOneStatement(entry: ScheduleEntry, phaseIndex: number): boolean {
    return (
      engine === 'sqlite' && entry.rule.phases[phaseIndex]?.action === 'delete' && entry.children.length === 0
    );
  }

  /** Builds the disposition records of one rule phase in one run, acted on at `now`. */
  function dispositionsOf(entry: ScheduleEntry, phaseIndex: number, runId: string, now: string) {
    const { rule } = entry;
    const action = rule.phases[phaseIndex]?.action ?? '';
    return (
      table: string,
      key: string,
      dueDate: string | null,
      outcome: DispositionRecord['outcome'],
    ): DispositionRecord => ({
      runId,
      tenant,
      rule: rule.id,
      phase: phaseIndex,
      action,
      table,
      key,
      dueDate,
      actedAt: now,
      outcome,
    });
  }

  async function processBatch(
    trx: Kysely<any>,
    entry: ScheduleEntry,
    phaseIndex: number,
    runId: string,
    after: unknown,
    limit: number,
    checked = false,
    /** Only whether a candidate is left past `after`: `selected` 0 or 1, nothing changed. */
    probe = false,
  ): Promise<BatchResult> {
    const now = nowText();
    const day = today(entry);
    const rule = entry.rule;
    const phase = rule.phases[phaseIndex];
    if (!phase) return { selected: 0, acted: 0, lastKey: after, records: [] };
    await lockHolds(trx, 'share');
    const holds = await activeHolds(trx, now);
    const { query, heldBy } = candidateQuery({
      db: trx,
      tenant,
      entry,
      phase: phaseIndex,
      today: day,
      now,
      holds,
      dataMap,
    });
    if (heldBy) return { selected: 0, acted: 0, lastKey: after, records: [] };
    const keyRef = `${entry.table}.${entry.key}`;
    const factColumns = factColumnsOf(entry);
    if (probe) {
      let first = query.select(sql.ref(keyRef).as('k'));
      if (after !== undefined) first = first.where(sql.ref(keyRef), '>', after);
      const found = await first.limit(1).execute();
      return { selected: found.length, acted: 0, lastKey: after, records: [] };
    }

    if (!checked && deletesInOneStatement(entry, phaseIndex)) {
      let keys = query.select(sql.ref(keyRef).as('k'));
      if (after !== undefined) keys = keys.where(sql.ref(keyRef), '>', after);
      const ordered = keys.orderBy(sql.ref(keyRef)).limit(limit);
      const returning = [
        sql`${sql.ref(entry.key)} as k`,
        ...factColumns.map((column) => sql`${sql.ref(column)} as ${sql.id(`f_${column}`)}`),
      ];
      // Exact: a key beyond 2^53 read rounded would name another row in the records.
      // The candidates are the tenant's, and so must the rows deleted be: another tenant's row
      // with the same key is not this sweep's to touch.
      const ownRows = entry.tenantColumn ? sql` and ${sql.ref(entry.tenantColumn)} = ${tenant}` : sql``;
      const rows = await selectExact(
        trx,
        sql`delete from ${sql.table(entry.table)} where ${sql.ref(entry.key)} in (${ordered})${ownRows} returning ${sql.join(returning)}`.compile(
          trx,
        ),
      );
      if (rows.length === 0) return { selected: 0, acted: 0, lastKey: after, records: [] };
      // RETURNING comes in no promised order: records go in key order.
      rows.sort((a, b) => keyOrder(a.k, b.k));
      // The batch deleted the first candidates past `after`: the next batch starts from the same
      // bound and finds the ones after them.
      const lastKey = after;
      const records: DispositionRecord[] = [];
      const rowDue = dueOf(entry, phaseIndex);
      const disposition = dispositionsOf(entry, phaseIndex, runId, now);
      for (const row of rows) {
        const due = rowDue(row);
        if (due === null || due === unreadable || due > day) throw new PlannerDisagrees();
        records.push(disposition(entry.table, String(row.k), due, 'done'));
      }
      if (appliesOnTable(entry.table)) {
        await forgetApplied(
          trx,
          entry,
          records.map((r) => r.key),
        );
      }
      await insertDispositions(trx, records);
      return { selected: rows.length, acted: rows.length, lastKey, records };
    }

    const sourceColumns =
      phase.action === 'anonymise'
        ? Object.entries(entry.anonymise)
            .filter(([, strategy]) => typeof strategy === 'string' && strategy !== 'null')
            .map(([column]) => column)
        : [];
    let select = query.select([
      sql.ref(keyRef).as('k'),
      ...factColumns.map((column) => sql.ref(`${entry.table}.${column}`).as(`f_${column}`)),
      ...sourceColumns.map((column) => sql.ref(`${entry.table}.${column}`).as(`a_${column}`)),
    ]);
    if (after !== undefined) select = select.where(sql.ref(keyRef), '>', after);
    let ordered = select.orderBy(sql.ref(keyRef)).limit(limit);
    if (engine !== 'sqlite') ordered = ordered.forUpdate().skipLocked();
    // Exact integers: a key beyond 2^53 read rounded (SQLite's driver) names another person's row.
    const rows = await selectExact(trx, ordered);
    if (rows.length === 0) return { selected: 0, acted: 0, lastKey: after, records: [] };
    const lastKey = rows[rows.length - 1]?.k;

    // The planner re-checks each row: SQL selects, TypeScript dates the disposition record.
    const acted: { key: unknown; text: string; due: string; row: Record<string, unknown> }[] = [];
    const invalid: string[] = [];
    const rowDue = dueOf(entry, phaseIndex);
    for (const row of rows) {
      const due = rowDue(row);
      if (due === unreadable) invalid.push(String(row.k));
      else if (due !== null && due <= day) acted.push({ key: row.k, text: String(row.k), due, row });
    }
    const disposition = dispositionsOf(entry, phaseIndex, runId, now);
    if (acted.length === 0) {
      // Left as they are, but on the record: the certificate counts them for repair.
      const skipped = invalid.map((key) => disposition(entry.table, key, null, 'invalid'));
      await insertDispositions(trx, skipped);
      return { selected: rows.length, acted: 0, lastKey, records: skipped };
    }
    const keys = acted.map((item) => item.key);
    const records: DispositionRecord[] = [];
    const record = (table: string, key: string, due: string | null, outcome: DispositionRecord['outcome']) =>
      records.push(disposition(table, key, due, outcome));
    const inKeys = (table: string, column: string, values: readonly unknown[]) =>
      keyIn(table, column, values);
    const tenantScope = entry.tenantColumn
      ? sql<SqlBool>`${sql.ref(`${entry.table}.${entry.tenantColumn}`)} = ${tenant}`
      : sql<SqlBool>`1 = 1`;

    let parentDelete: RawBuilder<unknown> | undefined;
    switch (phase.action) {
      case 'delete':
      case 'archive': {
        for (const child of entry.children) {
          // Only the tenant's children: a parent key repeats across the tenants of a shared table.
          const childScope = child.tenantColumn
            ? sql<SqlBool>`${sql.ref(`${child.table}.${child.tenantColumn}`)} = ${tenant}`
            : sql<SqlBool>`1 = 1`;
          const childRows = (await trx
            .selectFrom(child.table)
            .select([
              sql.ref(`${child.table}.${child.key}`).as('k'),
              sql.ref(`${child.table}.${child.column}`).as('p'),
            ])
            .where(inKeys(child.table, child.column, keys))
            .where(childScope)
            .orderBy(sql.ref(`${child.table}.${child.key}`))
            .execute()) as { k: unknown; p: unknown }[];
          if (childRows.length === 0) continue;
          const dueOfParent = new Map(acted.map((item) => [item.text, item.due]));
          for (const childRow of childRows) {
            record(child.table, String(childRow.k), dueOfParent.get(String(childRow.p)) ?? null, 'cascade');
          }
          await trx
            .deleteFrom(child.table)
            .where(inKeys(child.table, child.column, keys))
            .where(childScope)
            .execute();
        }
        if (phase.action === 'archive' && entry.archiveTable) {
          await sql`insert into ${sql.table(entry.archiveTable)} select * from ${sql.table(entry.table)} where ${inKeys(entry.table, entry.key, keys)} and ${tenantScope}`.execute(
            trx,
          );
        }
        const removal = sql`delete from ${sql.table(entry.table)} where ${inKeys(entry.table, entry.key, keys)} and ${tenantScope}`;
        // PostgreSQL deletes in the same statement that logs (one round trip less per batch).
        if (engine === 'postgres') parentDelete = removal;
        else await removal.execute(trx);
        if (appliesOnTable(entry.table)) {
          await forgetApplied(
            trx,
            entry,
            acted.map((item) => item.text),
          );
        }
        break;
      }
      case 'anonymise': {
        // Each replaced column binds two values a row (`when key then value`): in chunks that stay
        // under every engine's limit on bound values (SQLite's is 32,766), whatever the batch size.
        const perRow = 2 * sourceColumns.length + 1;
        const chunk = Math.max(1, Math.floor(30_000 / perRow));
        for (let start = 0; start < acted.length; start += chunk) {
          const part = acted.slice(start, start + chunk);
          const assignments: Record<string, RawBuilder<unknown>> = {};
          for (const column of Object.keys(entry.anonymise)) {
            const strategy = entry.anonymise[column];
            if (strategy === 'null' || typeof strategy === 'object') {
              assignments[column] = sql`${anonymisedValue(entry, column, null)}`;
            } else {
              const cases = part.map(
                (item) =>
                  sql`when ${item.key} then ${anonymisedValue(entry, column, item.row[`a_${column}`])}`,
              );
              assignments[column] =
                sql`case ${sql.ref(`${entry.table}.${entry.key}`)} ${sql.join(cases, sql` `)} end`;
            }
          }
          await trx
            .updateTable(entry.table)
            .set(assignments)
            .where(
              inKeys(
                entry.table,
                entry.key,
                part.map((item) => item.key),
              ),
            )
            .where(tenantScope)
            .execute();
        }
        break;
      }
      case 'restrict': {
        if (entry.restrictColumn) {
          await trx
            .updateTable(entry.table)
            .set({ [entry.restrictColumn]: 1 })
            .where(inKeys(entry.table, entry.key, keys))
            .where(tenantScope)
            .execute();
        }
        break;
      }
      case 'review': {
        await insertMany(
          trx,
          'privacykit_retention_reviews',
          acted.map((item) => ({
            id: newId(clock.now()),
            tenant,
            table_name: entry.table,
            rule: rule.id,
            row_key: item.text,
            phase: phaseIndex,
            due_date: item.due,
            queued_at: now,
            run_id: runId,
            status: 'open',
          })),
        );
        break;
      }
      default: {
        const unreachable: never = phase.action;
        throw new Error(`unknown action ${String(unreachable)}`);
      }
    }
    if (phase.action !== 'delete' && phase.action !== 'archive') {
      await insertMany(
        trx,
        'privacykit_retention_applied',
        acted.map((item) => ({
          tenant,
          table_name: entry.table,
          rule: rule.id,
          row_key: item.text,
          phase: phaseIndex,
          action: phase.action,
          purposes: phase.action === 'restrict' ? JSON.stringify(phase.purposes ?? null) : null,
          applied_at: now,
          run_id: runId,
        })),
      );
    }
    for (const item of acted) record(entry.table, item.text, item.due, 'done');
    for (const key of invalid) record(entry.table, key, null, 'invalid');
    // Children's records first, as they were disposed of first.
    const ordered2 = [
      ...records.filter((r) => r.outcome === 'cascade'),
      ...records.filter((r) => r.outcome !== 'cascade'),
    ];
    await insertDispositions(trx, ordered2, parentDelete);
    return { selected: rows.length, acted: acted.length, lastKey, records: ordered2 };
  }

  /**
   * Whether any rule of the schedule applies a phase to rows of `table` that leaves them in place
   * (restrict, anonymise, review): only then can a deleted row leave progress behind.
   */
  function appliesOnTable(table: string): boolean {
    return schedule.entries.some(
      (other) =>
        other.table === table &&
        other.rule.phases.some((p) => p.action !== 'delete' && p.action !== 'archive'),
    );
  }

  /**
   * Drops the per-row phase progress of rows that no longer exist, whichever rule applied it:
   * another rule's restriction left behind would apply to a new row that reuses the key.
   */
  async function forgetApplied(trx: Kysely<any>, entry: ScheduleEntry, keys: readonly string[]) {
    await trx
      .deleteFrom('privacykit_retention_applied')
      .where('tenant', '=', tenant)
      .where('table_name', '=', entry.table)
      .where(keyIn('privacykit_retention_applied', 'row_key', keys))
      .execute();
  }

  /** `column in (keys)`; on PostgreSQL one typed array parameter (`= any($1)`) for the whole batch. */
  function keyIn(table: string, column: string, values: readonly unknown[]): RawBuilder<SqlBool> {
    const ref = sql.ref(`${table}.${column}`);
    // Untyped, the array takes the key column's type (bigint keys may arrive as strings).
    if (engine === 'postgres') return sql<SqlBool>`${ref} = any(${[...values]})`;
    // SQLite: one JSON parameter rather than a thousand bound values.
    if (engine === 'sqlite')
      return sql<SqlBool>`${ref} in (select value from json_each(${JSON.stringify(values)}))`;
    return sql<SqlBool>`${ref} in (${sql.join(values)})`;
  }

  async function insertDispositions(
    trx: Kysely<any>,
    records: readonly DispositionRecord[],
    alongside?: RawBuilder<unknown>,
  ) {
    if (records.length === 0) return;
    if (engine === 'postgres') {
      // One array parameter per column instead of ten per row: parsing 10,000 parameters per
      // batch costs more than the insert itself.
      const column = <T>(pick: (r: DispositionRecord) => T) => records.map(pick);
      const prefix = alongside ? sql`with gone as (${alongside}) ` : sql``;
      const first = records[0] as DispositionRecord;
      if (records.every((r) => sameBatchFields(first, r))) {
        // The usual batch: every field but key and due date shared, sent once.
        await sql`${prefix}insert into privacykit_retention_dispositions (run_id, tenant, rule, phase, action, table_name, row_key, due_date, acted_at, outcome)
          select ${first.runId}, ${first.tenant}, ${first.rule}, ${first.phase}::int, ${first.action}, ${first.table}, u.k, u.d, ${first.actedAt}, ${first.outcome}
          from unnest(${column((r) => r.key)}::text[], ${column((r) => r.dueDate)}::text[]) as u(k, d)`.execute(
          trx,
        );
        return;
      }
      await sql`${prefix}insert into privacykit_retention_dispositions (run_id, tenant, rule, phase, action, table_name, row_key, due_date, acted_at, outcome)
        select * from unnest(${column((r) => r.runId)}::text[], ${column((r) => r.tenant)}::text[], ${column((r) => r.rule)}::text[], ${column((r) => r.phase)}::int[], ${column((r) => r.action)}::text[], ${column((r) => r.table)}::text[], ${column((r) => r.key)}::text[], ${column((r) => r.dueDate)}::text[], ${column((r) => r.actedAt)}::text[], ${column((r) => r.outcome)}::text[])`.execute(
        trx,
      );
      return;
    }
    if (engine === 'sqlite') {
      // Per run of records sharing all but key and due date: the shared fields as parameters and
      // one JSON array of [key, due] (inserted in array order, so `seq` follows the records).
      // Binding ten parameters per row cost more than the insert itself.
      for (let start = 0; start < records.length; ) {
        const first = records[start] as DispositionRecord;
        let end = start + 1;
        while (end < records.length && sameBatchFields(first, records[end] as DispositionRecord)) end++;
        const pairs = records.slice(start, end).map((r) => [r.key, r.dueDate]);
        await sql`insert into privacykit_retention_dispositions (run_id, tenant, rule, phase, action, table_name, row_key, due_date, acted_at, outcome)
          select ${first.runId}, ${first.tenant}, ${first.rule}, ${first.phase}, ${first.action}, ${first.table}, value ->> 0, value ->> 1, ${first.actedAt}, ${first.outcome}
          from json_each(${JSON.stringify(pairs)}) order by key`.execute(trx);
        start = end;
      }
      return;
    }
    await insertMany(
      trx,
      'privacykit_retention_dispositions',
      records.map((r) => ({
        run_id: r.runId,
        tenant: r.tenant,
        rule: r.rule,
        phase: r.phase,
        action: r.action,
        table_name: r.table,
        row_key: r.key,
        due_date: r.dueDate,
        acted_at: r.actedAt,
        outcome: r.outcome,
      })),
    );
  }

  /** Restrictions whose phase is no longer due (new activity): lifted, and recorded. */
  async function liftBatch(
    trx: Kysely<any>,
    entry: ScheduleEntry,
    phaseIndex: number,
    runId: string,
    after: unknown,
    limit: number,
    _checked = false,
    /** As processBatch's `probe`. */
    probe = false,
  ): Promise<BatchResult> {
    const now = nowText();
    const day = today(entry);
    const rule = entry.rule;
    const phase = rule.phases[phaseIndex];
    if (!phase) return { selected: 0, acted: 0, lastKey: after, records: [] };
    const keyRef = sql.ref(`${entry.table}.${entry.key}`);
    const text = keyText(engine, keyRef);
    const context = { entry, engine, today: day };
    let query = trx
      .selectFrom(entry.table)
      .select([
        keyRef.as('k'),
        ...Object.values(entry.facts).map((b) => sql.ref(`${entry.table}.${b.column}`).as(`f_${b.column}`)),
      ])
      .where(not(duePredicate(phase.due, context)))
      .where(
        sql<SqlBool>`exists (select 1 from privacykit_retention_applied a where a.tenant = ${tenant} and a.table_name = ${entry.table} and a.rule = ${rule.id} and a.row_key = ${text} and a.phase = ${phaseIndex})`,
      )
      .where(
        sql<SqlBool>`not exists (select 1 from privacykit_retention_applied a where a.tenant = ${tenant} and a.table_name = ${entry.table} and a.rule = ${rule.id} and a.row_key = ${text} and a.phase > ${phaseIndex})`,
      );
    if (entry.tenantColumn) query = query.where(sql.ref(`${entry.table}.${entry.tenantColumn}`), '=', tenant);
    if (after !== undefined) query = query.where(keyRef, '>', after);
    if (probe) {
      const found = await query.limit(1).execute();
      return { selected: found.length, acted: 0, lastKey: after, records: [] };
    }
    let ordered = query.orderBy(keyRef).limit(limit);
    if (engine !== 'sqlite') ordered = ordered.forUpdate().skipLocked();
    const rows = await selectExact(trx, ordered);
    if (rows.length === 0) return { selected: 0, acted: 0, lastKey: after, records: [] };
    const keys = rows.map((row) => row.k);
    const texts = keys.map(String);
    await trx
      .deleteFrom('privacykit_retention_applied')
      .where('tenant', '=', tenant)
      .where('table_name', '=', entry.table)
      .where('rule', '=', rule.id)
      .where('phase', '=', phaseIndex)
      .where('row_key', 'in', texts)
      .execute();
    if (entry.restrictColumn) {
      let lift = trx
        .updateTable(entry.table)
        .set({ [entry.restrictColumn]: 0 })
        .where(sql<SqlBool>`${keyRef} in (${sql.join(keys)})`);
      // Another tenant's row with the same key keeps its restriction.
      if (entry.tenantColumn) lift = lift.where(sql.ref(`${entry.table}.${entry.tenantColumn}`), '=', tenant);
      await lift.execute();
    }
    const disposition = dispositionsOf(entry, phaseIndex, runId, now);
    const rowDue = dueOf(entry, phaseIndex);
    const records = rows.map((row) => {
      const due = rowDue(row);
      return disposition(entry.table, String(row.k), due === unreadable ? null : due, 'lifted');
    });
    await insertDispositions(trx, records);
    return { selected: rows.length, acted: rows.length, lastKey: rows[rows.length - 1]?.k, records };
  }

  async function releaseExpiredHolds(): Promise<number> {
    const now = nowText();
    const result = await writeStatement(db, (on) =>
      on
        .updateTable('privacykit_retention_holds')
        .set({ released_at: now, released_by: 'system', release_reason: 'expired' })
        .where('tenant', '=', tenant)
        .where('released_at', 'is', null)
        .where('expires_at', 'is not', null)
        .where('expires_at', '<=', now)
        .executeTakeFirst(),
    );
    return Number(result.numUpdatedRows ?? 0);
  }

  function countsOf(records: Iterable<DispositionRecord>, into = new Map<string, DispositionCount>()) {
    let last: DispositionRecord | undefined;
    let lastCount: DispositionCount | undefined;
    for (const r of records) {
      // A batch's records come in runs of equal fields: count a run without re-keying each.
      if (
        lastCount &&
        last &&
        r.rule === last.rule &&
        r.table === last.table &&
        r.phase === last.phase &&
        r.action === last.action &&
        r.outcome === last.outcome
      ) {
        lastCount.count++;
        continue;
      }
      last = r;
      const id = `${r.rule}\u0000${r.table}\u0000${r.phase}\u0000${r.action}\u0000${r.outcome}`;
      let count = into.get(id);
      if (count) count.count++;
      else {
        count = {
          rule: r.rule,
          table: r.table,
          phase: r.phase,
          action: r.action,
          outcome: r.outcome,
          count: 1,
        };
        into.set(id, count);
      }
      lastCount = count;
    }
    return into;
  }

  function sortedCounts(map: Map<string, DispositionCount>): DispositionCount[] {
    return [...map.values()].sort((a, b) =>
      a.rule === b.rule
        ? a.table === b.table
          ? a.phase - b.phase || a.outcome.localeCompare(b.outcome)
          : a.table.localeCompare(b.table)
        : a.rule.localeCompare(b.rule),
    );
  }

  async function certificate(runId: string): Promise<RunCertificate> {
    const run = (await db
      .selectFrom('privacykit_retention_runs')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', runId)
      .executeTakeFirst()) as
      | {
          id: string;
          tenant: string;
          policy_version: string;
          started_at: string;
          finished_at: string | null;
          status: string;
          records: number;
          counts: string | null;
          hash: string | null;
        }
      | undefined;
    if (!run) throw retentionError('retention/run-not-found', `no retention run "${runId}"`);
    return {
      runId: run.id,
      tenant: run.tenant,
      policyVersion: run.policy_version,
      startedAt: run.started_at,
      finishedAt: run.finished_at,
      status: run.status as RunCertificate['status'],
      records: Number(run.records),
      counts: run.counts ? (JSON.parse(run.counts) as DispositionCount[]) : [],
      hash: run.hash,
    };
  }

  return {
    schedule,
    tenant,

    async dryRun({ sample = 5 } = {}) {
      const now = nowText();
      const holds = await activeHolds(db, now);
      const out: DryRunPhase[] = [];
      for (const entry of schedule.entries) {
        const day = today(entry);
        for (let index = entry.rule.phases.length - 1; index >= 0; index--) {
          const phase = entry.rule.phases[index];
          if (!phase) continue;
          const cutoffs: Cutoff[] = [];
          const scope = { db, tenant, entry, phase: index, today: day, now, holds, dataMap };
          const { query, heldBy } = candidateQuery({ ...scope, cutoffs });
          const count = async (q: typeof query) =>
            Number(
              ((await q.select((eb) => eb.fn.countAll().as('n')).executeTakeFirst()) as { n?: unknown })?.n ??
                0,
            );
          const due = await count(query);
          const all = await count(candidateQuery({ ...scope, ignoreHolds: true }).query);
          const keyRef = sql.ref(`${entry.table}.${entry.key}`);
          const keys = (await query.select(keyRef.as('k')).orderBy(keyRef).limit(sample).execute()) as {
            k: unknown;
          }[];
          out.push({
            rule: entry.rule.id,
            table: entry.table,
            phase: index,
            action: phase.action,
            today: day,
            cutoffs,
            due,
            held: all - due,
            ...(heldBy ? { heldBy: heldBy.id } : {}),
            sampleKeys: keys.map((row) => String(row.k)),
          });
        }
      }
      return out;
    },

    async sweep({ batchSize = 1000, budget } = {}) {
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
        throw retentionError('retention/invalid-schedule', 'batchSize must be an integer from 1 to 10000');
      }
      // Checked before the run is opened: `1.5` or `'abc'` reached the database as a LIMIT.
      const rowsBudget = typeof budget === 'number' ? budget : budget?.rows;
      const msBudget = typeof budget === 'object' && budget !== null ? budget.milliseconds : undefined;
      if (
        (budget !== undefined &&
          typeof budget !== 'number' &&
          (typeof budget !== 'object' || budget === null)) ||
        (rowsBudget !== undefined && (!Number.isSafeInteger(rowsBudget) || rowsBudget < 1)) ||
        (msBudget !== undefined &&
          (typeof msBudget !== 'number' || !(msBudget > 0) || !Number.isFinite(msBudget)))
      ) {
        throw retentionError(
          'retention/invalid-schedule',
          'budget is a whole number of rows from 1, or { rows?, milliseconds? } with a positive number of milliseconds',
        );
      }
      const maxRows = rowsBudget ?? Number.POSITIVE_INFINITY;
      const deadline =
        typeof budget === 'object' && budget.milliseconds !== undefined
          ? Date.now() + budget.milliseconds
          : Number.POSITIVE_INFINITY;
      const expiredHolds = await releaseExpiredHolds();
      const runId = newId(clock.now());
      const startedAt = nowText();
      await writeStatement(db, (on) =>
        on
          .insertInto('privacykit_retention_runs')
          .values({
            id: runId,
            tenant,
            policy_version: policyVersion,
            started_at: startedAt,
            status: 'running',
            records: 0,
          })
          .execute(),
      );
      const hash = createHash('sha256');
      const counts = new Map<string, DispositionCount>();
      let total = 0;
      let handled = 0;
      let complete = true;
      const exhausted = () => handled >= maxRows || Date.now() >= deadline;
      // Each rule's phases latest first, then the lifting of its restrictions no longer due.
      const steps: SweepStep[] = [];
      for (const entry of schedule.entries) {
        for (let index = entry.rule.phases.length - 1; index >= 0; index--) {
          steps.push({ entry, index, batch: processBatch });
        }
        for (let index = 0; index < entry.rule.phases.length; index++) {
          if (entry.rule.phases[index]?.action === 'restrict') steps.push({ entry, index, batch: liftBatch });
        }
      }

      /**
       * Runs one rule phase's batches until none is left, or the budget runs out: then the key it
       * stopped after (the next sweep starts again from the first: what was disposed of is gone).
       */
      const drain = async (step: SweepStep): Promise<{ after: unknown } | undefined> => {
        let after: unknown;
        for (;;) {
          if (exhausted()) return { after };
          const limit = Math.min(batchSize, maxRows - handled);
          const attempt = (checked: boolean) =>
            withRetry(() =>
              writeTransaction(db, (trx) =>
                step.batch(trx, step.entry, step.index, runId, after, limit, checked),
              ),
            );
          let result: Awaited<ReturnType<typeof processBatch>>;
          try {
            result = await attempt(false);
          } catch (error) {
            if (!(error instanceof PlannerDisagrees)) throw error;
            result = await attempt(true);
          }
          hash.update(hashLines(result.records));
          countsOf(result.records, counts);
          total += result.records.length;
          handled += result.acted;
          after = result.lastKey;
          if (result.selected < limit) return undefined;
        }
      };

      /** Whether a rule phase from `steps[from]` on (the first past `after`) has a candidate left. */
      const anyLeft = async (from: number, after: unknown): Promise<boolean> => {
        for (let i = from; i < steps.length; i++) {
          const step = steps[i] as SweepStep;
          const found = await withRetry(() =>
            writeTransaction(db, (trx) =>
              step.batch(trx, step.entry, step.index, runId, i === from ? after : undefined, 1, false, true),
            ),
          );
          if (found.selected > 0) return true;
        }
        return false;
      };

      // The run record is closed whatever happens: a run left `running` would read as still in
      // progress forever. A failed run keeps what its committed batches did (counts and hash).
      const close = async (status: 'finished' | 'failed') => {
        const finishedAt = nowText();
        const digest = hash.digest('hex');
        const list = sortedCounts(counts);
        await writeStatement(db, (on) =>
          on
            .updateTable('privacykit_retention_runs')
            .set({
              finished_at: finishedAt,
              status,
              records: total,
              counts: JSON.stringify(list),
              hash: digest,
            })
            .where('id', '=', runId)
            .execute(),
        );
        return { finishedAt, digest, list };
      };
      try {
        for (let i = 0; i < steps.length; i++) {
          const stopped = await drain(steps[i] as SweepStep);
          if (!stopped) continue;
          // Out of time: what is left is unknown. Out of rows: complete when nothing is left, as
          // when the budget was exactly the rows due (it alerted for nothing before).
          complete = Date.now() < deadline && !(await anyLeft(i, stopped.after));
          break;
        }
      } catch (error) {
        // The error that stopped the run is what the caller needs; a failure to record it
        // (the database gone too) must not replace it.
        await close('failed').catch(() => undefined);
        throw error;
      }
      const { finishedAt, digest, list } = await close('finished');
      // Deleted and anonymised rows are zeroed in a SQLite file (secure_delete); their old page
      // images leave the write-ahead log too.
      if (total > 0) await truncateSqliteLog(db);
      return {
        runId,
        tenant,
        policyVersion,
        startedAt,
        finishedAt,
        status: 'finished',
        records: total,
        counts: list,
        hash: digest,
        complete,
        expiredHolds,
      };
    },

    async placeHold(input) {
      const parsed = placeHoldSchema.safeParse(input);
      if (!parsed.success) {
        const issues = zodIssues(parsed.error as z.ZodError);
        throw retentionError('retention/invalid-hold', `Invalid legal hold: ${formatIssues(issues)}`, {
          issues,
        });
      }
      const { scope, reason, placedBy, expiresAt } = parsed.data;
      let kind: LegalHold['kind'];
      const row: HoldRow = {
        id: newId(clock.now()),
        tenant,
        scope: '',
        table_name: null,
        row_key: null,
        category: null,
        identities: null,
        reason,
        placed_by: placedBy,
        placed_at: nowText(),
        expires_at: expiresAt ?? null,
        released_at: null,
        released_by: null,
        release_reason: null,
      };
      if ('subject' in scope) {
        if (!dataMap) {
          throw retentionError(
            'retention/needs-data-map',
            'a subject hold needs the engine to have a dataMap',
          );
        }
        const unknown = Object.keys(scope.subject).filter((kind) => !Object.hasOwn(dataMap.identities, kind));
        if (unknown.length > 0) {
          throw retentionError('retention/invalid-hold', `unknown identity kind(s): ${unknown.join(', ')}`);
        }
        kind = 'subject';
        row.identities = JSON.stringify(scope.subject);
      } else if ('category' in scope) {
        kind = 'category';
        row.category = scope.category;
      } else {
        if (!holdTables.has(scope.table)) {
          throw retentionError(
            'retention/invalid-hold',
            `unknown table "${scope.table}": a hold names a table of the retention schedule or the data map (${[...holdTables.keys()].sort().join(', ')})`,
          );
        }
        kind = scope.key === undefined ? 'table' : 'row';
        row.table_name = scope.table;
        if (scope.key !== undefined) row.row_key = await rowHoldKey(scope.table, scope.key);
      }
      row.scope = kind;
      // Waits for the sweep batches in flight (see lockHolds): when this returns, every batch
      // that may still delete sees the hold.
      await withRetry(() =>
        writeTransaction(db, async (trx) => {
          await lockHolds(trx, 'exclusive');
          await trx.insertInto('privacykit_retention_holds').values(row).execute();
        }),
      );
      return holdFromRow(row);
    },

    async releaseHold(id, input) {
      const parsed = releaseHoldSchema.safeParse(input);
      if (!parsed.success) {
        const issues = zodIssues(parsed.error as z.ZodError);
        throw retentionError('retention/invalid-hold', `Invalid release: ${formatIssues(issues)}`, {
          issues,
        });
      }
      // One conditional update, checked by its count: two releases at once (two people, or one
      // and the expiry sweep) must not both succeed with the later one's record (who, why)
      // overwriting the first; on SQLite a read-then-write transaction also failed the loser
      // with a raw "database is locked".
      const released = {
        released_at: nowText(),
        released_by: parsed.data.by,
        release_reason: parsed.data.reason,
      };
      const result = await writeStatement(db, (on) =>
        on
          .updateTable('privacykit_retention_holds')
          .set(released)
          .where('tenant', '=', tenant)
          .where('id', '=', id)
          .where('released_at', 'is', null)
          .executeTakeFirst(),
      );
      const row = (await db
        .selectFrom('privacykit_retention_holds')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('id', '=', id)
        .executeTakeFirst()) as HoldRow | undefined;
      if (!row) throw retentionError('retention/hold-not-found', `no legal hold "${id}"`);
      if (Number(result.numUpdatedRows ?? 0) !== 1) {
        throw retentionError(
          'retention/hold-already-released',
          `legal hold "${id}" was released at ${row.released_at}`,
        );
      }
      return holdFromRow(row);
    },

    async holds({ active } = {}) {
      let query = db.selectFrom('privacykit_retention_holds').selectAll().where('tenant', '=', tenant);
      if (active) query = query.where(holdRowsActive(nowText()));
      const rows = (await query.orderBy('placed_at').orderBy('id').execute()) as HoldRow[];
      return rows.map(holdFromRow);
    },

    releaseExpiredHolds,

    async heldRows({ table, keys, tenant: asked }) {
      if (asked !== undefined && asked !== tenant) return [];
      if (keys.length === 0) return [];
      const now = nowText();
      const holdZone = schedule.entries.find((entry) => entry.table === table)?.zone ?? policy?.zone ?? 'UTC';
      // Every hold on a row counts: its reasons are all named (by hold id, so staff and the
      // subject's answer can say which to release), and it is kept until the latest end, or
      // with no end while one hold has none.
      const held = new Map<string, LegalHold[]>();
      const hold = (key: string, by: LegalHold) => {
        const on = held.get(key);
        if (!on) held.set(key, [by]);
        else if (!on.some((other) => other.id === by.id)) on.push(by);
      };
      const holds = await activeHolds(db, now);
      for (const whole of holds.filter((candidate) => holdCoversTable(candidate, table, { dataMap }))) {
        for (const key of keys) hold(key, whole);
      }
      const distinct = [...new Set(keys)];
      for (let i = 0; i < distinct.length; i += 500) {
        const rowHolds = (await db
          .selectFrom('privacykit_retention_holds')
          .selectAll()
          .where('tenant', '=', tenant)
          .where('scope', '=', 'row')
          .where('table_name', '=', table)
          .where('row_key', 'in', distinct.slice(i, i + 500))
          .where(holdRowsActive(now))
          .execute()) as HoldRow[];
        for (const row of rowHolds) hold(String(row.row_key), holdFromRow(row));
      }
      const mapped = dataMap?.tables.get(table);
      const subjects = holds.filter((candidate) => candidate.kind === 'subject' && candidate.identities);
      if (mapped && dataMap && subjects.length > 0) {
        const pk = mapped.primaryKey;
        for (const subject of subjects) {
          const condition = subjectCondition(
            { db, dataMap, identities: subject.identities ?? {}, tenant },
            table,
          );
          for (let i = 0; i < keys.length; i += 500) {
            const chunk = keys.slice(i, i + 500);
            let query = db
              .selectFrom(table)
              .select(pk.map((column) => `${table}.${column}`))
              .where(sql<SqlBool>`((${condition(expressionBuilder<any, any>())}) is true)`);
            if (pk.length === 1) {
              query = query.where(keyText(engine, sql.ref(`${table}.${pk[0]}`)), 'in', chunk);
            } else {
              const tuples = chunk.flatMap((key) => {
                try {
                  const values = JSON.parse(key) as unknown[];
                  return Array.isArray(values) && values.length === pk.length ? [values] : [];
                } catch {
                  return [];
                }
              });
              if (tuples.length === 0) continue;
              query = query.where((eb) =>
                eb.or(
                  tuples.map((values) =>
                    eb.and(pk.map((column, c) => eb(`${table}.${column}`, '=', values[c]))),
                  ),
                ),
              );
            }
            for (const row of await query.execute()) {
              // Keyed as erasure keys rows: dates as ISO 8601, bytes as hex, anything else as text.
              const values = pk.map((column) => {
                const value = (row as Record<string, unknown>)[column];
                if (value instanceof Date) return value.toISOString();
                if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
                return String(value);
              });
              const key = pk.length === 1 ? (values[0] as string) : JSON.stringify(values);
              hold(key, subject);
            }
          }
        }
      }
      return distinct.flatMap((key) => {
        const by = held
          .get(key)
          ?.sort((a, b) =>
            a.placedAt === b.placedAt ? (a.id < b.id ? -1 : 1) : a.placedAt < b.placedAt ? -1 : 1,
          );
        if (!by) return [];
        // The day the hold ends where the row's rule keeps its dates (else the policy's zone),
        // not the UTC date of the instant: a hold ending at 23:30Z still holds on the next day
        // in Paris.
        const ends = by.map((one) =>
          one.expiresAt ? civilDateOf(new Date(one.expiresAt), holdZone) : undefined,
        );
        const until = ends.includes(undefined) ? undefined : (ends as string[]).sort().at(-1);
        const reason = by.map((one) => `legal hold ${one.id}: ${one.reason}`).join('; ');
        return [{ key, reason, ...(until ? { until } : {}) }];
      });
    },

    async backlog() {
      const now = nowText();
      const holds = await activeHolds(db, now);
      const out: BacklogEntry[] = [];
      for (const entry of schedule.entries) {
        const day = today(entry);
        for (let index = 0; index < entry.rule.phases.length; index++) {
          const phase = entry.rule.phases[index];
          if (!phase) continue;
          const { query } = candidateQuery({
            db,
            tenant,
            entry,
            phase: index,
            today: day,
            now,
            holds,
            dataMap,
          });
          const keyRef = sql.ref(`${entry.table}.${entry.key}`);
          const columns = [...new Set(Object.values(entry.facts).map((b) => b.column))];
          let after: unknown;
          let count = 0;
          let invalid = 0;
          const invalidKeys: string[] = [];
          let oldest: CivilDate | null = null;
          for (;;) {
            let page = query.select([
              keyRef.as('k'),
              ...columns.map((column) => sql.ref(`${entry.table}.${column}`).as(`f_${column}`)),
            ]);
            if (after !== undefined) page = page.where(keyRef, '>', after);
            const rows = (await page.orderBy(keyRef).limit(5000).execute()) as Record<string, unknown>[];
            for (const row of rows) {
              const due = dueOf(entry, index)(row);
              if (due === unreadable) {
                invalid++;
                if (invalidKeys.length < 20) invalidKeys.push(String(row.k));
                continue;
              }
              count++;
              if (due !== null && (oldest === null || due < oldest)) oldest = due;
            }
            if (rows.length < 5000) break;
            after = rows[rows.length - 1]?.k;
          }
          out.push({
            rule: entry.rule.id,
            table: entry.table,
            phase: index,
            action: phase.action,
            count,
            oldestDue: oldest,
            invalid,
            invalidKeys,
          });
        }
      }
      return out;
    },

    certificate,

    async verifyCertificate(runId) {
      const run = await certificate(runId);
      const hash = createHash('sha256');
      let after = -1;
      let records = 0;
      for (;;) {
        const rows = (await db
          .selectFrom('privacykit_retention_dispositions')
          .selectAll()
          .where('run_id', '=', runId)
          .where('seq', '>', after)
          .orderBy('seq')
          .limit(5000)
          .execute()) as (DispositionRow & { seq: number })[];
        for (const row of rows) {
          hash.update(hashLine(toRecord(row)));
          records++;
        }
        if (rows.length < 5000) break;
        after = Number(rows[rows.length - 1]?.seq);
      }
      const actual = hash.digest('hex');
      return {
        runId,
        // A failed run's hash covers the batches it committed: checkable like a finished one's.
        valid: run.status !== 'running' && run.hash === actual && run.records === records,
        expected: run.hash,
        actual,
        records,
      };
    },

    async isRestricted({ table, key, purpose }) {
      const rows = (await db
        .selectFrom('privacykit_retention_applied')
        .select(['purposes'])
        .where('tenant', '=', tenant)
        .where('table_name', '=', table)
        .where('row_key', '=', String(key))
        .where('action', '=', 'restrict')
        .execute()) as { purposes: string | null }[];
      return rows.some((row) => {
        const purposes = row.purposes ? (JSON.parse(row.purposes) as string[] | null) : null;
        return purposes === null || purpose === undefined || purposes.includes(purpose);
      });
    },

    async reviews() {
      const rows = (await db
        .selectFrom('privacykit_retention_reviews')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('status', '=', 'open')
        .orderBy('queued_at')
        .orderBy('id')
        .execute()) as {
        id: string;
        table_name: string;
        row_key: string;
        rule: string;
        phase: number;
        due_date: string;
        queued_at: string;
        run_id: string;
      }[];
      return rows.map((row) => ({
        id: row.id,
        table: row.table_name,
        key: row.row_key,
        rule: row.rule,
        phase: Number(row.phase),
        dueDate: row.due_date,
        queuedAt: row.queued_at,
        runId: row.run_id,
      }));
    },
  };
}
