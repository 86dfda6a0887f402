import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import { describe, expect, it } from 'vitest';
import { testPolicy } from './test-fixtures.js';
import { createConsentLedger } from './ledger.js';
import { consentMigrations } from './migrations.js';

const writer = fileURLToPath(new URL('../test/writer.ts', import.meta.url));

function runWriter(url: string, prefix: string, count: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, url, prefix, String(count)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`writer ${prefix} exited ${code}: ${err}`)),
    );
  });
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
