// A worker executing erasure plans, for the concurrency tests:
// `node --import tsx test/executor.ts <url> <planId>…`. It opens its own connection, says
// `ready`, waits for `go` on stdin, executes each plan in turn and prints one JSON line: per
// plan, the report's status and failure reasons, or the error it failed with.
import { fixedClock } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { outcomeOf, printOutcomes, waitForGo } from '@privacykit/core/testing';
import { executeErasure } from '../src/execute.js';
import { getErasureRecord } from '../src/plan.js';

const [url, ...planIds] = process.argv.slice(2);
const db = await openDatabase(url as string);
const plans = [];
for (const planId of planIds) plans.push((await getErasureRecord({ db, planId })).plan);

await waitForGo();

const outcomes: string[] = [];
for (const plan of plans) {
  try {
    const report = await executeErasure(plan, {
      db,
      clock: fixedClock('2025-06-01T12:00:00.000Z'),
      batchSize: 2,
    });
    outcomes.push(
      [report.status, ...report.failures.map((failure) => `${failure.table}: ${failure.reason}`)].join(' | '),
    );
  } catch (error) {
    outcomes.push(outcomeOf(error));
  }
}
await db.destroy();
printOutcomes(outcomes);
