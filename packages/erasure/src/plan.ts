import {
  DEFAULT_TENANT,
  categoryCovers,
  newId,
  normaliseIdentity,
  randomToken,
  systemClock,
  tableCategories,
  toInstant,
} from '@privacykit/core';
import type {
  Clock,
  DataMap,
  DataMapInput,
  DataMapTable,
  FactValue,
  Policy,
  RetentionRule,
} from '@privacykit/core';
import { countSubjectRows, engineOf, subjectRowsQuery } from '@privacykit/core/db';
import type { SubjectIdentities, SubjectScope } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { Kysely, RawBuilder } from 'kysely';
import { z } from 'zod';
import { erasureError } from './errors.js';
import { holdSourceOf } from './hold-source.js';
import type { HeldRow, HoldLookup, HoldSource } from './hold-source.js';
import { leasePurposeOf, planLockedError } from './plan-lease.js';
import type { LeasePurpose } from './plan-lease.js';
import { factValue, retainUntil } from './retain-until.js';
import { rowKey } from './row-key.js';
import { normaliseStrategy, strategiesSchema } from './strategy.js';
import type { ColumnStrategy, ErasureSecrets, StrategiesInput } from './strategy.js';
import { subjectPage } from './subject-pages.js';
import { keptBySet, keyText } from './kept-by-set.js';
import { writeTransaction } from './write-transaction.js';

/**
 * The Art 17(3) grounds that keep data through an erasure request: (a) freedom of expression,
 * (b) a legal obligation or (b)/(c) a task in the public interest, (d) archiving, research or
 * statistics, (e) the establishment, exercise or defence of legal claims (legal holds).
 */
export type ErasureGround =
  | 'legal-obligation'
  | 'legal-claims'
  | 'public-interest'
  | 'freedom-of-expression'
  | 'archiving';

export const erasureGroundArticle: Readonly<Record<ErasureGround, string>> = {
  'freedom-of-expression': 'Art 17(3)(a)',
  'legal-obligation': 'Art 17(3)(b)',
  'public-interest': 'Art 17(3)(b)–(c)',
  archiving: 'Art 17(3)(d)',
  'legal-claims': 'Art 17(3)(e)',
};

/**
 * Why rows are kept: a retention `rule` with `keepDespiteErasure`, a legal `hold`, or an
 * `anchor` — a parent row kept because a retained row references it (its key, references and
 * identity columns stay so the retained rows keep their integrity and stay findable for Art 15;
 * its other columns are masked).
 */
export type RetentionSource = 'rule' | 'hold' | 'anchor';

export interface RetainedGroup {
  source: RetentionSource;
  ground: ErasureGround;
  /** `Art 17(3)(b)` etc. */
  article: string;
  ruleId?: string;
  reason: string;
  rows: number;
  /** Range of retain-until civil dates; `open` counts rows whose date cannot be computed. */
  retainUntil: { earliest?: string; latest?: string; open: number };
  /** Columns masked in these rows although the rows are kept. */
  maskColumns: Record<string, ColumnStrategy>;
  sampleKeys: string[];
}

export interface TablePlan {
  table: string;
  primaryKey: string[];
  categories: string[];
  /** What happens to the subject's rows that are not retained. */
  action: 'delete-row' | 'mask';
  /** `blocked`: the table cannot be erased (no primary key): execution fails loudly. */
  status: 'ready' | 'blocked';
  blockedReason?: string;
  /** The subject's rows found when planning. */
  rows: number;
  /** Rows deleted or masked. */
  erase: number;
  maskColumns: Record<string, ColumnStrategy>;
  sampleKeys: string[];
  retained: RetainedGroup[];
}

/** A recipient who received the subject's data (Art 19): notified of the erasure. */
export interface PlanRecipient {
  id: string;
  name: string;
  kind: string;
  contact?: string;
  purposes: string[];
  categories: string[];
}

/**
 * An erasure plan: serialisable JSON, persisted with its id. It holds everything execution
 * needs (the data map snapshot, strategies, the subject's identities) but not the per-request
 * secrets, which stay in the plan's database record.
 */
export interface ErasurePlan {
  id: string;
  version: 1;
  tenant: string;
  requestId?: string;
  /**
   * The subject's id in the consent ledger, for crypto-shredding; removed by
   * `purgeErasureIdentities` (ledger ids are often derived from an email address).
   */
  subjectId?: string;
  createdAt: string;
  policyVersion: string;
  /** The subject's identities; empty once purged with `purgeErasureIdentities`. */
  identities: Record<string, string[]>;
  dataMap: DataMapInput;
  /** Children before parents: the execution order. */
  tables: TablePlan[];
  recipients: PlanRecipient[];
  summary: { rows: number; erase: number; retained: number; blocked: string[] };
}

export const planErasureInputSchema = z
  .object({
    identities: z.record(z.string(), z.array(z.string())),
    strategies: strategiesSchema.optional(),
    facts: z.record(z.string(), z.record(z.string(), z.string())).optional(),
    requestId: z.string().min(1).max(255).optional(),
    replace: z.boolean().optional(),
    subjectId: z.string().min(1).max(255).optional(),
    sampleSize: z.number().int().min(0).max(1000).optional(),
    batchSize: z.number().int().min(1).max(10_000).optional(),
  })
  // Only a request has "its" plan to replace: without one every call stores a new plan anyway.
  .refine((input) => !input.replace || input.requestId !== undefined, {
    message: 'replace needs the requestId of the plan to replace',
    path: ['replace'],
  });

