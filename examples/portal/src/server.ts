import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomToken } from '@privacykit/core';
import { createDatabaseKeyStore, evidenceKeyStoreMigrations } from '@privacykit/consent';
import { engineOfUrl, migrate, openDatabase } from '@privacykit/core/db';
import { createApp } from './app.js';
import { outboxMailer, smtpMailer } from './mailer.js';
import { seedPolicy } from './policy.js';
import { migratePortal } from './setup.js';
import { createStaffDirectory } from './staff.js';
import { systemClock } from '@privacykit/core';

// The only file that touches the real world: environment, database, network.
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const databaseUrl = process.env.DATABASE_URL ?? 'sqlite:.data/portal.db';
const publicOrigin = process.env.PUBLIC_ORIGIN;
// Sites the back office may scan for cookies: SCAN_ORIGINS (comma- or space-separated), else the
// public origin, else the portal itself as it listens here (development).
const listenHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
const listenOrigin = `http://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`;
const scanOrigins = process.env.SCAN_ORIGINS
  ? process.env.SCAN_ORIGINS.split(/[\s,]+/).filter(Boolean)
  : [publicOrigin ?? listenOrigin];

// Evidence keys of the consent ledger in a database of their own (hostile case 21), when set.
const keysUrl = process.env.CONSENT_KEYS_URL || undefined;

/** Creates a SQLite file's directory (`.data/`) before the file is opened. */
function ensureDirectoryOf(url: string): void {
  if (engineOfUrl(url) === 'sqlite' && url !== ':memory:') {
    mkdirSync(dirname(url.replace(/^(sqlite|file):(\/\/)?/, '')), { recursive: true });
  }
}
ensureDirectoryOf(databaseUrl);
const db = await openDatabase(databaseUrl);
await migratePortal(db);
let keyDb: Awaited<ReturnType<typeof openDatabase>> | undefined;
if (keysUrl) {
  ensureDirectoryOf(keysUrl);
  keyDb = await openDatabase(keysUrl);
  await migrate(keyDb, [evidenceKeyStoreMigrations]);
}

const tenant = seedPolicy.tenant;
const clock = systemClock;
const mailer = process.env.SMTP_URL
  ? smtpMailer({
      url: process.env.SMTP_URL,
      from:
        process.env.MAIL_FROM ??
        `privacy@${new URL(seedPolicy.controller.website ?? 'https://example.com').hostname}`,
    })
  : outboxMailer({ db, tenant, clock });

const firstAdmin = await createStaffDirectory({ db, tenant, clock }).ensureInitialAdmin(
  process.env.ADMIN_EMAIL,
);
if (firstAdmin) {
  console.log(
    `\nFirst start: created the administrator account\n  email:    ${firstAdmin.email}\n  password: ${firstAdmin.password}\nThis password is shown only once. Sign in at /admin/login and keep it safe.\n`,
  );
}

if (!process.env.SESSION_SECRET) {
  console.warn('SESSION_SECRET is not set: using a random one (sessions end when the portal restarts).');
}
const app = createApp({
  db,
  policy: seedPolicy,
  clock,
  mailer,
  sessionSecret: process.env.SESSION_SECRET ?? randomToken(32),
  publicOrigin,
  // Without PUBLIC_ORIGIN, mail links point where the portal listens (development).
  linkOrigin: listenOrigin,
  scanOrigins,
  secureCookies: publicOrigin?.startsWith('https:') ? true : 'auto',
  trustProxy: process.env.TRUST_PROXY ? Number(process.env.TRUST_PROXY) || process.env.TRUST_PROXY : false,
  ...(keyDb ? { evidenceKeys: createDatabaseKeyStore({ db: keyDb }) } : {}),
});
const server = app.listen(port, host, () => {
  console.log(
    `PrivacyKit portal listening on http://${host === '0.0.0.0' ? 'localhost' : host}:${port}/  (database: ${engineOfUrl(databaseUrl)}${keyDb ? `; evidence keys: ${engineOfUrl(keysUrl as string)}` : ''}${process.env.SMTP_URL ? '' : '; mail goes to /admin/outbox'})`,
  );
  // Listening beyond loopback means people reach the portal at some other name: the links mailed
  // (request confirmation, unsubscribe) would point at http://HOST:PORT, which they cannot use.
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(host) || host.startsWith('127.');
  if (!publicOrigin && !loopback) {
    console.warn(
      `Warning: PUBLIC_ORIGIN is not set, so links in mail point at ${listenOrigin}, the address the portal listens on. Set PUBLIC_ORIGIN to the address people use (https://privacy.example.com).`,
    );
  }
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // Closing the server stops the housekeeping timer; a purge in progress ends before the database closes.
    server.close(
      () =>
        void app.housekeeping
          .stop()
          .then(() => Promise.all([db.destroy(), keyDb?.destroy()]))
          .then(() => process.exit(0)),
    );
  });
}
