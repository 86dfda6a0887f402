import { engineOf, subjectCondition } from '@privacykit/core/db';
import type { Engine } from '@privacykit/core/db';
import type { DataMap } from '@privacykit/core';
import { expressionBuilder, sql } from 'kysely';
import type { Kysely, RawBuilder, SelectQueryBuilder, SqlBool } from 'kysely';
import type { CivilDate } from './civil-date.js';
import { and, duePredicate, not, or } from './due-predicate.js';
import type { Cutoff, Predicate, PredicateContext } from './due-predicate.js';
import { holdCoversTable } from './holds.js';
import type { LegalHold } from './holds.js';
import type { ScheduleEntry } from './schedule.js';

/** Everything the candidate query of one phase depends on. */
export interface CandidateScope {
  db: Kysely<any>;
  tenant: string;
  entry: ScheduleEntry;
  phase: number;
  today: CivilDate;
  /** Now, as ISO text: holds expiring at or before it no longer count. */
  now: string;
  /** Active holds other than row holds (row holds are checked in SQL). */
  holds: readonly LegalHold[];
  dataMap?: DataMap;
  /** For the dry run's "held" figure only: what would be due without holds. */
  ignoreHolds?: boolean;
  cutoffs?: Cutoff[];
}

export interface Candidates {
  /** Rows of the entry's table that the phase applies to now; add a select, order and limit. */
  query: SelectQueryBuilder<any, any, object>;
  /** A hold covering the table (or a child table) blocks the whole phase: `query` selects nothing. */
  heldBy?: LegalHold;
}

/** `cast(key as text)`, comparable with the `row_key` text columns of PrivacyKit's tables. */
export function keyText(engine: Engine, ref: RawBuilder<unknown>): RawBuilder<string> {
  return engine === 'mysql' ? sql<string>`cast(${ref} as char)` : sql<string>`cast(${ref} as text)`;
}

function terminal(action: string): boolean {
  return action === 'delete' || action === 'archive';
}

function rowHeld(scope: CandidateScope, engine: Engine, table: string, key: string): Predicate {
  const ref = keyText(engine, sql.ref(`${table}.${key}`));
  return sql<SqlBool>`exists (select 1 from privacykit_retention_holds h where h.tenant = ${scope.tenant} and h.scope = 'row' and h.table_name = ${table} and h.row_key = ${ref} and h.released_at is null and (h.expires_at is null or h.expires_at > ${scope.now}))`;
}

function subjectHeld(scope: CandidateScope, table: string): Predicate[] {
  const subjects = scope.holds.filter((hold) => hold.kind === 'subject' && hold.identities);
  if (subjects.length === 0 || !scope.dataMap) return [];
  const dataMap = scope.dataMap;
  return subjects.map((hold) => {
    const condition = subjectCondition(
      { db: scope.db, dataMap, identities: hold.identities ?? {}, tenant: scope.tenant },
      table,
    );
    // `is true`: a row whose identity column is NULL is not the subject's (not "unknown").
    return sql<SqlBool>`((${condition(expressionBuilder<any, any>())}) is true)`;
  });
}

/**
 * THE candidate query of one phase, shared by the dry run, the sweep and the backlog: rows of
 * the entry's table (this tenant) for which the phase is due on `today`, no later phase is due,
 * neither this nor a later phase was applied, and no active legal hold covers the row, its
 * subject, its table or category — or, when the phase deletes, any of its child rows.
 */
export function candidateQuery(scope: CandidateScope): Candidates {
  const { db, entry, tenant } = scope;
  const engine = engineOf(db);
  const rule = entry.rule;
  const phase = rule.phases[scope.phase];
  if (!phase) throw new Error(`rule ${rule.id} has no phase ${scope.phase}`);
  const context: PredicateContext = { entry, engine, today: scope.today, cutoffs: scope.cutoffs };
  const parts: Predicate[] = [duePredicate(phase.due, context)];
  const later = rule.phases.slice(scope.phase + 1);
  const silent: PredicateContext = { entry, engine, today: scope.today };
  for (const next of later) parts.push(not(duePredicate(next.due, silent)));
  if (entry.tenantColumn)
    parts.push(sql<SqlBool>`${sql.ref(`${entry.table}.${entry.tenantColumn}`)} = ${tenant}`);
  if (rule.phases.slice(scope.phase).some((p) => !terminal(p.action))) {
    const ref = keyText(engine, sql.ref(`${entry.table}.${entry.key}`));
    parts.push(
      sql<SqlBool>`not exists (select 1 from privacykit_retention_applied a where a.tenant = ${tenant} and a.table_name = ${entry.table} and a.rule = ${rule.id} and a.row_key = ${ref} and a.phase >= ${scope.phase})`,
    );
  }
  let heldBy: LegalHold | undefined;
  if (!scope.ignoreHolds) {
    const coverage = { dataMap: scope.dataMap, ruleCategories: rule.categories };
    heldBy = scope.holds.find((hold) => holdCoversTable(hold, entry.table, coverage));
    parts.push(not(rowHeld(scope, engine, entry.table, entry.key)));
    const subject = subjectHeld(scope, entry.table);
    if (subject.length > 0) parts.push(not(or(subject)));
    if (terminal(phase.action)) {
      for (const child of entry.children) {
        heldBy ??= scope.holds.find((hold) => holdCoversTable(hold, child.table, { dataMap: scope.dataMap }));
        const childHeld = or([
          rowHeld(scope, engine, child.table, child.key),
          ...subjectHeld(scope, child.table),
        ]);
        const parentKey = sql.ref(`${entry.table}.${entry.key}`);
        // The tenant's children only: another tenant's child with the same parent key held its
        // own hold's key against this tenant's parent.
        const ownChild = child.tenantColumn
          ? sql<SqlBool>` and ${sql.ref(`${child.table}.${child.tenantColumn}`)} = ${tenant}`
          : sql<SqlBool>``;
        parts.push(
          sql<SqlBool>`not exists (select 1 from ${sql.table(child.table)} where ${sql.ref(`${child.table}.${child.column}`)} = ${parentKey}${ownChild} and ${childHeld})`,
        );
      }
    }
  }
  let query = db.selectFrom(entry.table).where(and(parts));
  if (heldBy) query = query.where(sql<SqlBool>`1 = 0`);
  return { query, ...(heldBy ? { heldBy } : {}) };
}