export interface PlanErasureOptions {
  db: Kysely<any>;
  dataMap: DataMap;
  policy: Policy;
  identities: SubjectIdentities;
  clock?: Clock;
  /** `{ table: 'delete-row' | { column: strategy } }`; tables default to `delete-row`. */
  strategies?: StrategiesInput;
  /**
   * Which column holds each fact a retention rule reads, per table:
   * `{ invoices: { invoiceDate: 'issued_on' } }`. A fact without a mapping is read from the
   * column of the same name when the data map declares one.
   */
  facts?: Record<string, Record<string, string>>;
  /** Legal holds: held rows are kept untouched under Art 17(3)(e). */
  holds?: HoldSource | HoldLookup;
  /** The requests package's request this plan serves; a second call with it returns the same plan. */
  requestId?: string;
  /**
   * With `requestId`: replace the request's current plan if it has never run (a hold placed
   * since planning refuses it, Art 17(3)(e), but the rest must still be erased, Art 12(3)). The
   * old plan becomes `superseded` (never executed, its identities and secrets purged) and this
   * call stores and returns a fresh plan honouring the current holds. A plan that has started
   * or finished is not replaced: `erasure/plan-already-run`.
   */
  replace?: boolean;
  /** The subject's id in the consent ledger, for crypto-shredding on execution. */
  subjectId?: string;
  /** Keys listed per table and group in the plan (default 10). */
  sampleSize?: number;
  /** Rows read per query while planning (default 10,000). */
  batchSize?: number;
  /**
   * The per-request secrets; random by default. Pass them only to reproduce a plan exactly
   * (tests, migrations between databases).
   */
  secrets?: ErasureSecrets;
}

interface RetainedRow {
  key: string;
  source: RetentionSource;
  ground: ErasureGround;
  ruleId?: string;
  reason: string;
  until?: string;
  mask: Record<string, ColumnStrategy>;
}

/** A table whose subject rows one rule keeps all of, stored by `INSERT … SELECT`. */
interface KeptSet {
  table: DataMapTable;
  rows: number;
  group: RetainedGroup;
  untilOf: (table: string) => RawBuilder<string | null>;
}

interface AnchorClaim {
  ground: ErasureGround;
  until?: string;
  open: boolean;
  child: string;
}

function later(a: AnchorClaim, until: string | undefined, open: boolean): void {
  if (open) a.open = true;
  if (until && (!a.until || until > a.until)) a.until = until;
}

/** A fact column's value as a memo key: its type and text (dates as ISO 8601). */
function factMemoKey(value: unknown): string {
  if (value instanceof Date) return `date:${value.toISOString()}`;
  return `${typeof value}:${String(value)}`;
}

function snapshot(map: DataMap): DataMapInput {
  const tables: DataMapInput['tables'] = {};
  for (const table of map.tables.values()) {
    tables[table.name] = {
      ...(table.primaryKey.length > 0 ? { primaryKey: [...table.primaryKey] } : {}),
      identities: { ...table.identities },
      references: table.references.map((reference) => ({ ...reference })),
      columns: Object.fromEntries(Object.entries(table.columns).map(([column, c]) => [column, [...c]])),
      ...(table.tenantColumn ? { tenantColumn: table.tenantColumn } : {}),
    };
  }
  return {
    identities: Object.fromEntries(Object.entries(map.identities).map(([kind, v]) => [kind, { ...v }])),
    tables,
  };
}

function keepRulesFor(policy: Policy, categories: readonly string[]): RetentionRule[] {
  return policy.retention.filter(
    (rule) =>
      rule.keepDespiteErasure !== undefined &&
      rule.categories.some((ruleCategory) => categories.some((c) => categoryCovers(ruleCategory, c))),
  );
}

function structuralColumns(table: DataMapTable): Set<string> {
  return new Set([...table.primaryKey, ...table.references.map((reference) => reference.column)]);
}

function tableStrategy(
  table: DataMapTable,
  input: StrategiesInput[string] | undefined,
): { action: 'delete-row' | 'mask'; columns: Record<string, ColumnStrategy> } {
  if (input === undefined || input === 'delete-row') return { action: 'delete-row', columns: {} };
  const structural = structuralColumns(table);
  const known = new Set([...Object.keys(table.columns), ...Object.values(table.identities)]);
  const columns: Record<string, ColumnStrategy> = {};
  for (const [column, strategy] of Object.entries(input)) {
    if (structural.has(column)) {
      throw erasureError(
        'erasure/invalid-strategy',
        `strategies.${table.name}.${column}: key and reference columns cannot be masked (they hold the rows together)`,
      );
    }
    if (!known.has(column)) {
      throw erasureError(
        'erasure/invalid-strategy',
        `strategies.${table.name}.${column}: the data map declares no such column for "${table.name}"`,
      );
    }
    columns[column] = normaliseStrategy(strategy);
  }
  const masked = Object.fromEntries(Object.entries(columns).filter(([, s]) => s.strategy !== 'keep'));
  if (Object.keys(masked).length === 0) {
    throw erasureError(
      'erasure/invalid-strategy',
      `strategies.${table.name}: a table that is not deleted must mask at least one column`,
    );
  }
  return { action: 'mask', columns };
}

