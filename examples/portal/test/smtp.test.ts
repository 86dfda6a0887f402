import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smtpMailer } from '../src/mailer.js';
import { Client, startPortal, submissionOf, verifiedRequestId } from './harness.js';
import type { Portal } from './harness.js';
import { startSmtp, waitForCode } from './smtp.js';

describe('verification codes over real SMTP', () => {
  let portal: Portal;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  beforeAll(async () => {
    smtp = await startSmtp();
    portal = await startPortal(testEngines()[0]!, {
      mailer: smtpMailer({ url: smtp.url, from: 'privacy@opendatasoft.example' }),
    });
  });
  afterAll(async () => {
    await portal?.close();
    await smtp?.close();
  });

  it('mails the code to the registered address through nodemailer, and the code verifies the request', async () => {
    const visitor = new Client(portal.base);
    await visitor.page('/rights/access');
    const before = smtp.messages.length;
    const submitted = await visitor.post('/rights/access', { email: 'ADA@example.com' });
    const location = submitted.headers.get('location')!;
    await visitor.page(location);
    const code = await waitForCode(smtp.messages, 'ada@example.com', before);
    const requestId = verifiedRequestId(
      await visitor.post('/rights/verify', { submission: submissionOf(portal, location), code }),
    );
    expect((await visitor.get(`/rights/requests/${requestId}`)).status).toBe(200);
    expect(smtp.messages.at(-1)!.raw).toContain('From: privacy@opendatasoft.example');
  });
});
