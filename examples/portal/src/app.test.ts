import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startPortal } from '../test/harness.js';
import type { Portal } from '../test/harness.js';
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

  it('gives a 404 page for unknown paths and never leaks a stack trace', async () => {
    const response = await fetch(`${portal.base}/no/such/page`);
    expect(response.status).toBe(404);
    const body = await response.text();
    expect(body).toContain('Page not found');
    expect(body).not.toMatch(/at .*\.ts:\d+/);
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