function maskFor(
  table: DataMapTable,
  configured: Record<string, ColumnStrategy>,
  keep: (column: string, categories: readonly string[]) => boolean,
): Record<string, ColumnStrategy> {
  const structural = structuralColumns(table);
  const out: Record<string, ColumnStrategy> = {};
  for (const [column, categories] of Object.entries(table.columns)) {
    if (structural.has(column) || keep(column, categories)) continue;
    const strategy = configured[column] ?? { strategy: 'redact' };
    if (strategy.strategy !== 'keep') out[column] = strategy;
  }
  return out;
}

function recipientsOf(policy: Policy, categories: ReadonlySet<string>): PlanRecipient[] {
  const found = new Map<string, PlanRecipient>();
  for (const purpose of policy.purposes) {
    const shared = [...categories].filter((c) =>
      purpose.categories.some((pc) => categoryCovers(pc, c) || categoryCovers(c, pc)),
    );
    if (shared.length === 0) continue;
    for (const id of purpose.recipients) {
      const recipient = policy.recipients.find((r) => r.id === id);
      // Staff are not "recipients" to notify, and public authorities receiving data in an
      // inquiry are not recipients at all (Art 4(9)).
      if (!recipient || recipient.kind === 'internal' || recipient.kind === 'public-authority') continue;
      const entry = found.get(id) ?? {
        id,
        name: recipient.name,
        kind: recipient.kind,
        ...(recipient.contact ? { contact: recipient.contact } : {}),
        purposes: [],
        categories: [],
      };
      if (!entry.purposes.includes(purpose.id)) entry.purposes.push(purpose.id);
      for (const c of shared) if (!entry.categories.includes(c)) entry.categories.push(c);
      found.set(id, entry);
    }
  }
  return [...found.values()].sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * Plans the erasure of one data subject (Art 17) without changing any host data: per table,
 * which rows are deleted, which columns are masked with which strategy, and which rows are kept
 * under which Art 17(3) ground until which date — a retention rule with `keepDespiteErasure`
 * (invoices: 10 years, legal obligation), a legal hold (legal claims), or a parent row a kept
 * row needs. Tables without a primary key are marked `blocked`. The plan is stored in
 * `privacykit_erasure_plans` with fresh per-request secrets so every retry of its execution
 * produces the same pseudonyms and random values; with `requestId`, a second call returns the
 * stored plan — or, with `replace: true`, replaces it if it has never run (Art 12(3), 17(3)(e):
 * after a hold placed since planning refused it, a new plan keeps the held rows and erases the
 * rest). Two callers replacing the same plan at once store one new plan between them: the later
 * one gets the plan the first one stored.
 *
 * @throws PrivacyKitError `erasure/invalid-input` (also `replace` without `requestId`),
 *   `erasure/no-identities`, `erasure/unknown-table` or `erasure/invalid-strategy`;
 *   with `replace`, `erasure/plan-already-run` when the current plan has started or finished and
 *   `erasure/plan-locked` while a worker holds it. Nothing is written then.
 */
export async function planErasure(options: PlanErasureOptions): Promise<ErasurePlan> {
  const parsed = planErasureInputSchema.safeParse({
    identities: options.identities,
    strategies: options.strategies,
    facts: options.facts,
    requestId: options.requestId,
    replace: options.replace,
    subjectId: options.subjectId,
    sampleSize: options.sampleSize,
    batchSize: options.batchSize,
  });
  if (!parsed.success) {
    throw erasureError('erasure/invalid-input', `invalid erasure options: ${parsed.error.message}`, {
      cause: parsed.error,
    });
  }
  const { db, dataMap, policy } = options;
  const clock = options.clock ?? systemClock;
  const tenant = policy.tenant ?? DEFAULT_TENANT;
  const sampleSize = options.sampleSize ?? 10;
  const batchSize = options.batchSize ?? 10_000;
  const strategies = parsed.data.strategies ?? {};
  const facts = parsed.data.facts ?? {};
  const holds = holdSourceOf(options.holds);

  const identities: Record<string, string[]> = {};
  for (const [kind, values] of Object.entries(options.identities)) {
    if (!Object.hasOwn(dataMap.identities, kind)) {
      throw erasureError('erasure/invalid-input', `unknown identity kind "${kind}" for this data map`);
    }
    const kept = values.map((v) => v.trim()).filter((v) => v.length > 0);
    if (kept.length > 0) identities[kind] = kept;
  }
  if (Object.keys(identities).length === 0) {
    throw erasureError(
      'erasure/no-identities',
      'an erasure needs at least one non-empty identity of the subject',
    );
  }
  for (const name of [...Object.keys(strategies), ...Object.keys(facts)]) {
    if (!dataMap.tables.has(name)) {
      throw erasureError('erasure/unknown-table', `"${name}" is not a table of the data map`);
    }
  }
  // A binding for a fact no keeping rule of the table counts from (a typo) would leave the rule's
  // own fact unbound: its rows kept with no end date.
  for (const [name, bound] of Object.entries(facts)) {
    const rules = keepRulesFor(policy, tableCategories(dataMap.tables.get(name)!));
    const known = new Set(rules.flatMap((rule) => Object.keys(rule.facts)));
    for (const fact of Object.keys(bound)) {
      if (!known.has(fact)) {
        throw erasureError(
          'erasure/invalid-input',
          rules.length === 0
            ? `facts of "${name}": no retention rule keeps its rows despite erasure, so "${fact}" dates nothing`
            : `facts of "${name}": "${fact}" is not a fact of the rules keeping its rows (${[...known].map((f) => `"${f}"`).join(', ') || 'none'})`,
        );
      }
    }
  }

  // With `replace`, the plan this call replaces: refused at once when it has run, and compared
  // under the lock below with the request's plan then (another caller may have replaced it).
  let replacing: CurrentPlan | undefined;
  if (options.requestId) {
    const existing = await currentPlanOf(db, tenant, options.requestId);
    if (existing && !parsed.data.replace) return samePerson(existing.plan, dataMap, identities);
    if (existing) {
      assertNeverRun(existing, clock);
      replacing = existing;
    }
  }

  const scope: SubjectScope = { db, dataMap, identities, tenant };
  const executionOrder = [...dataMap.order].reverse();
  const anchorsByKey = new Map<string, Map<string, AnchorClaim>>();
  const anchorsByColumn = new Map<string, Map<string, Map<string, AnchorClaim>>>();
  const retainedRows = new Map<string, RetainedRow[]>();
  const keptSets: KeptSet[] = [];
  const tables: TablePlan[] = [];
  const subjectCategories = new Set<string>();

  for (const name of executionOrder) {
    const table = dataMap.tables.get(name)!;
    const categories = tableCategories(table);
    const { action, columns: configured } = tableStrategy(table, strategies[name]);
    const plan: TablePlan = {
      table: name,
      primaryKey: [...table.primaryKey],
      categories,
      action,
      status: 'ready',
      rows: 0,
      erase: 0,
      maskColumns:
        action === 'mask'
          ? Object.fromEntries(Object.entries(configured).filter(([, s]) => s.strategy !== 'keep'))
          : {},
      sampleKeys: [],
      retained: [],
    };
    tables.push(plan);

    if (table.primaryKey.length === 0) {
      plan.rows = (await countSubjectRows(scope, [name]))[name] ?? 0;
      if (plan.rows > 0) {
        plan.status = 'blocked';
        plan.blockedReason = `"${name}" has no primary key: its rows can be neither erased in resumable batches nor restricted and verified by key`;
        for (const c of categories) subjectCategories.add(c);
      }
      continue;
    }

    const rules = keepRulesFor(policy, categories);
    const ruleMask = maskFor(table, configured, (_column, held) =>
      held.every((c) => rules.some((rule) => rule.categories.some((rc) => categoryCovers(rc, c)))),
    );
    const identityColumns = new Set(Object.values(table.identities));
    const anchorMask = maskFor(table, configured, (column) => identityColumns.has(column));
    const keyAnchors = anchorsByKey.get(name);
    const columnAnchors = anchorsByColumn.get(name);
    const factColumns = new Map<string, string>();
    for (const rule of rules) {
      for (const fact of Object.keys(rule.facts)) {
        const column = facts[name]?.[fact] ?? (Object.hasOwn(table.columns, fact) ? fact : undefined);
        if (column) factColumns.set(fact, column);
      }
    }
    if (factColumns.size > 0) await assertFactColumns(db, name, factColumns);
    // A kept row keeps the parent rows it references (anchors), until the latest of its dates.
    const claimParents = (
      row: Record<string, unknown>,
      retained: { ground: ErasureGround; until?: string },
    ): void => {
      for (const reference of table.references) {
        const value = row[reference.column];
        if (value === null || value === undefined) continue;
        const parent = dataMap.tables.get(reference.table)!;
        const byKey =
          !reference.key || (parent.primaryKey.length === 1 && reference.key === parent.primaryKey[0]);
        let claims: Map<string, AnchorClaim>;
        if (byKey) {
          claims = anchorsByKey.get(parent.name) ?? new Map();
          anchorsByKey.set(parent.name, claims);
        } else {
          const perColumn = anchorsByColumn.get(parent.name) ?? new Map<string, Map<string, AnchorClaim>>();
          anchorsByColumn.set(parent.name, perColumn);
          claims = perColumn.get(reference.key!) ?? new Map();
          perColumn.set(reference.key!, claims);
        }
        const existing = claims.get(String(value));
        if (existing) later(existing, retained.until, retained.until === undefined);
        else
          claims.set(String(value), {
            ground: retained.ground,
            ...(retained.until ? { until: retained.until } : {}),
            open: retained.until === undefined,
            child: name,
          });
      }
    };
    const needsRows =
      rules.length > 0 || holds !== undefined || keyAnchors !== undefined || columnAnchors !== undefined;
    const kept: RetainedRow[] = [];
    const bestRules = new Map<string, { rule: RetentionRule; until?: string }>();
    // Every row kept by one rule (no holds, no anchors): counted and stored set-based.
    const bySet =
      rules.length === 1 && !holds && !keyAnchors && !columnAnchors && factColumns.size <= 1
        ? await keptBySet(scope, table, {
            rule: rules[0]!,
            fact: [...factColumns][0],
            zone: rules[0]!.zone ?? policy.zone,
          })
        : undefined;

    if (bySet) {
      const rule = rules[0]!;
      plan.rows = bySet.rows;
      const group: RetainedGroup = {
        source: 'rule',
        ground: rule.keepDespiteErasure!,
        article: erasureGroundArticle[rule.keepDespiteErasure!],
        ruleId: rule.id,
        reason: rule.title,
        rows: bySet.rows,
        retainUntil: { open: 0 },
        maskColumns: ruleMask,
        sampleKeys: [],
      };
      for (const combo of bySet.combos) {
        if (!combo.until) group.retainUntil.open += combo.rows;
        else {
          if (!group.retainUntil.earliest || combo.until < group.retainUntil.earliest)
            group.retainUntil.earliest = combo.until;
          if (!group.retainUntil.latest || combo.until > group.retainUntil.latest)
            group.retainUntil.latest = combo.until;
        }
        claimParents(combo.values, { ground: group.ground, ...(combo.until ? { until: combo.until } : {}) });
      }
      if (bySet.rows > 0 && sampleSize > 0) {
        const page = await subjectPage(scope, table, { columns: [], limit: sampleSize });
        group.sampleKeys = page.map((row) => rowKey(row, table.primaryKey));
      }
      if (bySet.rows > 0) {
        plan.retained = [group];
        keptSets.push({ table, rows: bySet.rows, group, untilOf: bySet.untilOf });
        for (const c of categories) subjectCategories.add(c);
      }
      continue;
    }
    if (!needsRows) {
      // A count and a short sample: cheaper than one query with a window count, which would
      // materialise every row before the limit.
      plan.rows = (await countSubjectRows(scope, [name]))[name] ?? 0;
      if (plan.rows > 0 && sampleSize > 0) {
        const page = await subjectPage(scope, table, { columns: [], limit: sampleSize });
        plan.sampleKeys = page.map((row) => rowKey(row, table.primaryKey));
      }
    } else {
      const columns = [
        ...table.references.map((reference) => reference.column),
        ...factColumns.values(),
        ...(columnAnchors ? columnAnchors.keys() : []),
      ];
      let after: unknown[] | undefined;
      for (;;) {
        const page = await subjectPage(scope, table, { columns, after, limit: batchSize });
        if (page.length === 0) break;
        const keys = page.map((row) => rowKey(row, table.primaryKey));
        const held = new Map<string, HeldRow>();
        if (holds) {
          for (const entry of await holds.heldRows({ tenant, table: name, keys })) {
            const row = typeof entry === 'string' ? { key: entry } : entry;
            held.set(row.key, row);
          }
        }
        page.forEach((row, i) => {
          const key = keys[i]!;
          plan.rows++;
          const hold = held.get(key);
          let retained: RetainedRow | undefined;
          if (hold) {
            retained = {
              key,
              source: 'hold',
              ground: 'legal-claims',
              reason: hold.reason ?? 'legal hold',
              ...(hold.until ? { until: hold.until } : {}),
              mask: {},
            };
          } else if (rules.length > 0) {
            // Rows share few distinct fact values (dates): each combination is computed once.
            const memoKey = [...factColumns.values()]
              .map((column) => factMemoKey(row[column]))
              .join('\u0000');
            let best = bestRules.get(memoKey);
            if (!best) {
              // The rule keeping the row longest wins; a date that cannot be computed keeps it open.
              for (const rule of rules) {
                // Each rule dates instants in its own zone, as retention's sweep does.
                const zone = rule.zone ?? policy.zone;
                const rowFacts: Record<string, FactValue> = {};
                for (const [fact, column] of factColumns) rowFacts[fact] = factValue(row[column], zone);
                const until = retainUntil(rule, rowFacts);
                if (!best || (best.until !== undefined && (until === undefined || until > best.until))) {
                  best = { rule, ...(until ? { until } : {}) };
                }
              }
              bestRules.set(memoKey, best!);
            }
            retained = {
              key,
              source: 'rule',
              ground: best!.rule.keepDespiteErasure!,
              ruleId: best!.rule.id,
              reason: best!.rule.title,
              ...(best!.until ? { until: best!.until } : {}),
              mask: ruleMask,
            };
          } else {
            let claim = keyAnchors?.get(key);
            if (!claim && columnAnchors) {
              for (const [column, values] of columnAnchors) {
                claim = values.get(String(row[column]));
                if (claim) break;
              }
            }
            if (claim) {
              retained = {
                key,
                source: 'anchor',
                ground: claim.ground,
                reason: `referenced by retained rows of ${claim.child}`,
                ...(claim.until && !claim.open ? { until: claim.until } : {}),
                mask: anchorMask,
              };
            }
          }
          if (!retained) {
            if (plan.sampleKeys.length < sampleSize) plan.sampleKeys.push(key);
            return;
          }
          kept.push(retained);
          claimParents(row, retained);
        });
        if (page.length < batchSize) break;
        const tail = page[page.length - 1]!;
        after = table.primaryKey.map((column) => tail[column]);
      }
    }

    retainedRows.set(name, kept);
    const groups = new Map<string, RetainedGroup>();
    for (const row of kept) {
      const id = `${row.source}|${row.ground}|${row.ruleId ?? ''}|${row.reason}`;
      let group = groups.get(id);
      if (!group) {
        group = {
          source: row.source,
          ground: row.ground,
          article: erasureGroundArticle[row.ground],
          ...(row.ruleId ? { ruleId: row.ruleId } : {}),
          reason: row.reason,
          rows: 0,
          retainUntil: { open: 0 },
          maskColumns: row.mask,
          sampleKeys: [],
        };
        groups.set(id, group);
      }
      group.rows++;
      if (group.sampleKeys.length < sampleSize) group.sampleKeys.push(row.key);
      if (!row.until) group.retainUntil.open++;
      else {
        if (!group.retainUntil.earliest || row.until < group.retainUntil.earliest)
          group.retainUntil.earliest = row.until;
        if (!group.retainUntil.latest || row.until > group.retainUntil.latest)
          group.retainUntil.latest = row.until;
      }
    }
    plan.retained = [...groups.values()];
    plan.erase = plan.rows - kept.length;
    if (plan.rows > 0) for (const c of categories) subjectCategories.add(c);
  }

  const now = clock.now();
  const plan: ErasurePlan = {
    id: newId(now),
    version: 1,
    tenant,
    ...(options.requestId ? { requestId: options.requestId } : {}),
    ...(options.subjectId ? { subjectId: options.subjectId } : {}),
    createdAt: toInstant(now),
    policyVersion: policy.version,
    identities,
    dataMap: snapshot(dataMap),
    tables,
    recipients: recipientsOf(policy, subjectCategories),
    summary: {
      rows: tables.reduce((n, t) => n + t.rows, 0),
      erase: tables.reduce((n, t) => n + t.erase, 0),
      retained: tables.reduce((n, t) => n + t.retained.reduce((m, g) => m + g.rows, 0), 0),
      blocked: tables.filter((t) => t.status === 'blocked').map((t) => t.table),
    },
  };
  const secrets = options.secrets ?? { hmacKey: randomToken(32), seed: randomToken(32) };

  return writeTransaction(db, async (trx) => {
    if (options.requestId) {
      // Checked again under a lock: two workers planning one request at once (a retried job, a
      // double click) both found no plan above; the second must get the first one's plan, not
      // store another (two plans would be executed as two erasures, each under its own lease).
      const existing = await currentPlanOf(trx, tenant, options.requestId, { lock: true });
      if (existing) {
        // Not the plan this call set out to replace (or none): another caller stored or replaced
        // the request's plan meanwhile, as fresh as this one. Theirs stands, like a double click.
        if (!parsed.data.replace || existing.id !== replacing?.id) {
          return samePerson(existing.plan, dataMap, identities);
        }
        await supersede(trx, existing, plan.id, clock);
      }
    }
    await trx
      .insertInto('privacykit_erasure_plans')
      .values({
        id: plan.id,
        tenant,
        request_id: options.requestId ?? null,
        status: 'planned',
        plan: JSON.stringify(plan),
        hmac_key: secrets.hmacKey,
        seed: secrets.seed,
        created_at: plan.createdAt,
        updated_at: plan.createdAt,
      })
      .execute();
    if (engineOf(trx) === 'mysql') {
      const rows = [...retainedRows].flatMap(([table, kept]) =>
        kept.map((row) => ({
          plan_id: plan.id,
          table_name: table,
          row_key: row.key,
          tenant,
          source: row.source,
          ground: row.ground,
          rule_id: row.ruleId ?? null,
          reason: row.reason,
          retain_until: row.until ?? null,
          mask: Object.keys(row.mask).length > 0 ? JSON.stringify(row.mask) : null,
        })),
      );
      // Multi-row inserts of up to 2,000 rows (10 parameters each): well under MySQL's packet size.
      for (let i = 0; i < rows.length; i += RETAINED_ROWS_PER_INSERT) {
        await trx
          .insertInto('privacykit_erasure_retained')
          .values(rows.slice(i, i + RETAINED_ROWS_PER_INSERT))
          .execute();
      }
      return plan;
    }
    // SQLite, PostgreSQL: rows of one group share everything but their key and date, so each
    // statement sends those two per row from a VALUES list (10,000 rows, 20,000 parameters:
    // under SQLite's 32,766 bound parameters) and the group's fields once.
    for (const [table, kept] of retainedRows) {
      const groups = new Map<string, RetainedRow[]>();
      for (const row of kept) {
        const id = `${row.source}|${row.ground}|${row.ruleId ?? ''}|${row.reason}|${row.mask === undefined ? '' : JSON.stringify(row.mask)}`;
        const group = groups.get(id);
        if (group) group.push(row);
        else groups.set(id, [row]);
      }
      for (const rows of groups.values()) {
        const first = rows[0]!;
        const mask = Object.keys(first.mask).length > 0 ? JSON.stringify(first.mask) : null;
        const text = (value: string | null) => sql`cast(${value} as text)`;
        for (let i = 0; i < rows.length; i += RETAINED_KEYS_PER_INSERT) {
          const values = rows
            .slice(i, i + RETAINED_KEYS_PER_INSERT)
            .map((row) => sql`(${row.key}, ${row.until ?? null})`);
          await sql`with v(k, u) as (values ${sql.join(values)})
            insert into privacykit_erasure_retained
              (plan_id, table_name, row_key, tenant, source, ground, rule_id, reason, retain_until, mask)
            select ${text(plan.id)}, ${text(table)}, k, ${text(tenant)}, ${text(first.source)},
              ${text(first.ground)}, ${text(first.ruleId ?? null)}, ${text(first.reason)}, u, ${text(mask)}
            from v`.execute(trx);
        }
      }
    }
    for (const set of keptSets) {
      const name = set.table.name;
      const text = (value: string | null) => sql<string>`cast(${value} as text)`;
      const mask =
        Object.keys(set.group.maskColumns).length > 0 ? JSON.stringify(set.group.maskColumns) : null;
      const result = await trx
        .insertInto('privacykit_erasure_retained')
        .columns([
          'plan_id',
          'table_name',
          'row_key',
          'tenant',
          'source',
          'ground',
          'rule_id',
          'reason',
          'retain_until',
          'mask',
        ])
        .expression(
          subjectRowsQuery({ ...scope, db: trx }, name).select([
            text(plan.id).as('plan_id'),
            text(name).as('table_name'),
            keyText(set.table).as('row_key'),
            text(tenant).as('tenant'),
            text('rule').as('source'),
            text(set.group.ground).as('ground'),
            text(set.group.ruleId ?? null).as('rule_id'),
            text(set.group.reason).as('reason'),
            set.untilOf(name).as('retain_until'),
            text(mask).as('mask'),
          ]),
        )
        .executeTakeFirst();
      if (Number(result.numInsertedOrUpdatedRows ?? 0) !== set.rows) {
        // Rows came or went since they were counted: nothing is stored, the caller plans again.
        throw erasureError(
          'erasure/changed-while-planning',
          `the subject's rows of "${name}" changed while planning; plan again`,
        );
      }
    }
    return plan;
  });
}

const RETAINED_ROWS_PER_INSERT = 2000;
const RETAINED_KEYS_PER_INSERT = 10_000;

function parsePlan(text: unknown): ErasurePlan {
  return JSON.parse(String(text)) as ErasurePlan;
}

/** A request's current plan with what says whether it has run. */
interface CurrentPlan {
  id: string;
  plan: ErasurePlan;
  status: string;
  leaseOwner: string | null;
  leaseExpiresAt: string | null;
  /** Whether it has per-table progress rows: only an execution writes them. */
  progressed: boolean;
}

/**
 * Refuses to replace a plan that has run, or that a worker holds now. "Run" is what
 * `executeErasure` goes by: a plan leaves `planned` in the transaction that writes its first
 * progress rows, under its lease.
 */
function assertNeverRun(current: CurrentPlan, clock: Clock): void {
  if (current.leaseOwner && current.leaseExpiresAt && current.leaseExpiresAt > toInstant(clock.now())) {
    throw planLockedError(current.id, current.leaseOwner, current.leaseExpiresAt);
  }
  if (current.status !== 'planned' || current.progressed) {
    throw erasureError(
      'erasure/plan-already-run',
      `erasure plan ${current.id} of request ${current.plan.requestId} is ${current.status}: a plan that has started or finished is not replaced; nothing was changed`,
      { details: { planId: current.id, status: current.status } },
    );
  }
}

/**
 * Marks the request's current plan superseded by `by`, under the request's lock. The update is
 * conditional on what `assertNeverRun` checked — still `planned`, no progress, no live lease —
 * so it is atomic with `claimPlanLease`, whose own conditional update refuses a superseded plan:
 * either the lease was taken first and this refuses, or no lease is ever granted to the old plan.
 * The old plan never runs, so it forgets the subject's identities and its secrets at once
 * (Art 5(1)(c), (e)): the new plan holds them, and `purgeErasureIdentities` purges those.
 */
async function supersede(trx: Kysely<any>, current: CurrentPlan, by: string, clock: Clock): Promise<void> {
  assertNeverRun(current, clock);
  const now = toInstant(clock.now());
  const { subjectId: _subjectId, ...rest } = current.plan;
  const result = await trx
    .updateTable('privacykit_erasure_plans')
    .set({
      status: 'superseded',
      superseded_by: by,
      plan: JSON.stringify({ ...rest, identities: {} }),
      hmac_key: '',
      seed: '',
      identities_purged_at: now,
      updated_at: now,
    })
    .where('tenant', '=', current.plan.tenant)
    .where('id', '=', current.id)
    .where('status', '=', 'planned')
    .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_expires_at', '<=', now)]))
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('privacykit_erasure_progress')
            .select(sql`1`.as('one'))
            .where('privacykit_erasure_progress.plan_id', '=', current.id),
        ),
      ),
    )
    .executeTakeFirst();
  if (Number(result.numUpdatedRows ?? 0) === 1) return;
  // A worker took the plan between the read and the update: say what it is doing now.
  const after = await currentPlanOf(trx, current.plan.tenant, current.plan.requestId!);
  if (after?.id === current.id) assertNeverRun(after, clock);
  throw erasureError(
    'erasure/plan-already-run',
    `erasure plan ${current.id} started while it was being replaced; nothing was changed`,
    { details: { planId: current.id } },
  );
}

