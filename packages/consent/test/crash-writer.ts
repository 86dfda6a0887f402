// A process that records decisions and then dies without closing its database:
// `node --import tsx test/crash-writer.ts <url> <plan.json> <results.json> <exit|kill>`.
// The plan is `{ clock, decisions: [{ subjectId, purpose, state, evidence? }] }`, recorded one
// after the other in order (withdrawals through `withdraw()`). Once every call has resolved it
// writes what each returned to `results.json`, prints `recorded <n>`, and ends with
// `process.exit(0)` (`exit`) or SIGKILL (`kill`, no exit handlers run) — never `db.destroy()`.
import { readFileSync, writeSync, writeFileSync } from 'node:fs';
import { fixedClock } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { createConsentLedger } from '../src/ledger.js';
import type { RecordedDecision } from '../src/ledger.js';
import { testPolicy } from '../src/test-fixtures.js';

interface PlannedDecision {
  subjectId: string;
  purpose: string;
  state: 'granted' | 'refused' | 'withdrawn';
  evidence?: { ip?: string };
}

const [url, planFile, resultsFile, mode] = process.argv.slice(2) as [string, string, string, string];
const plan = JSON.parse(readFileSync(planFile, 'utf8')) as { clock: string; decisions: PlannedDecision[] };
const db = await openDatabase({ url, poolSize: 2 });
const ledger = createConsentLedger({ db, policy: testPolicy, clock: fixedClock(plan.clock) });
const results: RecordedDecision[] = [];
for (const { subjectId, purpose, state, evidence } of plan.decisions) {
  results.push(
    state === 'withdrawn'
      ? await ledger.withdraw(subjectId, purpose, evidence ? { evidence } : {})
      : await ledger.record({
          subjectId,
          purpose,
          state,
          source: 'banner',
          method: 'click',
          ...(evidence ? { evidence } : {}),
        }),
  );
}
writeFileSync(resultsFile, JSON.stringify(results));
writeSync(1, `recorded ${results.length}\n`);
// No db.destroy(): whatever the ledger still holds in memory dies with the process.
if (mode === 'kill') process.kill(process.pid, 'SIGKILL');
else process.exit(0);
