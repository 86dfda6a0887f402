import { categoryCovers } from '@privacykit/core';
import type { DataMap } from '@privacykit/core';
import { subjectCondition } from '@privacykit/core/db';
import { rowKey } from '@privacykit/erasure';
import type { HeldRow, HoldSource } from '@privacykit/erasure';
import type { LegalHold } from '@privacykit/retention';
import type { Kysely } from 'kysely';

export interface RetentionHoldSourceOptions {
  /** The host database (subject holds are resolved through the data map's traversal). */
  db: Kysely<any>;
  dataMap: DataMap;
  /** The active legal holds, e.g. `() => retentionEngine.holds({ active: true })`; read once. */
  holds: () => Promise<readonly LegalHold[]>;
}

function tableHoldsCategory(dataMap: DataMap, table: string, category: string): boolean {
  const mapped = dataMap.tables.get(table);
  if (!mapped) return false;
  return Object.values(mapped.columns)
    .flat()
    .some((held) => categoryCovers(category, held) || categoryCovers(held, category));
}

/** Several holds on one row: every reason, and the latest end (none when one has no expiry). */
function merge(previous: HeldRow | undefined, next: HeldRow): HeldRow {
  if (!previous) return next;
  const until =
    previous.until === undefined || next.until === undefined
      ? undefined
      : [previous.until, next.until].sort()[1];
  return { key: next.key, reason: `${previous.reason}; ${next.reason}`, ...(until ? { until } : {}) };
}

/**
 * `@privacykit/retention`'s legal holds as `@privacykit/erasure`'s `HoldSource`: a row is held
 * by a row hold on it, a hold on its table, a hold on a data category its table holds, or a
 * subject hold whose identities reach the row through the data map. Held rows are then kept
 * under Art 17(3)(e), with the hold's id and reason, until the hold's expiry when it has one.
 */
export function retentionHoldSource(options: RetentionHoldSourceOptions): HoldSource {
  let active: Promise<readonly LegalHold[]> | undefined;
  return {
    async heldRows({ tenant, table, keys }) {
      active ??= options.holds();
      const holds = (await active).filter((hold) => hold.tenant === tenant);
      const held = new Map<string, HeldRow>();
      const hold = (key: string, legal: LegalHold) => {
        const row: HeldRow = {
          key,
          reason: `legal hold ${legal.id}: ${legal.reason}`,
          ...(legal.expiresAt ? { until: legal.expiresAt.slice(0, 10) } : {}),
        };
        held.set(key, merge(held.get(key), row));
      };
      const wanted = new Set(keys);
      const mapped = options.dataMap.tables.get(table);
      for (const legal of holds) {
        if (legal.kind === 'row') {
          if (legal.table === table && legal.key !== undefined && wanted.has(legal.key))
            hold(legal.key, legal);
        } else if (legal.kind === 'table') {
          if (legal.table === table) for (const key of keys) hold(key, legal);
        } else if (legal.kind === 'category') {
          if (legal.category && tableHoldsCategory(options.dataMap, table, legal.category)) {
            for (const key of keys) hold(key, legal);
          }
        } else if (legal.kind === 'subject' && legal.identities && mapped && keys.length > 0) {
          const condition = subjectCondition(
            { db: options.db, dataMap: options.dataMap, identities: legal.identities, tenant },
            table,
          );
          const rows = await options.db
            .selectFrom(table)
            .select(mapped.primaryKey)
            .where((eb) => condition(eb))
            .execute();
          for (const row of rows) {
            const key = rowKey(row as Record<string, unknown>, mapped.primaryKey);
            if (wanted.has(key)) hold(key, legal);
          }
        }
      }
      return held.values();
    },
  };
}
