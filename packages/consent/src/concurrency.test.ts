import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import { describe, expect, it } from 'vitest';
import { runTestScript, testPolicy } from './test-fixtures.js';
import { createConsentLedger } from './ledger.js';
import { consentMigrations } from './migrations.js';

async function runWriter(url: string, prefix: string, count: number): Promise<string> {
  const run = await runTestScript('writer.ts', [url, prefix, String(count)]);
  if (run.code !== 0) throw new Error(`writer ${prefix} exited ${run.code}: ${run.err}`);
  return run.out;
}

describe.each(testEngines())('concurrent writers on $engine', (engine) => {
  it('two processes appending at once never fork the ledger', async () => {
    const database = await createTestDatabase(engine);
    try {
      await migrate(database.db, [consentMigrations]);
      const count = 120;
      const results = await Promise.all([
        runWriter(database.url, 'a', count),
        runWriter(database.url, 'b', count),
      ]);
      expect(results).toEqual(['done\n', 'done\n']);
      const ledger = createConsentLedger({ db: database.db, policy: testPolicy });
      const result = await ledger.verify();
      expect(result).toMatchObject({ ok: true, size: 3 + 2 * count });
      const seqs = await database.db
        .selectFrom('privacykit_consent_ledger')
        .select('seq')
        .orderBy('seq')
        .execute();
      expect(seqs.map((row) => Number(row.seq))).toEqual(Array.from({ length: 3 + 2 * count }, (_, i) => i));
      // Both processes shared one notice publication, one pseudonym secret and one key.
      const notices = await database.db.selectFrom('privacykit_consent_notices').selectAll().execute();
      expect(notices).toHaveLength(3);
    } finally {
      await database?.destroy();
    }
  }, 120_000);
});
