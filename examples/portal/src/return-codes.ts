import { randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import { newId } from '@privacykit/core';
import type { Clock } from '@privacykit/core';
import { constantTimeEqual, hmacSha256Hex } from '@privacykit/core/crypto';

const TABLE = 'privacykit_portal_return_codes';

export const RETURN_CODE_TTL_MS = 10 * 60_000;
export const RETURN_CODE_TRIES = 5;

/**
 * Fresh single-use codes for a visitor coming back to a request they verified earlier, from
 * another session (the requests package re-challenges only while identity is pending). Same
 * properties as its codes: 8 digits, stored only as HMAC-SHA-256 under a server secret, valid 10
 * minutes, one use, 5 tries (each try reserved by a conditional update, so parallel guesses cannot
 * exceed it). A challenge is also made — never mailed, never matching — when the reference and
 * address do not match, so both cases look the same from outside.
 */
export interface ReturnCodes {
  /** A new challenge for `requestId` (or a dead one for `null`); the code is only for the mail. */
  issue(requestId: string | null): Promise<{ challengeId: string; code: string }>;
  /** Challenges issued for the request in the last `ms` milliseconds (to cap mails per request). */
  issuedWithin(requestId: string, ms: number): Promise<number>;
  /** The request id when the code is right; `undefined` (one try spent) otherwise. */
  redeem(challengeId: string, code: string): Promise<string | undefined>;
}

export function createReturnCodes(options: {
  db: Kysely<any>;
  tenant: string;
  clock: Clock;
  secret: string;
}): ReturnCodes {
  const { db, tenant, clock, secret } = options;
  const hash = (challengeId: string, code: string) => hmacSha256Hex(secret, `${challengeId}:${code}`);

  return {
    async issue(requestId) {
      const now = clock.now();
      const challengeId = newId(now);
      const code = String(randomInt(0, 100_000_000)).padStart(8, '0');
      await db
        .insertInto(TABLE)
        .values({
          id: challengeId,
          tenant,
          request_id: requestId,
          code_hash: hash(challengeId, code),
          attempts: 0,
          created_at: now.toISOString(),
          expires_at: new Date(now.getTime() + RETURN_CODE_TTL_MS).toISOString(),
          consumed_at: null,
        })
        .execute();
      return { challengeId, code };
    },

    async issuedWithin(requestId, ms) {
      const since = new Date(clock.now().getTime() - ms);
      const row = await db
        .selectFrom(TABLE)
        .select((eb) => eb.fn.countAll().as('n'))
        .where('tenant', '=', tenant)
        .where('request_id', '=', requestId)
        .where('created_at', '>=', since.toISOString())
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    async redeem(challengeId, code) {
      const now = clock.now().toISOString();
      // Reserve one try first: expired, used or exhausted challenges reserve nothing.
      const reserved = await db
        .updateTable(TABLE)
        .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
        .where('tenant', '=', tenant)
        .where('id', '=', challengeId)
        .where('attempts', '<', RETURN_CODE_TRIES)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (Number(reserved.numUpdatedRows) !== 1) return undefined;
      const row = await db
        .selectFrom(TABLE)
        .select(['request_id', 'code_hash'])
        .where('tenant', '=', tenant)
        .where('id', '=', challengeId)
        .executeTakeFirst();
      if (!row || !constantTimeEqual(String(row.code_hash), hash(challengeId, code))) return undefined;
      if (!row.request_id) return undefined;
      const consumed = await db
        .updateTable(TABLE)
        .set({ consumed_at: now })
        .where('tenant', '=', tenant)
        .where('id', '=', challengeId)
        .where('consumed_at', 'is', null)
        .executeTakeFirst();
      return Number(consumed.numUpdatedRows) === 1 ? String(row.request_id) : undefined;
    },
  };
}
