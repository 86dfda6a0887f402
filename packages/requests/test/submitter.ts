// One requester's process for the concurrency test: `node --import tsx test/submitter.ts <url> <order> <subject>…`.
// It opens its own connections, says `ready`, waits for `go` on stdin, submits one access request
// per subject all at once (two identities each, listed in the given order: `ab` or `ba`) and
// prints the answers as one JSON line.
import { createInterface } from 'node:readline';
import { fixedClock } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { createRequestService } from '../src/request-service.js';
import { testPolicy } from '../src/test-support.js';

const [url, order, ...subjects] = process.argv.slice(2);
const db = await openDatabase({ url: url as string, poolSize: subjects.length });
const service = createRequestService({
  db,
  policy: testPolicy(),
  clock: fixedClock('2024-01-31T10:00:00Z'),
  secret: 'a test secret of more than thirty-two bytes!!',
});
// Open every pooled connection now, so `go` starts the submissions and nothing else.
await Promise.all(
  subjects.map(() => db.selectFrom('privacykit_requests_requests').select('id').limit(1).execute()),
);

const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
for await (const line of lines) if (line === 'go') break;
lines.close();

const results = await Promise.all(
  subjects.map(async (subject) => {
    const identities = [
      { kind: 'email' as const, value: `${subject}@example.com` },
      { kind: 'customer-id', value: `cust-${subject}` },
    ];
    try {
      return await service.submit({
        right: 'access',
        identities: order === 'ba' ? identities.reverse() : identities,
      });
    } catch (error) {
      return { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
    }
  }),
);
await service.whenIdle();
await db.destroy();
process.stdout.write(`${JSON.stringify(results)}\n`);
