// One staff member's process for the concurrency tests: `node --import tsx test/assigner.ts <url> <request id> <label> <count>`.
// It opens its own connection, says `ready`, waits for `go` on stdin, assigns the request `count`
// times in a row (to `staff:<label><i>`) and prints one JSON line: the error of each failed
// assignment (an empty list when all succeeded).
import { createInterface } from 'node:readline';
import { fixedClock } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { createRequestService } from '../src/request-service.js';
import { testPolicy } from '../src/test-support.js';

const [url, requestId, label, count] = process.argv.slice(2);
const db = await openDatabase(url as string);
const service = createRequestService({
  db,
  policy: testPolicy(),
  clock: fixedClock('2024-01-31T10:00:00Z'),
  secret: 'a test secret of more than thirty-two bytes!!',
});
await db.selectFrom('privacykit_requests_requests').select('id').limit(1).execute();

const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
for await (const line of lines) if (line === 'go') break;
lines.close();

const errors: string[] = [];
for (let i = 0; i < Number(count); i++) {
  try {
    await service.assign(requestId as string, { assignee: `staff:${label}${i}`, by: 'staff:lead' });
  } catch (error) {
    errors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  }
}
await db.destroy();
process.stdout.write(`${JSON.stringify(errors)}\n`);
