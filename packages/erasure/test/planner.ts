// A worker that plans an erasure for a request, for the concurrency tests:
// `node --import tsx test/planner.ts <url> <requestId>…`. It opens its own connection, says
// `ready`, waits for `go` on stdin, plans each request in turn (no secrets given: each worker
// draws its own, as a real one does) and prints one JSON line: per request, the plan id it got
// or the error it failed with.
import { createInterface } from 'node:readline';
import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { planErasure } from '../src/plan.js';
import { ada, dataMap, facts, policy, strategies } from '../src/testing-fixtures.js';

const [url, ...requestIds] = process.argv.slice(2);
const db = await openDatabase(url as string);
await db.selectFrom('privacykit_erasure_plans').select('id').limit(1).execute();

const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
for await (const line of lines) if (line === 'go') break;
lines.close();

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
    outcomes.push(
      isPrivacyKitError(error)
        ? error.code
        : error instanceof Error
          ? `${error.name}: ${error.message}`
          : String(error),
    );
  }
}
await db.destroy();
process.stdout.write(`${JSON.stringify(outcomes)}\n`);
