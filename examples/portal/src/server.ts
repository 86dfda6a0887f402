import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { engineOfUrl, openDatabase } from '@privacykit/core/db';
import { createApp } from './app.js';
import { seedPolicy } from './policy.js';

// The only file that touches the real world: environment, database, network.
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const databaseUrl = process.env.DATABASE_URL ?? 'sqlite:.data/portal.db';

if (engineOfUrl(databaseUrl) === 'sqlite' && databaseUrl !== ':memory:') {
  mkdirSync(dirname(databaseUrl.replace(/^(sqlite|file):(\/\/)?/, '')), { recursive: true });
}
const db = await openDatabase(databaseUrl);
const app = createApp({ db, policy: seedPolicy });
const server = app.listen(port, host, () => {
  console.log(
    `PrivacyKit portal listening on http://${host === '0.0.0.0' ? 'localhost' : host}:${port}/  (database: ${engineOfUrl(databaseUrl)})`,
  );
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    server.close(() => void db.destroy().then(() => process.exit(0)));
  });
}
