import { DEFAULT_TENANT, systemClock, toInstant } from '@privacykit/core';
import type { Clock, JsonValue } from '@privacykit/core';
import { writeStatement } from '@privacykit/core/db';
import type { Kysely } from 'kysely';
import { erasureError } from './errors.js';
import type { ErasurePlan, PlanRecipient } from './plan.js';

/**
 * An Art 19 notification: "the data of this subject were erased" sent to one recipient.
 * `idempotencyKey` is stable (`<planId>:<recipientId>`), so a recipient receiving it twice
 * (a retry after a lost response) can recognise the duplicate.
 */
export interface ErasureNotification {
  type: 'privacykit.erasure';
  article: 'Art 19';
  idempotencyKey: string;
  tenant: string;
  planId: string;
  requestId?: string;
  recipient: PlanRecipient;
  /**
   * Who is concerned: the identities the recipient needs to find the subject's data (emptied in
   * the stored notice once delivered and the plan's identities are purged).
   */
  identities: Record<string, string[]>;
  /** The categories of the subject's data that recipient received. */
  categories: string[];
  erasedAt: string;
}

export interface OutboxEntry {
  id: string;
  planId: string;
  recipientId: string;
  idempotencyKey: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: string;
  lastError?: string;
  receipt?: JsonValue;
  deliveredAt?: string;
  notification: ErasureNotification;
}

/**
 * The recipients to whom the subject's data were disclosed, from the policy's purposes and the
 * categories found for the subject — the list Art 19's last sentence lets the subject ask for.
 */
export function recipientsFor(plan: ErasurePlan): PlanRecipient[] {
  return plan.recipients.map((recipient) => ({ ...recipient }));
}

/** Outbox rows for a plan's recipients; written by `executeErasure` in its completion transaction. */
export function notificationRows(plan: ErasurePlan, at: string) {
  return plan.recipients.map((recipient) => {
    const notification: ErasureNotification = {
      type: 'privacykit.erasure',
      article: 'Art 19',
      idempotencyKey: `${plan.id}:${recipient.id}`,
      tenant: plan.tenant,
      planId: plan.id,
      ...(plan.requestId ? { requestId: plan.requestId } : {}),
      recipient,
      identities: plan.identities,
      categories: recipient.categories,
      erasedAt: at,
    };
    return {
      tenant: plan.tenant,
      plan_id: plan.id,
      recipient_id: recipient.id,
      idempotency_key: notification.idempotencyKey,
      payload: JSON.stringify(notification),
      status: 'pending',
      attempts: 0,
      next_attempt_at: at,
      created_at: at,
    };
  });
}

function entryOf(row: Record<string, any>): OutboxEntry {
  return {
    id: row.id,
    planId: row.plan_id,
    recipientId: row.recipient_id,
    idempotencyKey: row.idempotency_key,
    status: row.status,
    attempts: Number(row.attempts),
    nextAttemptAt: row.next_attempt_at,
    ...(row.last_error ? { lastError: row.last_error } : {}),
    ...(row.receipt ? { receipt: JSON.parse(row.receipt) } : {}),
    ...(row.delivered_at ? { deliveredAt: row.delivered_at } : {}),
    notification: JSON.parse(row.payload),
  };
}

/** The Art 19 notifications of a plan (or of the tenant), with their delivery state. */
export async function listNotifications(options: {
  db: Kysely<any>;
  tenant?: string;
  planId?: string;
  status?: OutboxEntry['status'];
}): Promise<OutboxEntry[]> {
  let query = options.db
    .selectFrom('privacykit_erasure_outbox')
    .selectAll()
    .where('tenant', '=', options.tenant ?? DEFAULT_TENANT);
  if (options.planId) query = query.where('plan_id', '=', options.planId);
  if (options.status) query = query.where('status', '=', options.status);
  const rows = await query.orderBy('created_at').orderBy('recipient_id').orderBy('id').execute();
  return rows.map(entryOf);
}

export interface Backoff {
  /** Delay after the first failure (default 60 s). */
  initialMs?: number;
  /** Growth per further failure (default 2). */
  factor?: number;
  /** Longest delay (default 24 h). */
  maxMs?: number;
}

/** The delay before attempt `attempts + 1` after `attempts` failures: initial × factor^(n−1), capped. */
export function backoffDelay(attempts: number, backoff: Backoff = {}): number {
  const { initialMs = 60_000, factor = 2, maxMs = 86_400_000 } = backoff;
  return Math.min(maxMs, initialMs * factor ** Math.max(0, attempts - 1));
}

export interface DeliverPendingOptions {
  db: Kysely<any>;
  /** Delivers one notification and returns the recipient's receipt; throws when it was not accepted. */
  send: (notification: ErasureNotification) => Promise<JsonValue | undefined>;
  tenant?: string;
  clock?: Clock;
  /** After this many failed attempts a notification is `failed` and needs a person (default 10). */
  maxAttempts?: number;
  backoff?: Backoff;
  /** Notifications handled per call (default 100). */
  limit?: number;
  /** How long a claimed notification is hidden from other workers while being sent (default 5 min). */
  leaseMs?: number;
}

