// One staff member's process for the concurrency tests:
// `node --import tsx test/assigner.ts <url> <op> <label> <count> <request id>…`.
// It opens its own connection, says `ready`, waits for `go` on stdin, then works the requests in
// turn — `assign`: assigns each one `count` times (to `staff:<label><i>`); `cancel`: cancels each
// once; `resend`: asks for a fresh code `count` times; `extend`: extends each by one month, with
// the reason `<label> needs time` — and prints one JSON line: for each call, `ok` or the error it failed with.
import { fixedClock } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { outcomeOf, printOutcomes, waitForGo } from '@privacykit/core/testing';
import { createRequestService } from '../src/request-service.js';
import { testPolicy } from '../src/test-support.js';

const [url, op, label, count, ...requestIds] = process.argv.slice(2);
const db = await openDatabase(url as string);
const service = createRequestService({
  db,
  policy: testPolicy(),
  clock: fixedClock('2024-01-31T10:00:00Z'),
  secret: 'a test secret of more than thirty-two bytes!!',
});
await db.selectFrom('privacykit_requests_requests').select('id').limit(1).execute();

await waitForGo();

const outcomes: string[] = [];
const attempt = async (call: () => Promise<unknown>) => {
  try {
    await call();
    outcomes.push('ok');
  } catch (error) {
    outcomes.push(outcomeOf(error));
  }
};
for (const requestId of requestIds) {
  if (op === 'cancel') {
    await attempt(() => service.transition(requestId, { to: 'cancelled', by: `staff:${label}` }));
    continue;
  }
  if (op === 'extend') {
    await attempt(() =>
      service.extend(requestId, { months: 1, reasons: [`${label} needs time`], by: `staff:${label}` }),
    );
    continue;
  }
  if (op === 'resend') {
    for (let i = 0; i < Number(count); i++) await attempt(() => service.resendChallenge(requestId));
    continue;
  }
  for (let i = 0; i < Number(count); i++) {
    await attempt(() => service.assign(requestId, { assignee: `staff:${label}${i}`, by: 'staff:lead' }));
  }
}
await db.destroy();
printOutcomes(outcomes);
