import type { Kysely } from 'kysely';
import nodemailer from 'nodemailer';
import { newId } from '@privacykit/core';
import type { Clock } from '@privacykit/core';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  /** Extra headers (`List-Unsubscribe` on newsletter mail, RFC 8058). */
  headers?: Record<string, string>;
}

/** How the portal sends mail. Structurally the same as `@privacykit/requests`' `Mailer`. */
export interface Mailer {
  send(message: MailMessage): Promise<unknown>;
}

/** Real mail over SMTP (`smtp://user:pass@host:587`, `smtps://…`), through nodemailer. */
export function smtpMailer(options: { url: string; from: string }): Mailer {
  const transport = nodemailer.createTransport(options.url);
  return { send: (message) => transport.sendMail({ from: options.from, ...message }) };
}

const OUTBOX = 'privacykit_portal_outbox';

/**
 * How long development mail stays in the outbox: it holds addresses and one-time codes, which are
 * spent within the hour; a week is enough to look back at what was sent.
 */
export const OUTBOX_RETENTION_MS = 7 * 86_400_000;

/**
 * Development mail: nothing leaves the machine; messages land in a table shown at /admin/outbox.
 */
export function outboxMailer(options: { db: Kysely<any>; tenant: string; clock: Clock }): Mailer {
  return {
    async send(message) {
      await options.db
        .insertInto(OUTBOX)
        .values({
          id: newId(options.clock.now()),
          tenant: options.tenant,
          recipient: message.to,
          subject: message.subject,
          body: message.text,
          sent_at: options.clock.now().toISOString(),
        })
        .execute();
    },
  };
}

export interface OutboxMessage {
  id: string;
  recipient: string;
  subject: string;
  body: string;
  sentAt: string;
}

export async function listOutbox(db: Kysely<any>, tenant: string, limit = 50): Promise<OutboxMessage[]> {
  const rows = await db
    .selectFrom(OUTBOX)
    .selectAll()
    .where('tenant', '=', tenant)
    .orderBy('sent_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    id: row.id,
    recipient: row.recipient,
    subject: row.subject,
    body: row.body,
    sentAt: row.sent_at,
  }));
}

/** Deletes outbox mail older than {@link OUTBOX_RETENTION_MS} (housekeeping); returns how many. */
export async function purgeOutbox(db: Kysely<any>, tenant: string, clock: Clock): Promise<number> {
  const before = new Date(clock.now().getTime() - OUTBOX_RETENTION_MS).toISOString();
  const result = await db
    .deleteFrom(OUTBOX)
    .where('tenant', '=', tenant)
    .where('sent_at', '<', before)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