/**
 * The current plan of a request: superseded plans are history, never "the" plan. With `lock`
 * (inside a `writeTransaction`), a second worker checking the same request waits until the first
 * one's transaction ends and then finds its plan:
 * SQLite's `BEGIN IMMEDIATE` holds the database already; PostgreSQL takes a transaction-scoped
 * advisory lock on the request (no row exists yet to lock); MySQL reads `FOR UPDATE`, whose
 * next-key lock on the request's index range blocks a concurrent insert of the same request (the
 * deadlock two such transactions may meet is broken by the database and the loser run again).
 */
/**
 * The request's stored plan, handed back to a caller planning it again, only when that caller
 * names the plan's own subject: before, a request planned for Ada and asked again for Bob gave
 * Ada's plan, and executing it erased Ada for Bob's request. A plan whose identities were purged
 * (it ran) is its request's whatever is asked.
 */
function samePerson(plan: ErasurePlan, dataMap: DataMap, asked: Record<string, string[]>): ErasurePlan {
  const stored = plan.identities ?? {};
  if (Object.keys(stored).length === 0) return plan;
  const set = (identities: Record<string, string[]>) =>
    new Set(
      Object.entries(identities).flatMap(([kind, values]) =>
        values.map((value) => `${kind}\u0000${normaliseIdentity(dataMap, kind, value)}`),
      ),
    );
  const mine = set(stored);
  const theirs = set(asked);
  if (mine.size === theirs.size && [...theirs].every((key) => mine.has(key))) return plan;
  throw erasureError(
    'erasure/invalid-input',
    `request ${plan.requestId ?? ''} already has an erasure plan (${plan.id}) for other identities than the ones given: plan it again with replace: true (before it runs), or erase under another request`,
    { details: { planId: plan.id } },
  );
}

