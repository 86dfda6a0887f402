import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startPortal } from '../test/harness.js';
import type { Portal } from '../test/harness.js';
import { PrivacyKitError } from '@privacykit/core';
import type { ConsentLedger } from '@privacykit/consent';
import { seedPolicy } from './policy.js';

describe.each(testEngines())('portal skeleton on $engine', (engine) => {
  let portal: Portal;

  beforeAll(async () => {
    portal = await startPortal(engine, {}, { seed: false });
  });
  afterAll(async () => {
    await portal?.close();
  });

  it('serves the privacy notice with every Article 10 period in words', async () => {
    const response = await fetch(`${portal.base}/privacy`);
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
    const response = await fetch(`${portal.base}/healthz`);
    expect(await response.json()).toMatchObject({ status: 'ok', policyVersion: seedPolicy.version });
  });

  it('gives a 404 page for unknown paths', async () => {
    const response = await fetch(`${portal.base}/no/such/page`);
    expect(response.status).toBe(404);
    expect(await response.text()).toContain('Page not found');
    expect(portal.errors).toEqual([]);
  });

  it('sends strict security headers: CSP without inline script, no framing, no sniffing', async () => {
    const response = await fetch(`${portal.base}/privacy`);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const page = await response.text();
    expect(page).not.toMatch(/<script(?![^>]*\ssrc=)/);
    expect(page).not.toMatch(/src="https?:\/\//);
    expect(page).not.toMatch(/<link[^>]+href="https?:/);
  });

  it('sets the session cookie httpOnly and SameSite=Lax, and nothing else before consent', async () => {
    const client = new Client(portal.base);
    const response = await client.get('/privacy');
    const cookies = response.headers.getSetCookie();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatch(/^pk_session=/);
    expect(cookies[0]).toMatch(/HttpOnly/i);
    expect(cookies[0]).toMatch(/SameSite=Lax/i);
  });
});

describe.each(testEngines())('server-side failures on $engine', (engine) => {
  let portal: Portal;
  /** What the consent ledger throws next, standing in for a broken database or a damaged store. */
  let failure: Error = new Error('unset');

  beforeAll(async () => {
    const ledger = {
      current: async () => {
        throw failure;
      },
    } as unknown as ConsentLedger;
    portal = await startPortal(engine, { ledger }, { seed: false });
  });
  afterAll(async () => {
    await portal?.close();
  });

  /** GET /consent as a visitor with a consent cookie: the page reads the ledger. */
  async function consentPage(): Promise<Response> {
    const cookie = Buffer.from(
      JSON.stringify({
        v: 1,
        s: 'a-browser-subject-0001',
        p: {},
        n: seedPolicy.version,
        t: '2025-03-10T09:00:00Z',
      }),
    ).toString('base64url');
    return fetch(`${portal.base}/consent`, { headers: { cookie: `pk_consent=${cookie}` } });
  }

  it('answers an unexpected error with a 500 page that shows neither its message nor its stack, and logs it', async () => {
    failure = new Error('connection to db-primary.internal:5432 refused (secret detail)');
    const response = await consentPage();
    expect(response.status).toBe(500);
    const body = await response.text();
    expect(body).toContain('Something went wrong on our side');
    expect(body).not.toContain('db-primary');
    expect(body).not.toMatch(/at .*\.[jt]s:\d+/);
    expect(portal.errors).toContain(failure);
  });

  it.each(['database/migration-failed', 'subject-access/export-corrupt', 'data-map/unreachable-table'])(
    'answers a server-side library error (%s) with 500, logged, never a 400 blaming the request',
    async (code) => {
      failure = new PrivacyKitError(code as never, `internal: ${code} in table privacykit_secret_things`);
      const response = await consentPage();
      expect(response.status).toBe(500);
      expect(await response.text()).not.toContain('privacykit_secret_things');
      expect(portal.errors).toContain(failure);
    },
  );
});