export interface DeliveryResult {
  delivered: number;
  /** Failed this time and scheduled again. */
  retrying: number;
  /** Gave up after `maxAttempts`. */
  failed: number;
}

/**
 * Delivers due Art 19 notifications from the outbox (Art 19, R10): each is claimed (so several
 * workers never send the same one at once), sent, and either marked delivered with the
 * recipient's receipt, or kept `pending` with its attempts counted and the next attempt pushed
 * back exponentially — a recipient endpoint that is down never loses the notice.
 *
 * @throws PrivacyKitError `erasure/delivery-not-recorded` when a recipient accepted a notice
 * but its delivery could not be recorded (the database failed): it is sent again, under the same
 * idempotency key, once its claim ends. A receipt that is not JSON, or over 60,000 bytes of it,
 * is stored as a note of the delivery saying so (`receiptNotKept`).
 */
export async function deliverPending(options: DeliverPendingOptions): Promise<DeliveryResult> {
  const { db } = options;
  const clock = options.clock ?? systemClock;
  const tenant = options.tenant ?? DEFAULT_TENANT;
  const maxAttempts = options.maxAttempts ?? 10;
  const leaseMs = options.leaseMs ?? 300_000;
  const result: DeliveryResult = { delivered: 0, retrying: 0, failed: 0 };
  const now = toInstant(clock.now());
  const due = await db
    .selectFrom('privacykit_erasure_outbox')
    .selectAll()
    .where('tenant', '=', tenant)
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .orderBy('next_attempt_at')
    .orderBy('id')
    .limit(options.limit ?? 100)
    .execute();
  for (const row of due) {
    // Claim: push the next attempt out by the lease, only if no one else moved it first.
    const lease = toInstant(new Date(clock.now().getTime() + leaseMs));
    // Each write through core's `writeStatement`: on SQLite it waits off the
    // thread for a write lock another connection of the process holds. `send` runs in none.
    const claimed = await writeStatement(db, (trx) =>
      trx
        .updateTable('privacykit_erasure_outbox')
        .set({ next_attempt_at: lease })
        .where('id', '=', row.id)
        .where('tenant', '=', tenant)
        .where('status', '=', 'pending')
        .where('next_attempt_at', '=', row.next_attempt_at)
        .executeTakeFirst(),
    );
    if (Number(claimed.numUpdatedRows ?? 0) !== 1) continue;
    // The outcome is recorded only while the claim still stands: a person may have confirmed the
    // notice by hand meanwhile, or this worker stalled past its claim and another one took the
    // notice over (and delivered it). Writing regardless put a delivered notice back to
    // `pending` — to be sent again — or replaced its receipt.
    const stillClaimed = <Q extends { where: (...args: any[]) => Q }>(query: Q): Q =>
      query
        .where('id', '=', row.id)
        .where('tenant', '=', tenant)
        .where('status', '=', 'pending')
        .where('next_attempt_at', '=', lease);
    const entry = entryOf(row);
    let receipt: JsonValue | undefined;
    try {
      receipt = await options.send(entry.notification);
    } catch (error) {
      const attempts = entry.attempts + 1;
      const giveUp = attempts >= maxAttempts;
      const recorded = await writeStatement(db, (trx) =>
        trx
          .updateTable('privacykit_erasure_outbox')
          .set({
            status: giveUp ? 'failed' : 'pending',
            attempts,
            last_error: message(error).slice(0, 2000),
            next_attempt_at: toInstant(
              new Date(clock.now().getTime() + backoffDelay(attempts, options.backoff)),
            ),
          })
          .$call(stillClaimed)
          .executeTakeFirst(),
      );
      if (Number(recorded.numUpdatedRows ?? 0) !== 1) continue;
      if (giveUp) result.failed++;
      else result.retrying++;
      continue;
    }
    // The recipient has the notice. Recording that is not part of the attempt: a receipt that
    // cannot be stored is replaced by a note saying why, and a database that fails here fails the
    // call (counted as a failed send, the notice went out again and again, and ended `failed`).
    const at = toInstant(clock.now());
    let recorded: { numUpdatedRows?: bigint };
    try {
      recorded = await writeStatement(db, (trx) =>
        trx
          .updateTable('privacykit_erasure_outbox')
          .set({
            status: 'delivered',
            attempts: entry.attempts + 1,
            receipt: receiptText(receipt, at),
            delivered_at: at,
            last_error: null,
          })
          .$call(stillClaimed)
          .executeTakeFirst(),
      );
    } catch (error) {
      throw erasureError(
        'erasure/delivery-not-recorded',
        `the Art 19 notification ${row.id} was accepted by recipient "${entry.recipientId}" but recording its delivery failed: ${message(error)}; it stays claimed until ${lease}, then is sent again with the same idempotency key`,
        {
          cause: error,
          details: {
            id: row.id,
            recipientId: entry.recipientId,
            idempotencyKey: entry.idempotencyKey,
            claimedUntil: lease,
          },
        },
      );
    }
    if (Number(recorded.numUpdatedRows ?? 0) === 1) result.delivered++;
  }
  return result;
}

