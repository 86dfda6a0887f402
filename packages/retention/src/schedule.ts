import { factsOf, formatIssues, retentionRuleSchema, zodIssues } from '@privacykit/core';
import type { DataMap, Policy, RetentionRule } from '@privacykit/core';
import type { PrivacyKitIssue } from '@privacykit/core';
import { z } from 'zod';
import { ruleZone } from './plan.js';
import { retentionError } from './errors.js';

const sqlName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a plain SQL identifier (letters, digits, underscore)');

/**
 * How a fact is stored: `date` (`YYYY-MM-DD` text), `instant` (ISO 8601 UTC text, turned into the
 * civil date of the rule's zone), `month` (`YYYY-MM` text) or `value` (anything a condition tests;
 * flags as 0/1 integers).
 */
export const factFormatSchema = z.enum(['date', 'instant', 'month', 'value']);
export type FactFormat = z.infer<typeof factFormatSchema>;

export const factBindingSchema = z.union([
  sqlName,
  z.object({ column: sqlName, format: factFormatSchema.optional() }).strict(),
]);

/**
 * How one column is anonymised: `null`; `{ value }` a fixed value; `pseudonym` a keyed
 * HMAC-SHA-256 of the value (the engine's `pseudonymKey`); `year` / `month` generalise a date
 * or instant to `YYYY` / `YYYY-MM`.
 */
export const anonymiseStrategySchema = z.union([
  z.enum(['null', 'pseudonym', 'year', 'month']),
  z.object({ value: z.union([z.string(), z.number(), z.null()]) }).strict(),
]);
export type AnonymiseStrategy = z.infer<typeof anonymiseStrategySchema>;

export const childTableSchema = z
  .object({
    table: sqlName,
    /** The child's column holding the parent's key. */
    column: sqlName,
    /** The child's own key, for its disposition records. */
    key: sqlName,
    /**
     * The child's tenant column, when its rows belong to tenants (default: the data map's for the
     * child table). Without one, a parent key is taken to name one parent across tenants.
     */
    tenantColumn: sqlName.optional(),
  })
  .strict();
export type ChildTable = z.infer<typeof childTableSchema>;

export const scheduleEntrySchema = z
  .object({
    /** A rule id of the policy, or the rule itself. */
    rule: z.union([z.string().min(1), retentionRuleSchema]),
    table: sqlName,
    /** The table's single-column key: stable batch order and the disposition record's key. */
    key: sqlName,
    /** Rule fact → the column holding it (with its storage format when not the fact's type). */
    facts: z.record(z.string(), factBindingSchema),
    /** The host table's tenant column, when it holds several tenants' rows. */
    tenantColumn: sqlName.optional(),
    /** Column → strategy, for `anonymise` phases. */
    anonymise: z.record(sqlName, anonymiseStrategySchema).optional(),
    /** A 0/1 column set to 1 when a `restrict` phase applies, for the host's own queries. */
    restrictColumn: sqlName.optional(),
    /** Same columns as `table`: `archive` phases copy rows here, then delete them. */
    archiveTable: sqlName.optional(),
    /** Tables referencing this one: their rows are deleted first when a row is deleted or archived. */
    children: z.array(childTableSchema).default([]),
  })
  .strict();
export type ScheduleEntryInput = z.input<typeof scheduleEntrySchema>;

export interface FactColumn {
  column: string;
  format: FactFormat;
}

/** A validated schedule entry: the rule resolved, its facts bound to columns. */
export interface ScheduleEntry {
  rule: RetentionRule;
  zone: string;
  table: string;
  key: string;
  facts: Readonly<Record<string, FactColumn>>;
  tenantColumn?: string;
  anonymise: Readonly<Record<string, AnonymiseStrategy>>;
  restrictColumn?: string;
  archiveTable?: string;
  children: ChildTable[];
}

export interface RetentionSchedule {
  entries: readonly ScheduleEntry[];
}

export interface DefineScheduleOptions {
  /** Resolves rule ids, gives the default zone. */
  policy?: Policy;
  /** When given, every table must be in it (subject and category holds need it). */
  dataMap?: DataMap;
}

/**
 * Binds retention rules to the host's tables: which column holds each fact, how rows are
 * anonymised, archived or restricted, which child tables go first. Entries are swept in order.
 *
 * @throws PrivacyKitError `retention/invalid-schedule` listing every problem with its path,
 *   `retention/unknown-rule` for a rule id the policy does not declare.
 */
