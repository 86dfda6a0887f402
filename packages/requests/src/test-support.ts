// Shared fixtures of this package's tests (not exported from the package).
import type { AddressInfo } from 'node:net';
import { definePolicy } from '@privacykit/core';
import type { Policy } from '@privacykit/core';
import type { Kysely } from 'kysely';
import { SMTPServer } from 'smtp-server';
import type { MailMessage, Mailer } from './mailer.js';

export function testPolicy(overrides: { tenant?: string; zone?: string } = {}): Policy {
  return definePolicy({
    tenant: overrides.tenant ?? 'default',
    version: '2024-01-01',
    effectiveDate: '2024-01-01',
    zone: overrides.zone ?? 'Europe/Paris',
    controller: { name: 'Example SAS', address: '1 rue Exemple, Paris' },
    dpo: { email: 'dpo@example.com' },
    supervisoryAuthority: {
      name: 'the CNIL',
      address: '3 Place de Fontenoy, Paris',
      website: 'https://www.cnil.fr/',
    },
    purposes: [
      {
        id: 'newsletter',
        name: 'Newsletter',
        description: 'Sending the newsletter',
        legalBases: [{ basis: 'consent' }],
        categories: ['contact.email'],
        tags: ['direct-marketing'],
      },
      {
        id: 'service',
        name: 'Service',
        description: 'Providing the service',
        legalBases: [{ basis: 'contract' }],
        categories: ['identity'],
      },
    ],
    rights: { offered: ['access', 'erasure'], channels: [{ kind: 'email', value: 'dpo@example.com' }] },
  });
}

/** A mailer that keeps what it is asked to send: for tests that do not need a real SMTP server. */
export function memoryMailer(): Mailer & { sent: MailMessage[] } {
  const sent: MailMessage[] = [];
  return {
    sent,
    async send(message) {
      sent.push(message);
    },
  };
}

/** The one-time code in a challenge mail. */
export function codeIn(text: string): string {
  const match = /confirmation code: (\d{6,8})/.exec(text);
  if (!match?.[1]) throw new Error(`no code in: ${text}`);
  return match[1];
}

/** The link token in a challenge mail (built with `verificationLink: (t) => \`https://x/verify/\${t}\``). */
export function tokenIn(text: string): string {
  const match = /verify\/([A-Za-z0-9_-]+)/.exec(text);
  if (!match?.[1]) throw new Error(`no token in: ${text}`);
  return match[1];
}

/** Every row of a table, for asserting what was (not) stored. */
export async function allRows(db: Kysely<any>, table: string): Promise<Record<string, unknown>[]> {
  return (await db.selectFrom(table).selectAll().execute()) as Record<string, unknown>[];
}

export interface Received {
  from: string;
  to: string[];
  raw: string;
}

/** A real SMTP server on loopback that keeps every message it accepts. */
export async function startSmtp(): Promise<{ port: number; inbox: Received[]; close(): Promise<void> }> {
  const inbox: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        inbox.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { port, inbox, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Undoes quoted-printable soft breaks and escapes, enough to read a code out of a text body. */
export function body(raw: string): string {
  return raw
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
