import session from 'express-session';
import type { SessionData } from 'express-session';
import type { Kysely } from 'kysely';
import type { Clock } from '@privacykit/core';
import { sha256Hex } from '@privacykit/core/crypto';
import { engineOf } from '@privacykit/core/db';

const TABLE = 'privacykit_portal_sessions';

/** Marks a session object that was loaded from a row (set by `sessions()` in session.ts). */
export const STORED_SESSION = Symbol('privacykit.storedSession');

/** True when a session holds nothing but its cookie settings: nothing worth a row. */
function isEmpty(data: SessionData): boolean {
  return Object.entries(data).every(([key, value]) => key === 'cookie' || value === undefined);
}

/**
 * A server-side session store on the portal's own database (any engine kysely speaks), so
 * sessions survive restarts and work across several portal processes. Expired rows are ignored on
 * read and purged by {@link KyselySessionStore.purgeExpired}; sessions holding nothing are never
 * stored. Rows are keyed by the SHA-256 of the
 * session id, never the id itself: a copy of the table (a backup, a read-only leak) holds no
 * cookie anyone could sign in with.
 */
export class KyselySessionStore extends session.Store {
  constructor(
    private readonly db: Kysely<any>,
    private readonly clock: Clock,
    /** Idle lifetime used when a session cookie has no expiry of its own. */
    private readonly ttlMs: number,
  ) {
    super();
  }

  private key(sid: string): string {
    return sha256Hex(sid);
  }

  private expiresAt(data: SessionData): string {
    const expires = data.cookie?.expires;
    const at = expires ? new Date(expires) : new Date(this.clock.now().getTime() + this.ttlMs);
    return at.toISOString();
  }

  override get(sid: string, callback: (err: unknown, session?: SessionData | null) => void): void {
    this.db
      .selectFrom(TABLE)
      .select(['data', 'expires_at'])
      .where('sid', '=', this.key(sid))
      .executeTakeFirst()
      .then((row) => {
        if (!row || row.expires_at <= this.clock.now().toISOString()) return callback(null, null);
        callback(null, JSON.parse(row.data) as SessionData);
      }, callback);
  }

  override set(sid: string, data: SessionData, callback?: (err?: unknown) => void): void {
    // An empty session is not stored (a browser that only read pages and their forms), and one
    // that was emptied loses its row; neither is a write on every page view.
    if (isEmpty(data)) {
      if (!(data as { [STORED_SESSION]?: boolean })[STORED_SESSION]) {
        callback?.();
        return;
      }
      this.destroy(sid, callback);
      return;
    }
    const values = { data: JSON.stringify(data), expires_at: this.expiresAt(data) };
    // One upsert statement: an update-then-insert transaction deadlocks on MySQL gap locks when
    // two requests of one new session save at once.
    const insert = this.db.insertInto(TABLE).values({ sid: this.key(sid), ...values });
    const query =
      engineOf(this.db) === 'mysql'
        ? insert.onDuplicateKeyUpdate(values)
        : insert.onConflict((conflict) => conflict.column('sid').doUpdateSet(values));
    query.execute().then(
      () => callback?.(),
      (error) => callback?.(error),
    );
  }

  override touch(sid: string, data: SessionData, callback?: (err?: unknown) => void): void {
    this.db
      .updateTable(TABLE)
      .set({ expires_at: this.expiresAt(data) })
      .where('sid', '=', this.key(sid))
      .execute()
      .then(
        () => callback?.(),
        (error) => callback?.(error),
      );
  }

  override destroy(sid: string, callback?: (err?: unknown) => void): void {
    this.db
      .deleteFrom(TABLE)
      .where('sid', '=', this.key(sid))
      .execute()
      .then(
        () => callback?.(),
        (error) => callback?.(error),
      );
  }

  /** Deletes expired sessions; the portal's housekeeping timer calls it (`housekeeping.ts`). */
  async purgeExpired(): Promise<number> {
    const result = await this.db
      .deleteFrom(TABLE)
      .where('expires_at', '<=', this.clock.now().toISOString())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
