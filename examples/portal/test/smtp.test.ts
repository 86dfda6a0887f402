import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smtpMailer } from '../src/mailer.js';
import { Client, startPortal } from './harness.js';
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
    const requestId = new URL(submitted.headers.get('location')!, portal.base).searchParams.get('request')!;
    await visitor.page(submitted.headers.get('location')!);
    const code = await waitForCode(smtp.messages, 'ada@example.com', before);
    const verified = await visitor.post('/rights/verify', { requestId, code });
    expect(verified.headers.get('location')).toBe(`/rights/requests/${requestId}`);
    expect(smtp.messages.at(-1)!.raw).toContain('From: privacy@opendatasoft.example');
  });
});
