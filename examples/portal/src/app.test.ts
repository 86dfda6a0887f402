import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { seedPolicy } from './policy.js';

describe.each(testEngines())('portal skeleton on $engine', (engine) => {
  let t: TestDatabase;
  let server: Server;
  let base: string;
  const errors: unknown[] = [];

  beforeAll(async () => {
    t = await createTestDatabase(engine);
    await migrate(t.db, []);
    const app = createApp({ db: t.db, policy: seedPolicy, logError: (error) => errors.push(error) });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await t?.destroy();
  });

  it('serves the privacy notice with every Article 10 period in words', async () => {
    const response = await fetch(`${base}/privacy`);
    expect(response.status).toBe(200);
    const page = await response.text();
    for (const words of [
      'deleted 5 years after the end of the contract',
      'deleted 10 years after the invoice date',
      '3 years after their collection, or 3 years after your last contact with us, whichever comes last',
      '15 months after the debit date',
      '13 months after the debit date',
      'at the end of the month of the card expiry date',
      'deleted 3 years after the end of the business relationship',
      '27 months after your last purchase',
      '1 year after the closure of your request',
      '3 years after the closure of your request',
      'anonymised 26 months after their collection',
      'anonymised 13 months after their recording',
      'at the limitation of the related lawsuit',
      'at the exhaustion of all ordinary and extraordinary appeals',
    ]) {
      expect(page).toContain(words);
    }
    expect(page).toContain('cil@opendatasoft.com');
    expect(page).toContain('CNIL');
    expect(page).toContain('standard data protection clauses');
  });

  it('answers health checks from the database', async () => {
    const response = await fetch(`${base}/healthz`);
    expect(await response.json()).toMatchObject({ status: 'ok', policyVersion: '2018-05-07' });
  });

  it('gives a 404 page for unknown paths and never leaks a stack trace', async () => {
    const response = await fetch(`${base}/no/such/page`);
    expect(response.status).toBe(404);
    const body = await response.text();
    expect(body).toContain('Page not found');
    expect(body).not.toMatch(/at .*\.ts:\d+/);
    expect(errors).toEqual([]);
  });
});