/** Receipts are kept up to this size in UTF-8: MySQL's TEXT column holds 65,535 bytes. */
const MAX_RECEIPT_BYTES = 60_000;

/**
 * The receipt as stored: its JSON, or — when it is not JSON or too large to keep — a note of the
 * delivery saying why the receipt itself is missing, with the start of what was received.
 */
function receiptText(receipt: JsonValue | undefined, at: string): string {
  let text: string | undefined;
  let problem: string | undefined;
  try {
    text = JSON.stringify(receipt ?? { deliveredAt: at });
  } catch (error) {
    problem = `not JSON (${message(error)})`;
  }
  if (text === undefined) problem ??= 'not JSON';
  else if (Buffer.byteLength(text) > MAX_RECEIPT_BYTES) {
    problem = `${Buffer.byteLength(text)} bytes of JSON, over the ${MAX_RECEIPT_BYTES} kept`;
  }
  if (!problem) return text as string;
  return JSON.stringify({
    deliveredAt: at,
    receiptNotKept: problem,
    ...(text === undefined ? {} : { receiptStart: text.slice(0, 1024) }),
  });
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Records a delivery made by hand (a letter, a phone call to a processor without an endpoint),
 * with its receipt, so manual confirmations are part of the record too.
 *
 * @throws PrivacyKitError `erasure/plan-not-found` when no such notification exists.
 */
export async function confirmNotification(options: {
  db: Kysely<any>;
  id: string;
  receipt: JsonValue;
  tenant?: string;
  clock?: Clock;
}): Promise<void> {
  const at = toInstant((options.clock ?? systemClock).now());
  // Through core's `writeStatement`, like the delivery's writes.
  const result = await writeStatement(options.db, (trx) =>
    trx
      .updateTable('privacykit_erasure_outbox')
      .set({
        status: 'delivered',
        receipt: JSON.stringify(options.receipt),
        delivered_at: at,
        last_error: null,
      })
      .where('tenant', '=', options.tenant ?? DEFAULT_TENANT)
      .where('id', '=', options.id)
      // The first proof of delivery stands: a later confirmation never replaces its receipt.
      .where('status', '<>', 'delivered')
      .executeTakeFirst(),
  );
  if (Number(result.numUpdatedRows ?? 0) === 0) {
    const existing = await options.db
      .selectFrom('privacykit_erasure_outbox')
      .select(['delivered_at'])
      .where('tenant', '=', options.tenant ?? DEFAULT_TENANT)
      .where('id', '=', options.id)
      .executeTakeFirst();
    if (existing) {
      throw erasureError(
        'erasure/notification-already-delivered',
        `erasure notification ${options.id} was already delivered at ${String(existing.delivered_at)}: its receipt is kept`,
        { details: { id: options.id, deliveredAt: existing.delivered_at } },
      );
    }
    throw erasureError('erasure/plan-not-found', `no erasure notification ${options.id}`);
  }
}

/** Characters of a recipient's answer kept in its receipt (even escaped, well under 60,000 bytes). */
const RECEIPT_BODY_CHARS = 8192;

/**
 * A `send` for {@link deliverPending} that POSTs the notification as JSON to the recipient's
 * endpoint with an `Idempotency-Key` header; any non-2xx answer is a failed attempt. The
 * receipt stored is the HTTP status and the response body (JSON or text; an answer longer than
 * 8,192 characters is kept as its first 8,192, with `bodyTruncated` and `bodyLength`).
 */
export function httpNotificationSender(options: {
  endpoints: Readonly<Record<string, string>> | ((recipient: PlanRecipient) => string | undefined);
  timeoutMs?: number;
  headers?: Readonly<Record<string, string>>;
}): (notification: ErasureNotification) => Promise<JsonValue> {
  return async (notification) => {
    const url =
      typeof options.endpoints === 'function'
        ? options.endpoints(notification.recipient)
        : options.endpoints[notification.recipient.id];
    if (!url) throw new Error(`no endpoint for recipient "${notification.recipient.id}"`);
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': notification.idempotencyKey,
        ...options.headers,
      },
      body: JSON.stringify(notification),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    // A long answer (an HTML page, say) is kept in part: the receipt is proof of delivery, not
    // an archive of the recipient's pages, and the outbox keeps at most 60,000 bytes of it.
    if (text.length > RECEIPT_BODY_CHARS) {
      const truncated: JsonValue = {
        status: response.status,
        body: text.slice(0, RECEIPT_BODY_CHARS),
        bodyTruncated: true,
        bodyLength: text.length,
      };
      return truncated;
    }
    let body: JsonValue = text;
    try {
      body = JSON.parse(text) as JsonValue;
    } catch {
      // Keep the text as it came.
    }
    return { status: response.status, body };
  };
}
