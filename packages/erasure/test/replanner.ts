// A worker that replaces a request's erasure plan, for the concurrency tests:
// `node --import tsx test/replanner.ts <url> <requestId> <barrierDir> <parties>`. It opens its own
// connection, says `ready`, waits for `go` on stdin and plans the request with `replace: true`.
// Its first hold lookup (after it read the plan it replaces, before it stores its own) waits
// until `parties` workers have reached theirs: a file each in `barrierDir`. It prints one JSON
// line: the plan id it got, or the error it failed with.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase } from '@privacykit/core/db';
import { outcomeOf, printOutcomes, waitForGo } from '@privacykit/core/testing';
import { planFixtureErasure } from '../src/testing-fixtures.js';

const [url, requestId, barrierDir, parties] = process.argv.slice(2) as [string, string, string, string];
const db = await openDatabase(url);
await db.selectFrom('privacykit_erasure_plans').select('id').limit(1).execute();

await waitForGo();

let arrived = false;
const holds = async () => {
  if (!arrived) {
    arrived = true;
    writeFileSync(join(barrierDir, String(process.pid)), '');
    while (readdirSync(barrierDir).length < Number(parties)) await sleep(10);
  }
  return [];
};

let outcome: string;
try {
  outcome = (await planFixtureErasure(db, { requestId, replace: true, holds })).id;
} catch (error) {
  outcome = outcomeOf(error);
}
await db.destroy();
printOutcomes([outcome]);
