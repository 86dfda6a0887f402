import { categoryCovers, categoryIdSchema } from '@privacykit/core';
import type { DataMap } from '@privacykit/core';
import { z } from 'zod';

const sqlName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a plain SQL identifier');

/**
 * What a legal hold covers: a data subject (identity kind → values, found through the data map),
 * a whole table, a data category (every table holding it), or one row of a table.
 */
export const holdScopeSchema = z.union([
  z.object({ subject: z.record(z.string(), z.array(z.string().min(1)).min(1)) }).strict(),
  z.object({ table: sqlName, key: z.union([z.string().min(1), z.number()]).optional() }).strict(),
  z.object({ category: categoryIdSchema }).strict(),
]);
export type HoldScope = z.infer<typeof holdScopeSchema>;

const instantInput = z.union([z.date(), z.string()]).transform((value, context) => {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) {
    context.addIssue({ code: 'custom', message: 'expected an ISO 8601 instant' });
    return z.NEVER;
  }
  const iso = date.toISOString();
  // Stored and compared as text: `+010000-01-01T…` sorts before `2025-…`, so a hold meant to
  // last ten thousand years would read as long expired and protect nothing.
  if (!/^\d{4}-/.test(iso)) {
    context.addIssue({ code: 'custom', message: 'expected an instant in the years 0000 to 9999' });
    return z.NEVER;
  }
  return iso;
});

export const placeHoldSchema = z
  .object({
    scope: holdScopeSchema,
    /** Why: the claim, case or authority request (Art 17(3)(e)). */
    reason: z.string().trim().min(1),
    placedBy: z.string().trim().min(1),
    /** When the hold lapses by itself; kept until released when omitted. */
    expiresAt: instantInput.optional(),
  })
  .strict();
export type PlaceHoldInput = z.input<typeof placeHoldSchema>;

export const releaseHoldSchema = z
  .object({ by: z.string().trim().min(1), reason: z.string().trim().min(1) })
  .strict();
export type ReleaseHoldInput = z.input<typeof releaseHoldSchema>;

/** A legal hold as stored: while active, no sweep touches what it covers. */
export interface LegalHold {
  id: string;
  tenant: string;
  kind: 'subject' | 'table' | 'category' | 'row';
  table?: string;
  key?: string;
  category?: string;
  identities?: Record<string, string[]>;
  reason: string;
  placedBy: string;
  placedAt: string;
  expiresAt?: string;
  releasedAt?: string;
  releasedBy?: string;
  releaseReason?: string;
}

export interface HoldRow {
  id: string;
  tenant: string;
  scope: string;
  table_name: string | null;
  row_key: string | null;
  category: string | null;
  identities: string | null;
  reason: string;
  placed_by: string;
  placed_at: string;
  expires_at: string | null;
  released_at: string | null;
  released_by: string | null;
  release_reason: string | null;
}

export function holdFromRow(row: HoldRow): LegalHold {
  return {
    id: row.id,
    tenant: row.tenant,
    kind: row.scope as LegalHold['kind'],
    ...(row.table_name ? { table: row.table_name } : {}),
    ...(row.row_key !== null ? { key: row.row_key } : {}),
    ...(row.category ? { category: row.category } : {}),
    ...(row.identities ? { identities: JSON.parse(row.identities) as Record<string, string[]> } : {}),
    reason: row.reason,
    placedBy: row.placed_by,
    placedAt: row.placed_at,
    ...(row.expires_at ? { expiresAt: row.expires_at } : {}),
    ...(row.released_at ? { releasedAt: row.released_at } : {}),
    ...(row.released_by ? { releasedBy: row.released_by } : {}),
    ...(row.release_reason ? { releaseReason: row.release_reason } : {}),
  };
}

/** True when a hold covers every row of `table`: a table hold, or a category the table holds. */
export function holdCoversTable(
  hold: LegalHold,
  table: string,
  options: { dataMap?: DataMap; ruleCategories?: readonly string[] },
): boolean {
  if (hold.kind === 'table') return hold.table === table;
  if (hold.kind !== 'category' || !hold.category) return false;
  const held = hold.category;
  const overlaps = (category: string) => categoryCovers(held, category) || categoryCovers(category, held);
  const mapped = options.dataMap?.tables.get(table);
  if (mapped && Object.values(mapped.columns).flat().some(overlaps)) return true;
  return (options.ruleCategories ?? []).some(overlaps);
}
