// Shared fixtures of this package's tests (not exported from the package).
import { definePolicy } from '@privacykit/core';
import type { Policy } from '@privacykit/core';
import type { Kysely } from 'kysely';
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
