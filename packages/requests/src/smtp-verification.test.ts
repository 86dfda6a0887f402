import { fixedClock } from '@privacykit/core';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodemailerMailer } from './mailer.js';
import { requestMigrations } from './migrations.js';
import { createRequestService } from './request-service.js';
import { body, startSmtp, testPolicy } from './test-support.js';

describe.each(testEngines())('verification over real SMTP on $engine', (engine) => {
  let database: TestDatabase;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    await migrate(database.db, [requestMigrations]);
    smtp = await startSmtp();
  });
  afterAll(async () => {
    await smtp?.close();
    await database?.destroy();
  });

  it('mails the code through nodemailer to the registered channel only, and the code verifies', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: smtp.port,
      secure: false,
      ignoreTLS: true,
    });
    const registered: Record<string, string> = { 'C-42': 'ada@example.com' };
    const service = createRequestService({
      db: database.db,
      policy: testPolicy({ tenant: `smtp-${engine.engine}` }),
      clock: fixedClock('2024-05-02T08:00:00Z'),
      mailer: nodemailerMailer(transport, { from: 'privacy@example.com' }),
      secret: 'smtp test secret, long enough to be a key',
      codeDigits: 8,
      lookupRegisteredChannel: (identity) => registered[identity.value] ?? null,
    });
    // The requester writes in with a customer number and a spoofed reply address.
    const { requestId } = await service.submit({
      right: 'access',
      channel: 'email',
      identities: [{ kind: 'customer-number', value: 'C-42' }],
    });
    await service.whenIdle();
    transport.close();
    expect(smtp.inbox).toHaveLength(1);
    const [message] = smtp.inbox;
    expect(message?.to).toEqual(['ada@example.com']);
    expect(message?.from).toBe('privacy@example.com');
    const code = /confirmation code: (\d{8})/.exec(body(message!.raw))?.[1];
    expect(code).toMatch(/^\d{8}$/);
    const result = await service.verify({ requestId, code: code! });
    expect(result.status).toBe('verified');
    expect(await service.deliveryChannel(requestId)).toBe('ada@example.com');
    await expect(service.verify({ requestId, code: code! })).rejects.toMatchObject({
      code: 'requests/verification-failed',
    });
  });
});
