import { categoryCovers } from '@privacykit/core';
import type { DataMap, LegalBasis, Policy } from '@privacykit/core';
import { checkJsonSchema } from './json-schema-check.js';
import type { JsonSchema } from './json-schema-check.js';

export const PORTABILITY_SCHEMA_VERSION = 'privacykit.portability/1';

/** Legal bases under which Art 20(1)(a) makes data portable. */
const portableBases: ReadonlySet<LegalBasis> = new Set<LegalBasis>(['consent', 'contract']);

/**
 * Whether data of `category` falls under the right to data portability (Art 20(1), WP242 rev.01
 * §III.1): provided by the subject or observed from their use of the service — never derived or
 * inferred by the controller — and processed by at least one purpose resting on consent or
 * contract (data held only under a legal obligation or legitimate interests is not portable).
 */
export function isPortableCategory(policy: Policy, category: string): boolean {
  const declared = policy.categoryIndex.get(category);
  if (!declared || (declared.source !== 'provided' && declared.source !== 'observed')) return false;
  return policy.purposes.some(
    (purpose) =>
      purpose.legalBases.some((entry) => portableBases.has(entry.basis)) &&
      purpose.categories.some((held) => categoryCovers(held, category)),
  );
}

/**
 * The columns of each table that a portability export carries: every column whose categories
 * are all portable, plus the columns that hold no category and keep records identifiable and
 * linked — primary keys, and references (data map `references`) to a table the export carries
 * with the key they point at (an order line's `order_id`), so the receiving controller can join
 * them again. A column mixing a portable with a non-portable category is left out, reference or
 * not: inferred data must never travel with it.
 */
export function portableColumns(policy: Policy, dataMap: DataMap): Map<string, Record<string, string[]>> {
  const out = new Map<string, Record<string, string[]>>();
  // Parents first: a table's parents are settled before its references to them are weighed.
  for (const name of dataMap.order) {
    const table = dataMap.tables.get(name)!;
    const columns: Record<string, string[]> = {};
    for (const [column, categories] of Object.entries(table.columns)) {
      if (categories.every((category) => isPortableCategory(policy, category))) columns[column] = categories;
    }
    if (Object.keys(columns).length === 0) continue;
    for (const key of table.primaryKey) {
      if (!(key in columns) && !(key in table.columns)) columns[key] = [];
    }
    for (const reference of table.references) {
      if (reference.column in columns || reference.column in table.columns) continue;
      const parent = reference.table === name ? columns : out.get(reference.table);
      const key = reference.key ?? dataMap.tables.get(reference.table)!.primaryKey[0];
      if (parent && key !== undefined && key in parent) columns[reference.column] = [];
    }
    out.set(name, columns);
  }
  return out;
}

const jsonScalar: JsonSchema = { type: ['string', 'number', 'boolean', 'null', 'object', 'array'] };

/**
 * JSON Schema (draft 2020-12) of `portability.json`, the machine-readable part of an Art 20
 * export; shipped in the archive as `schema.json` so the receiving controller can check it.
 * Values are as the database holds them; instants are ISO 8601 UTC text, binary is base64.
 */
export const portabilitySchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://privacykit.dev/schemas/portability-1.json',
  title: 'PrivacyKit data portability export (GDPR Art 20)',
  description:
    'Personal data the data subject provided or that was observed from their use of the service, processed on the basis of consent or a contract, one entry per table of the controller’s system.',
  type: 'object',
  required: ['schemaVersion', 'generatedAt', 'controller', 'tables'],
  additionalProperties: false,
  properties: {
    schemaVersion: { const: PORTABILITY_SCHEMA_VERSION, description: 'Version of this format.' },
    generatedAt: {
      type: 'string',
      format: 'date-time',
      pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$',
      description: 'When the export was produced (UTC).',
    },
    controller: {
      type: 'object',
      required: ['name'],
      additionalProperties: false,
      properties: {
        name: { type: 'string' },
        email: { type: 'string' },
        website: { type: 'string' },
      },
    },
    tables: {
      type: 'object',
      description: 'Table name → its columns (with the data categories each holds) and rows.',
      additionalProperties: {
        type: 'object',
        required: ['columns', 'rows'],
        additionalProperties: false,
        properties: {
          description: { type: 'string' },
          columns: {
            type: 'object',
            description:
              'Column → data category ids (dotted, e.g. "contact.email"); [] for record keys and references.',
            additionalProperties: { type: 'array', items: { type: 'string', pattern: '^[a-z][a-z0-9.-]*$' } },
          },
          references: {
            type: 'object',
            description:
              'Column → the table and column of this export its values point at (e.g. an order line’s "order_id" → orders.id).',
            additionalProperties: {
              type: 'object',
              required: ['table', 'column'],
              additionalProperties: false,
              properties: { table: { type: 'string' }, column: { type: 'string' } },
            },
          },
          rows: { type: 'array', items: { type: 'object', additionalProperties: jsonScalar } },
        },
      },
    },
  },
} as const satisfies JsonSchema;

/** Problems of a portability document against {@link portabilitySchema}; empty when valid. */
export function checkPortabilityDocument(document: unknown): string[] {
  const problems = checkJsonSchema(portabilitySchema, document);
  // Rows may only hold the columns their table declares.
  if (problems.length === 0) {
    const tables = (
      document as {
        tables: Record<
          string,
          { columns: object; references?: Record<string, { table: string; column: string }>; rows: object[] }
        >;
      }
    ).tables;
    for (const [name, table] of Object.entries(tables)) {
      // A reference names one of the table's own columns and a column another table declares.
      for (const [column, target] of Object.entries(table.references ?? {})) {
        if (!(column in table.columns))
          problems.push(`$.tables.${name}.references: undeclared column "${column}"`);
        if (!tables[target.table] || !(target.column in tables[target.table]!.columns)) {
          problems.push(
            `$.tables.${name}.references.${column}: no column "${target.column}" of table "${target.table}"`,
          );
        }
      }
      table.rows.forEach((row, i) => {
        for (const key of Object.keys(row)) {
          if (!(key in table.columns))
            problems.push(`$.tables.${name}.rows[${i}]: undeclared column "${key}"`);
        }
      });
    }
  }
  return problems;
}
