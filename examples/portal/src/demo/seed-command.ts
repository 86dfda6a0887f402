import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { systemClock } from '@privacykit/core';
import { engineOfUrl, openDatabase } from '@privacykit/core/db';
import { seedPolicy } from '../policy.js';
import { migratePortal } from '../setup.js';
import { DEMO_IDENTITY, seedDemo } from './seed.js';

// `npm run seed -w examples/portal`: fills the database the portal uses with demo subjects.
const databaseUrl = process.env.DATABASE_URL ?? 'sqlite:.data/portal.db';
if (engineOfUrl(databaseUrl) === 'sqlite' && databaseUrl !== ':memory:') {
  mkdirSync(dirname(databaseUrl.replace(/^(sqlite|file):(\/\/)?/, '')), { recursive: true });
}
const db = await openDatabase(databaseUrl);
try {
  await migratePortal(db);
  const result = await seedDemo({ db, tenant: seedPolicy.tenant, clock: systemClock });
  console.log(
    result.seeded
      ? `Seeded ${result.customers} demo clients with ${result.invoices} invoices. Try the rights forms as ${DEMO_IDENTITY.email} (${DEMO_IDENTITY.name}, customer number ${DEMO_IDENTITY.customerNumber}).`
      : `The demo data is already there (${DEMO_IDENTITY.email}).`,
  );
} finally {
  await db.destroy();
}
