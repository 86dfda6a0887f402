// A second (and third) process appending to the same ledger: `node --import tsx test/writer.ts <url> <prefix> <count>`.
import { fixedClock } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { createConsentLedger } from '../src/ledger.js';
import { testPolicy } from '../src/test-fixtures.js';

const [url, prefix, count] = process.argv.slice(2);
const db = await openDatabase({ url: url as string, poolSize: 4 });
const ledger = createConsentLedger({ db, policy: testPolicy, clock: fixedClock('2025-06-01T00:00:00Z') });
const purposes = ['newsletter', 'audience-measurement', 'targeted-advertising'];
// Several appends in flight at once per process, so both the process and the pool contend.
const jobs = Array.from(
  { length: Number(count) },
  (_, i) => async () =>
    ledger.record({
      subjectId: `${prefix}-${i % 10}`,
      purpose: purposes[i % 3] as string,
      state: i % 2 ? 'granted' : 'refused',
      source: 'api',
      method: 'api-call',
      // Some with evidence: the subject key is created inside the append transaction.
      ...(i % 3 === 0 ? { evidence: { ip: '203.0.113.9' } } : {}),
    }),
);
const lanes = Array.from({ length: 4 }, async (_, lane) => {
  for (let i = lane; i < jobs.length; i += 4) await (jobs[i] as () => Promise<unknown>)();
});
await Promise.all(lanes);
await db.destroy();
process.stdout.write('done\n');