async function currentPlanOf(
  db: Kysely<any>,
  tenant: string,
  requestId: string,
  options: { lock?: boolean } = {},
): Promise<CurrentPlan | undefined> {
  const engine = engineOf(db);
  if (options.lock && engine === 'postgres') {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`privacykit_erasure_plans:${tenant}:${requestId}`}, 0))`.execute(
      db,
    );
  }
  // MySQL's `FOR UPDATE` locks every row of the request the index range holds, superseded
  // ones included, so the filter below does not weaken the lock.
  let query = db
    .selectFrom('privacykit_erasure_plans')
    .select([
      'id',
      'plan',
      'status',
      'lease_owner',
      'lease_expires_at',
      (eb) =>
        eb
          .exists(
            eb
              .selectFrom('privacykit_erasure_progress')
              .select(sql`1`.as('one'))
              .whereRef('privacykit_erasure_progress.plan_id', '=', 'privacykit_erasure_plans.id'),
          )
          .as('progressed'),
    ])
    .where('tenant', '=', tenant)
    .where('request_id', '=', requestId)
    .where('status', '<>', 'superseded')
    .orderBy('created_at');
  if (options.lock && engine === 'mysql') query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) return undefined;
  return {
    id: String(row.id),
    plan: parsePlan(row.plan),
    status: String(row.status),
    leaseOwner: row.lease_owner ?? null,
    leaseExpiresAt: row.lease_expires_at ?? null,
    // 1/0 on SQLite and MySQL, a boolean on PostgreSQL.
    progressed: Boolean(Number(row.progressed)),
  };
}

/** The stored record of an erasure: plan, status, execution report and verification. */
export interface ErasureRecord {
  plan: ErasurePlan;
  /** `superseded`: replaced by `supersededBy` before it ever ran; it is never executed. */
  status: 'planned' | 'executing' | 'complete' | 'partial' | 'failed' | 'superseded';
  /** The plan that replaced this one (`planErasure` with `replace: true`). */
  supersededBy?: string;
  createdAt: string;
  updatedAt: string;
  completedAt?: string;
  shreddedAt?: string;
  /** When the plan's identities were purged (`purgeErasureIdentities`); the plan's are then empty. */
  identitiesPurgedAt?: string;
  /**
   * The lease a worker holds on the plan, executing or verifying it. A crashed worker's stays
   * until it expires: the plan is busy only while `expiresAt` is in the future.
   */
  lease?: { heldFor: LeasePurpose; expiresAt: string };
  report?: unknown;
  verification?: unknown;
}

/**
 * An erasure's record, for the request's file (Art 5(2), 12): the plan, its status, the last
 * execution report and the verification result.
 *
 * @throws PrivacyKitError `erasure/plan-not-found`.
 */
export async function getErasureRecord(options: {
  db: Kysely<any>;
  planId: string;
  tenant?: string;
}): Promise<ErasureRecord> {
  const row = await options.db
    .selectFrom('privacykit_erasure_plans')
    .selectAll()
    .where('tenant', '=', options.tenant ?? DEFAULT_TENANT)
    .where('id', '=', options.planId)
    .executeTakeFirst();
  if (!row) throw erasureError('erasure/plan-not-found', `no erasure plan ${options.planId}`);
  return {
    plan: parsePlan(row.plan),
    status: row.status,
    ...(row.superseded_by ? { supersededBy: row.superseded_by } : {}),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ...(row.completed_at ? { completedAt: row.completed_at } : {}),
    ...(row.shredded_at ? { shreddedAt: row.shredded_at } : {}),
    ...(row.identities_purged_at ? { identitiesPurgedAt: row.identities_purged_at } : {}),
    ...(row.lease_owner && row.lease_expires_at
      ? { lease: { heldFor: leasePurposeOf(row.lease_owner), expiresAt: row.lease_expires_at } }
      : {}),
    ...(row.report ? { report: JSON.parse(row.report) } : {}),
    ...(row.verification ? { verification: JSON.parse(row.verification) } : {}),
  };
}

/**
 * Reads no row, only checks that the columns the plan will date kept rows by exist: a misspelt
 * `facts` column failed the plan with the database's own error, untyped.
 */
async function assertFactColumns(db: Kysely<any>, table: string, columns: ReadonlyMap<string, string>) {
  try {
    await db
      .selectFrom(table)
      .select([...new Set(columns.values())].map((column) => `${table}.${column}`))
      .where(sql<boolean>`1 = 0`)
      .execute();
  } catch (cause) {
    const named = [...columns].map(([fact, column]) => `${fact} → ${column}`).join(', ');
    throw erasureError(
      'erasure/invalid-input',
      `facts of "${table}" (${named}): a column is not in the table (${(cause as Error).message})`,
      { cause },
    );
  }
}
