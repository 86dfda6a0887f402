import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, codeFrom, fileAndVerify, startPortal, waitFor } from './harness.js';
import type { Portal } from './harness.js';

describe.each(testEngines())('"Check my request" guesses are bounded per request on $engine', (engine) => {
  let portal: Portal;
  let requestId: string;
  beforeAll(async () => {
    portal = await startPortal(engine, { rateLimits: { intake: 1000, verify: 1000 } });
    requestId = await fileAndVerify(portal, new Client(portal.base), 'access', {
      email: 'grace@example.com',
    });
  });
  afterAll(async () => {
    await portal?.close();
  });

  /** Asks for a code in a new browser; returns it with the code mailed, if one was. */
  async function ask(): Promise<{ client: Client; code?: string }> {
    const client = new Client(portal.base);
    await client.page('/rights/check');
    const before = portal.mail.length;
    expect(
      (await client.post('/rights/check', { reference: requestId, email: 'grace@example.com' })).status,
    ).toBe(303);
    await client.page('/rights/check/code');
    // The mail is sent without being awaited: give it a moment, then look.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const mail = portal.mail.slice(before).find((m) => m.to === 'grace@example.com');
    return { client, ...(mail ? { code: codeFrom(mail.text) } : {}) };
  }
  const wrong = (code: string) => String((Number(code) + 1) % 100_000_000).padStart(8, '0');
  const liveChallenges = async () =>
    (
      await portal.t.db
        .selectFrom('privacykit_portal_return_codes')
        .select('id')
        .where('request_id', '=', requestId)
        .execute()
    ).length;

  it('past the mails of the hour, a check makes a dead challenge: nothing to guess at', async () => {
    const asked = [await ask(), await ask(), await ask()];
    expect(asked.every((a) => a.code)).toBe(true);
    const fourth = await ask();
    expect(fourth.code).toBeUndefined();
    // Only the three mailed challenges can ever open the request.
    expect(await liveChallenges()).toBe(3);
    for (let i = 0; i < 3; i += 1) await ask();
    expect(await liveChallenges()).toBe(3);

    // Over all its challenges the request takes 10 tries an hour, however many browsers ask: two
    // browsers spend theirs on wrong codes, and the third's right code no longer opens it.
    const [a, b, c] = asked as [
      Required<(typeof asked)[0]>,
      Required<(typeof asked)[0]>,
      Required<(typeof asked)[0]>,
    ];
    for (const { client, code } of [a, b]) {
      for (let i = 0; i < 5; i += 1) {
        expect((await client.post('/rights/check/code', { code: wrong(code) })).status).toBe(400);
      }
    }
    expect((await c.client.post('/rights/check/code', { code: c.code })).status).toBe(400);
    expect((await c.client.get(`/rights/requests/${requestId}`)).status).toBe(404);

    // An hour later the request's subject can check it again.
    portal.clock.advance(61 * 60_000);
    const later = await ask();
    await waitFor(() => Boolean(later.code));
    const opened = await later.client.post('/rights/check/code', { code: later.code! });
    expect(opened.status).toBe(303);
    expect(opened.headers.get('location')).toBe(`/rights/requests/${requestId}`);
  });
});
