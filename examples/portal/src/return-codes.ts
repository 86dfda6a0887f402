import { randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import { newId } from '@privacykit/core';
import type { Clock } from '@privacykit/core';
import { constantTimeEqual, hmacSha256Hex } from '@privacykit/core/crypto';

const TABLE = 'privacykit_portal_return_codes';

export const RETURN_CODE_TTL_MS = 10 * 60_000;
export const RETURN_CODE_TRIES = 5;
/** The window of the per-request caps below; rows are kept this long, then purged. */
export const RETURN_CODE_WINDOW_MS = 60 * 60_000;
/** Codes mailed per request per window: past it, a check gets the same page and a dead challenge. */
export const RETURN_CODE_MAILS = 3;
/** Tries per request per window, over all its challenges, right or wrong. */
export const RETURN_CODE_REQUEST_TRIES = 10;

/**
 * Fresh single-use codes for a visitor coming back to a request they verified earlier, from
 * another session (the requests package re-challenges only while identity is pending). Same
 * properties as its codes: 8 digits, stored only as HMAC-SHA-256 under a server secret, valid 10
 * minutes, one use, 5 tries (each try reserved by a conditional update, so parallel guesses cannot
 * exceed it). A challenge is also made — never mailed, never matching — when the reference and
 * address do not match, so both cases look the same from outside, and when the request has had
 * its {@link RETURN_CODE_MAILS} codes this hour: a challenge nobody was mailed must not be
 * redeemable, or each "check my request" would hand out five more guesses. Tries are also
 * counted per request over all its challenges ({@link RETURN_CODE_REQUEST_TRIES} an hour).
 */
export interface ReturnCodes {
  /**
   * A new challenge for `requestId` (or a dead one for `null`); the code is only for the mail,
   * and `mail` says whether to send it: false when the request has had its codes this hour (the
   * challenge is then dead too).
   */
  issue(requestId: string | null): Promise<{ challengeId: string; code: string; mail: boolean }>;
  /** Live challenges issued for the request in the last `ms` milliseconds. */
  issuedWithin(requestId: string, ms: number): Promise<number>;
  /** The request id when the code is right; `undefined` (one try spent) otherwise. */
  redeem(challengeId: string, code: string): Promise<string | undefined>;
  /** Deletes challenges older than the window (all long expired); returns how many. */
  purge(): Promise<number>;
}

export function createReturnCodes(options: {
  db: Kysely<any>;
  tenant: string;
  clock: Clock;
  secret: string;
}): ReturnCodes {
  const { db, tenant, clock, secret } = options;
  const hash = (challengeId: string, code: string) => hmacSha256Hex(secret, `${challengeId}:${code}`);

  const issuedWithin = async (requestId: string, ms: number) => {
    const since = new Date(clock.now().getTime() - ms);
    const row = await db
      .selectFrom(TABLE)
      .select((eb) => eb.fn.countAll().as('n'))
      .where('tenant', '=', tenant)
      .where('request_id', '=', requestId)
      .where('created_at', '>=', since.toISOString())
      .executeTakeFirstOrThrow();
    return Number(row.n);
  };

  return {
    issuedWithin,

    async issue(requestId) {
      // Checked before the insert: two checks racing may both get a live code (one more mail
      // at most); the per-request try count below still bounds the guesses.
      const live =
        requestId !== null && (await issuedWithin(requestId, RETURN_CODE_WINDOW_MS)) < RETURN_CODE_MAILS;
      const now = clock.now();
      const challengeId = newId(now);
      const code = String(randomInt(0, 100_000_000)).padStart(8, '0');
      await db
        .insertInto(TABLE)
        .values({
          id: challengeId,
          tenant,
          request_id: live ? requestId : null,
          code_hash: hash(challengeId, code),
          attempts: 0,
          created_at: now.toISOString(),
          expires_at: new Date(now.getTime() + RETURN_CODE_TTL_MS).toISOString(),
          consumed_at: null,
        })
        .execute();
      return { challengeId, code, mail: live };
    },

    async redeem(challengeId, code) {
      const now = clock.now().toISOString();
      const target = await db
        .selectFrom(TABLE)
        .select('request_id')
        .where('tenant', '=', tenant)
        .where('id', '=', challengeId)
        .executeTakeFirst();
      if (target?.request_id) {
        // Tries over every challenge of the request this hour: however many sessions ask.
        const since = new Date(clock.now().getTime() - RETURN_CODE_WINDOW_MS).toISOString();
        const spent = await db
          .selectFrom(TABLE)
          .select((eb) => eb.fn.sum<number | string | null>('attempts').as('n'))
          .where('tenant', '=', tenant)
          .where('request_id', '=', String(target.request_id))
          .where('created_at', '>=', since)
          .executeTakeFirstOrThrow();
        if (Number(spent.n ?? 0) >= RETURN_CODE_REQUEST_TRIES) return undefined;
      }
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

    async purge() {
      const before = new Date(clock.now().getTime() - RETURN_CODE_WINDOW_MS).toISOString();
      const result = await db
        .deleteFrom(TABLE)
        .where('tenant', '=', tenant)
        .where('created_at', '<', before)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
