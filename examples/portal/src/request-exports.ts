import type { Kysely } from 'kysely';
import type { Clock } from '@privacykit/core';

const TABLE = 'privacykit_portal_request_exports';

/** Which stored export package answers which rights request (the export store keys by export id). */
export interface RequestExports {
  attach(input: { requestId: string; exportId: string; by: string; format: string }): Promise<void>;
  latest(requestId: string): Promise<{ exportId: string; createdAt: string; format: string } | undefined>;
}

export function createRequestExports(options: {
  db: Kysely<any>;
  tenant: string;
  clock: Clock;
}): RequestExports {
  const { db, tenant, clock } = options;
  return {
    async attach(input) {
      await db
        .insertInto(TABLE)
        .values({
          tenant,
          request_id: input.requestId,
          export_id: input.exportId,
          format: input.format,
          created_by: input.by,
          created_at: clock.now().toISOString(),
        })
        .execute();
    },
    async latest(requestId) {
      const row = await db
        .selectFrom(TABLE)
        .selectAll()
        .where('tenant', '=', tenant)
        .where('request_id', '=', requestId)
        .orderBy('created_at', 'desc')
        .executeTakeFirst();
      return row ? { exportId: row.export_id, createdAt: row.created_at, format: row.format } : undefined;
    },
  };
}
