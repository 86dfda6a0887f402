// One requester's process for the concurrency tests: `node --import tsx test/submitter.ts <url> <order> <subject>…`.
// It opens its own connections, says `ready`, waits for `go` on stdin, submits one access request
// per subject all at once (two identities each, listed in the given order: `ab` or `ba`) and
// prints the answers as one JSON line. `PRIVACYKIT_SUBMITTER_AT` sets its clock (default
// 2024-01-31T10:00:00Z); with `PRIVACYKIT_SUBMITTER_SMTP_PORT` it mails challenges through
// nodemailer to that SMTP server on loopback.
import { fixedClock } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { printOutcomes, waitForGo } from '@privacykit/core/testing';
import nodemailer from 'nodemailer';
import { nodemailerMailer } from '../src/mailer.js';
import { createRequestService } from '../src/request-service.js';
import { testPolicy } from '../src/test-support.js';

const [url, order, ...subjects] = process.argv.slice(2);
const smtpPort = process.env.PRIVACYKIT_SUBMITTER_SMTP_PORT;
const transport = smtpPort
  ? nodemailer.createTransport({ host: '127.0.0.1', port: Number(smtpPort), secure: false, ignoreTLS: true })
  : undefined;
const db = await openDatabase({ url: url as string, poolSize: subjects.length });
const service = createRequestService({
  db,
  policy: testPolicy(),
  clock: fixedClock(process.env.PRIVACYKIT_SUBMITTER_AT ?? '2024-01-31T10:00:00Z'),
  secret: 'a test secret of more than thirty-two bytes!!',
  ...(transport ? { mailer: nodemailerMailer(transport, { from: 'privacy@example.com' }) } : {}),
  onDeliveryError: (error) => {
    process.stderr.write(`delivery failed: ${String(error)}\n`);
    process.exitCode = 1;
  },
});
// Open every pooled connection now, so `go` starts the submissions and nothing else.
await Promise.all(
  subjects.map(() => db.selectFrom('privacykit_requests_requests').select('id').limit(1).execute()),
);

await waitForGo();

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
transport?.close();
await db.destroy();
printOutcomes(results);
