// A worker that plans an erasure for a request, for the concurrency tests:
// `node --import tsx test/planner.ts <url> <requestId>…`. It opens its own connection, says
// `ready`, waits for `go` on stdin, plans each request in turn (no secrets given: each worker
// draws its own, as a real one does) and prints one JSON line: per request, the plan id it got
// or the error it failed with.
import { fixedClock } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { outcomeOf, printOutcomes, waitForGo } from '@privacykit/core/testing';
import { planErasure } from '../src/plan.js';
import { ada, dataMap, facts, policy, strategies } from '../src/testing-fixtures.js';

const [url, ...requestIds] = process.argv.slice(2);
const db = await openDatabase(url as string);
await db.selectFrom('privacykit_erasure_plans').select('id').limit(1).execute();

await waitForGo();

const outcomes: string[] = [];
for (const requestId of requestIds) {
  try {
    const plan = await planErasure({
      db,
      dataMap,
      policy,
      identities: ada,
      clock: fixedClock('2025-06-01T12:00:00.000Z'),
      strategies,
      facts,
      requestId,
      subjectId: 'subj-ada',
    });
    outcomes.push(plan.id);
  } catch (error) {
    outcomes.push(outcomeOf(error));
  }
}
await db.destroy();
printOutcomes(outcomes);