export function defineSchedule(
  input: readonly ScheduleEntryInput[] | RetentionSchedule,
  options: DefineScheduleOptions = {},
): RetentionSchedule {
  if (typeof input === 'object' && input !== null && !Array.isArray(input) && 'entries' in input) {
    return input as RetentionSchedule;
  }
  const parsed = z.array(scheduleEntrySchema).safeParse(input);
  if (!parsed.success) {
    const issues = zodIssues(parsed.error);
    throw retentionError(
      'retention/invalid-schedule',
      `Invalid retention schedule: ${formatIssues(issues)}`,
      {
        issues,
      },
    );
  }
  const issues: PrivacyKitIssue[] = [];
  const seen = new Set<string>();
  const entries = parsed.data.map((raw, i): ScheduleEntry => {
    const at = `[${i}]`;
    let rule: RetentionRule;
    if (typeof raw.rule === 'string') {
      const found = options.policy?.retention.find((candidate) => candidate.id === raw.rule);
      if (!found) {
        throw retentionError(
          'retention/unknown-rule',
          `${at}.rule: the policy declares no retention rule "${raw.rule}"`,
        );
      }
      rule = found;
    } else {
      rule = raw.rule;
    }
    const id = `${rule.id}\u0000${raw.table}`;
    if (seen.has(id))
      issues.push({ path: `${at}`, message: `rule "${rule.id}" is bound to "${raw.table}" twice` });
    seen.add(id);
    const facts: Record<string, FactColumn> = {};
    for (const [fact, binding] of Object.entries(raw.facts)) {
      const declared = rule.facts[fact];
      if (!declared) {
        issues.push({ path: `${at}.facts.${fact}`, message: `rule "${rule.id}" has no fact "${fact}"` });
        continue;
      }
      const column = typeof binding === 'string' ? binding : binding.column;
      const format = (typeof binding === 'string' ? undefined : binding.format) ?? declared.type;
      facts[fact] = { column, format };
    }
    const used = new Set(rule.phases.flatMap((phase) => factsOf(phase.due)));
    for (const fact of used) {
      if (!(fact in raw.facts)) {
        issues.push({
          path: `${at}.facts`,
          message: `fact "${fact}" of rule "${rule.id}" is not bound to a column`,
        });
      }
    }
    rule.phases.forEach((phase, p) => {
      if (phase.action === 'anonymise' && Object.keys(raw.anonymise ?? {}).length === 0) {
        issues.push({
          path: `${at}.anonymise`,
          message: `phase ${p} anonymises: give a column → strategy map`,
        });
      }
      if (phase.action === 'archive' && !raw.archiveTable) {
        issues.push({ path: `${at}.archiveTable`, message: `phase ${p} archives: name the archive table` });
      }
      if (phase.action !== 'anonymise') return;
      // A later phase dates the row from its facts after this one has rewritten them: a date
      // cut to 'YYYY' or 'YYYY-MM' reads as an earlier day (deleted early) or not at all, a
      // nulled one as "no trigger" (never deleted), a pseudonym as garbage. Refused here
      // rather than discovered by a sweep years later.
      rule.phases.forEach((later, q) => {
        if (q <= p) return;
        for (const fact of new Set(factsOf(later.due))) {
          const column = facts[fact]?.column;
          if (column === undefined || !(column in (raw.anonymise ?? {}))) continue;
          issues.push({
            path: `${at}.anonymise.${column}`,
            message: `phase ${p} anonymises "${column}", which holds fact "${fact}" that phase ${q} (${later.action}) is due from: once anonymised the row could no longer be dated. Keep that fact in a column the phase does not anonymise`,
          });
        }
      });
    });
    if (options.dataMap) {
      for (const table of [raw.table, ...raw.children.map((child) => child.table)]) {
        if (!options.dataMap.tables.has(table)) {
          issues.push({ path: `${at}.table`, message: `"${table}" is not in the data map` });
        }
      }
    }
    let zone = 'UTC';
    try {
      zone = ruleZone(rule, options.policy?.zone);
    } catch (error) {
      issues.push({ path: `${at}.rule.zone`, message: (error as Error).message });
    }
    return {
      rule,
      zone,
      table: raw.table,
      key: raw.key,
      facts,
      tenantColumn: raw.tenantColumn ?? options.dataMap?.tables.get(raw.table)?.tenantColumn,
      anonymise: raw.anonymise ?? {},
      restrictColumn: raw.restrictColumn,
      archiveTable: raw.archiveTable,
      // A child with a tenant column is scoped to the sweeping tenant too: a parent key may repeat
      // across tenants, and another tenant's child rows must never follow this one's parent. One
      // without (line items reaching their tenant through the order) is not: its column does not
      // exist, and a parent key it holds names one parent.
      children: raw.children.map((child) => {
        const childTenant = child.tenantColumn ?? options.dataMap?.tables.get(child.table)?.tenantColumn;
        return childTenant ? { ...child, tenantColumn: childTenant } : child;
      }),
    };
  });
  if (issues.length > 0) {
    throw retentionError(
      'retention/invalid-schedule',
      `Invalid retention schedule: ${formatIssues(issues)}`,
      {
        issues,
      },
    );
  }
  return { entries };
}
