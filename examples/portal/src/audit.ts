import type { Kysely } from 'kysely';
import { newId } from '@privacykit/core';
import type { Clock } from '@privacykit/core';

export interface AuditEntry {
  at: string;
  actor: string;
  action: string;
  target?: string;
  detail?: string;
}

/** The staff audit trail for actions no package audits itself: who did what, when (UTC). */
export interface StaffAudit {
  record(entry: Omit<AuditEntry, 'at'>): Promise<void>;
  recent(limit?: number): Promise<AuditEntry[]>;
}

export function createStaffAudit(options: { db: Kysely<any>; tenant: string; clock: Clock }): StaffAudit {
  const { db, tenant, clock } = options;
  return {
    async record(entry) {
      const now = clock.now();
      await db
        .insertInto('privacykit_portal_audit')
        .values({
          id: newId(now),
          tenant,
          at: now.toISOString(),
          actor: entry.actor,
          action: entry.action,
          target: entry.target ?? null,
          detail: entry.detail ?? null,
        })
        .execute();
    },
    async recent(limit = 100) {
      const rows = await db
        .selectFrom('privacykit_portal_audit')
        .selectAll()
        .where('tenant', '=', tenant)
        .orderBy('at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map((row) => ({
        at: row.at,
        actor: row.actor,
        action: row.action,
        target: row.target ?? undefined,
        detail: row.detail ?? undefined,
      }));
    },
  };
}
