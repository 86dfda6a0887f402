// A worker that plans an erasure for a request, for the concurrency tests:
// `node --import tsx test/planner.ts <url> <requestId>…`. It opens its own connection, says
// `ready`, waits for `go` on stdin, plans each request in turn (no secrets given: each worker
// draws its own, as a real one does) and prints one JSON line: per request, the plan id it got
// or the error it failed with.
import { openDatabase } from '@privacykit/core/db';
import { outcomeOf, printOutcomes, waitForGo } from '@privacykit/core/testing';
import { planFixtureErasure } from '../src/testing-fixtures.js';

const [url, ...requestIds] = process.argv.slice(2);
const db = await openDatabase(url as string);
await db.selectFrom('privacykit_erasure_plans').select('id').limit(1).execute();

await waitForGo();

const outcomes: string[] = [];
for (const requestId of requestIds) {
  try {
    const plan = await planFixtureErasure(db, { requestId, subjectId: 'subj-ada' });
    outcomes.push(plan.id);
  } catch (error) {
    outcomes.push(outcomeOf(error));
  }
}
await db.destroy();
printOutcomes(outcomes);
