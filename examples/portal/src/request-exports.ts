import type { Kysely } from 'kysely';
import type { Clock } from '@privacykit/core';

const TABLE = 'privacykit_portal_request_exports';
// The export store's package table (`@privacykit/subject-access`), read to know whether a package
// can still be downloaded: the store offers no look-up that writes nothing.
const PACKAGES = 'privacykit_subject_access_packages';

export interface RequestExportInfo {
  exportId: string;
  createdAt: string;
  createdBy: string;
  format: string;
  /** Set once a second staff member released the package (four eyes). */
  releasedAt?: string;
  releasedBy?: string;
}

/**
 * Which stored export package answers which rights request (the export store keys by export id),
 * and whether it has been released to the requester.
 */
export interface RequestExports {
  /** Records a new package, not yet released. */
  attach(input: { requestId: string; exportId: string; by: string; format: string }): Promise<void>;
  /** Makes a package available to the requester. */
  release(input: { requestId: string; exportId: string; by: string }): Promise<void>;
  /** The latest package the requester may download (released only). */
  latest(requestId: string): Promise<RequestExportInfo | undefined>;
  /** The latest package, released or not (back office). */
  latestAny(requestId: string): Promise<RequestExportInfo | undefined>;
  /** One package of the request, released or not (back office). */
  get(requestId: string, exportId: string): Promise<RequestExportInfo | undefined>;
  /**
   * Whether the export store still holds the package and can hand it out (stored, not past its
   * retention): one purged, or expired while it awaited release, can only be exported again.
   */
  available(exportId: string): Promise<boolean>;
}

type Row = {
  export_id: string;
  created_at: string;
  created_by: string;
  format: string;
  released_at: string | null;
  released_by: string | null;
};

function fromRow(row: Row): RequestExportInfo {
  return {
    exportId: row.export_id,
    createdAt: row.created_at,
    createdBy: row.created_by,
    format: row.format,
    ...(row.released_at ? { releasedAt: row.released_at } : {}),
    ...(row.released_by ? { releasedBy: row.released_by } : {}),
  };
}

export function createRequestExports(options: {
  db: Kysely<any>;
  tenant: string;
  clock: Clock;
}): RequestExports {
  const { db, tenant, clock } = options;
  const latestWhere = async (requestId: string, releasedOnly: boolean) => {
    let query = db
      .selectFrom(TABLE)
      .selectAll()
      .where('tenant', '=', tenant)
      .where('request_id', '=', requestId);
    if (releasedOnly) query = query.where('released_at', 'is not', null);
    const row = (await query.orderBy('created_at', 'desc').executeTakeFirst()) as Row | undefined;
    return row ? fromRow(row) : undefined;
  };
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
          released_at: null,
          released_by: null,
        })
        .execute();
    },
    async release(input) {
      await db
        .updateTable(TABLE)
        .set({ released_at: clock.now().toISOString(), released_by: input.by })
        .where('tenant', '=', tenant)
        .where('request_id', '=', input.requestId)
        .where('export_id', '=', input.exportId)
        .where('released_at', 'is', null)
        .execute();
    },
    async get(requestId, exportId) {
      const row = (await db
        .selectFrom(TABLE)
        .selectAll()
        .where('tenant', '=', tenant)
        .where('request_id', '=', requestId)
        .where('export_id', '=', exportId)
        .executeTakeFirst()) as Row | undefined;
      return row ? fromRow(row) : undefined;
    },
    async available(exportId) {
      const row = await db
        .selectFrom(PACKAGES)
        .select('expires_at')
        .where('tenant', '=', tenant)
        .where('id', '=', exportId)
        .where('status', '=', 'ready')
        .executeTakeFirst();
      if (!row) return false;
      const expiresAt = new Date(row.expires_at as string | Date).getTime();
      return expiresAt > clock.now().getTime();
    },
    latest: (requestId) => latestWhere(requestId, true),
    latestAny: (requestId) => latestWhere(requestId, false),
  };
}
