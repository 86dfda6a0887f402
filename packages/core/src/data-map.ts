import { z } from 'zod';
import { categoryCovers, categoryIdSchema } from './categories.js';
import { PrivacyKitError, formatIssues } from './errors.js';
import type { CoreErrorCode, PrivacyKitIssue } from './errors.js';
import { zodIssues } from './policy.js';
import type { Policy } from './policy.js';

const sqlName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a plain SQL identifier (letters, digits, underscore)');

/**
 * How values of an identity kind are compared: `email` trims and lowercases ASCII letters only
 * (never Unicode case folding, so `K` (Kelvin sign) or full-width letters never match another
 * account); `exact` compares as given.
 */
export const identityKindSchema = z
  .object({ normalise: z.enum(['email', 'exact']).default('exact') })
  .strict();

export const tableReferenceSchema = z
  .object({
    /** The column of this table holding the parent's key. */
    column: sqlName,
    table: sqlName,
    /** The parent's column it references; the parent's single primary key when omitted. */
    key: sqlName.optional(),
  })
  .strict();
export type TableReference = z.infer<typeof tableReferenceSchema>;

export const dataMapTableSchema = z
  .object({
    /** One column or several; omitted when the table has none (erasure then refuses loudly). */
    primaryKey: z.union([sqlName, z.array(sqlName).min(1)]).optional(),
    /** Identity kind → the column holding it: rows are the subject's when one matches. */
    identities: z.record(z.string(), sqlName).default({}),
    /** Foreign keys to subject tables: rows are the subject's when a referenced row is. */
    references: z.array(tableReferenceSchema).default([]),
    /** Column → the data categories it holds. */
    columns: z.record(sqlName, z.union([categoryIdSchema, z.array(categoryIdSchema).min(1)])).default({}),
    /** The column holding the tenant; the map's `tenantColumn` when omitted, none if neither. */
    tenantColumn: sqlName.optional(),
    description: z.string().optional(),
  })
  .strict();
export type DataMapTableInput = z.input<typeof dataMapTableSchema>;

export const dataMapSchema = z
  .object({
    identities: z.record(z.string(), identityKindSchema).refine((value) => Object.keys(value).length > 0, {
      message: 'declare at least one identity kind, e.g. { email: { normalise: "email" } }',
    }),
    tenantColumn: sqlName.optional(),
    tables: z.record(sqlName, dataMapTableSchema),
  })
  .strict();
export type DataMapInput = z.input<typeof dataMapSchema>;

export interface DataMapTable {
  name: string;
  primaryKey: string[];
  identities: Readonly<Record<string, string>>;
  references: TableReference[];
  columns: Readonly<Record<string, string[]>>;
  tenantColumn?: string;
  description?: string;
  /** Tables this one's references point at (its parents in the subject graph). */
  parents: string[];
}

/** A validated data map: every table reachable from a subject identity, in parents-first order. */
export interface DataMap {
  identities: Readonly<Record<string, { normalise: 'email' | 'exact' }>>;
  tables: ReadonlyMap<string, DataMapTable>;
  /** Parents before children: the order for reading; erase in reverse. */
  order: readonly string[];
}

/**
 * Declares where personal data lives in the host application's database: tables, keys, how
 * each reaches the data subject (an identity column or a foreign-key path), and which data
 * categories each column holds. Rejects tables that cannot be reached from a subject identity
 * (naming them), reference cycles, unknown tables, and — given the policy — categories the policy
 * does not know or prohibits (Art 5(1)(c): the seed never stores card security codes).
 *
 * @throws PrivacyKitError with `issues` naming each table and column at fault.
 */
export function defineDataMap(input: DataMapInput, options: { policy?: Policy } = {}): DataMap {
  const parsed = dataMapSchema.safeParse(input);
  if (!parsed.success) {
    const issues = zodIssues(parsed.error);
    throw new PrivacyKitError('data-map/invalid', `Invalid data map: ${formatIssues(issues)}`, { issues });
  }
  const map = parsed.data;
  const tables = new Map<string, DataMapTable>();
  for (const [name, table] of Object.entries(map.tables)) {
    tables.set(name, {
      name,
      primaryKey:
        table.primaryKey === undefined
          ? []
          : Array.isArray(table.primaryKey)
            ? table.primaryKey
            : [table.primaryKey],
      identities: table.identities,
      references: table.references,
      columns: Object.fromEntries(
        Object.entries(table.columns).map(([column, value]) => [
          column,
          Array.isArray(value) ? value : [value],
        ]),
      ),
      tenantColumn: table.tenantColumn ?? map.tenantColumn,
      description: table.description,
      parents: [...new Set(table.references.map((reference) => reference.table))],
    });
  }

  const fail = (code: CoreErrorCode, issues: PrivacyKitIssue[]): never => {
    throw new PrivacyKitError(code, `Invalid data map: ${formatIssues(issues)}`, { issues });
  };

  const referenceIssues: PrivacyKitIssue[] = [];
  for (const table of tables.values()) {
    for (const [kind] of Object.entries(table.identities)) {
      if (!Object.hasOwn(map.identities, kind)) {
        referenceIssues.push({
          path: `tables.${table.name}.identities.${kind}`,
          message: `unknown identity kind "${kind}"`,
        });
      }
    }
    table.references.forEach((reference, i) => {
      const parent = tables.get(reference.table);
      if (!parent) {
        referenceIssues.push({
          path: `tables.${table.name}.references[${i}].table`,
          message: `unknown table "${reference.table}"`,
        });
      } else if (!reference.key && parent.primaryKey.length !== 1) {
        referenceIssues.push({
          path: `tables.${table.name}.references[${i}].key`,
          message: `"${reference.table}" has no single primary key: name the referenced column`,
        });
      }
    });
  }
  if (referenceIssues.length > 0) fail('data-map/unknown-table', referenceIssues);

  // Reachability: a table is the subject's when it has an identity column or references a
  // reachable table. Fixpoint over the reference graph.
  const reachable = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const table of tables.values()) {
      if (reachable.has(table.name)) continue;
      if (Object.keys(table.identities).length > 0 || table.parents.some((parent) => reachable.has(parent))) {
        reachable.add(table.name);
        grew = true;
      }
    }
  }
  const unreachable = [...tables.keys()].filter((name) => !reachable.has(name));
  if (unreachable.length > 0) {
    fail(
      'data-map/unreachable-table',
      unreachable.map((name) => ({
        path: `tables.${name}`,
        message: `"${name}" cannot be reached from any subject identity: give it an identity column or a reference to a subject table`,
      })),
    );
  }

  // Parents-first order; a cycle in the reference graph would make the traversal loop.
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, trail: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      fail('data-map/cycle', [
        { path: `tables.${name}`, message: `reference cycle ${[...trail, name].join(' → ')}` },
      ]);
    }
    state.set(name, 'visiting');
    for (const parent of tables.get(name)?.parents ?? []) visit(parent, [...trail, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of tables.keys()) visit(name, []);

  if (options.policy) {
    const policy = options.policy;
    const issues: PrivacyKitIssue[] = [];
    let code: 'data-map/unknown-category' | 'data-map/prohibited-category' = 'data-map/unknown-category';
    for (const table of tables.values()) {
      for (const [column, categories] of Object.entries(table.columns)) {
        categories.forEach((category, i) => {
          const path = `tables.${table.name}.columns.${column}${categories.length > 1 ? `[${i}]` : ''}`;
          const prohibited = policy.prohibitedCategories.find((bad) => categoryCovers(bad, category));
          if (prohibited) {
            issues.push({
              path,
              message: `"${category}" is prohibited by the policy: this data must never be stored`,
            });
            code = 'data-map/prohibited-category';
          } else if (!policy.categoryIndex.has(category)) {
            issues.push({ path, message: `unknown category "${category}"` });
          }
        });
      }
    }
    if (issues.length > 0) fail(code, issues);
  }

  return { identities: map.identities, tables, order };
}

/** Normalises an identity value as its kind says (see {@link identityKindSchema}). */
export function normaliseIdentity(map: DataMap, kind: string, value: string): string {
  const declared = Object.hasOwn(map.identities, kind) ? map.identities[kind] : undefined;
  if (!declared) throw new PrivacyKitError('data-map/unknown-identity', `unknown identity kind "${kind}"`);
  if (declared.normalise === 'email') return value.trim().replace(/[A-Z]/g, (c) => c.toLowerCase());
  return value;
}

/** The categories a table holds, across its columns. */
export function tableCategories(table: DataMapTable): string[] {
  return [...new Set(Object.values(table.columns).flat())];
}
