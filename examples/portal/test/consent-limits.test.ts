import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startPortal } from './harness.js';
import type { Portal } from './harness.js';

describe.each(testEngines())('recording cookie choices on $engine', (engine) => {
  let portal: Portal;
  beforeAll(async () => {
    portal = await startPortal(engine, { rateLimits: { consent: 5 } }, { seed: false });
  });
  afterAll(async () => {
    await portal?.close();
  });

  const entries = async () =>
    Number(
      (
        await portal.t.db
          .selectFrom('privacykit_consent_ledger')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('writes one ledger decision per purpose, renews a grant, withdraws on refusal, then rate-limits POST /cookies', async () => {
    // The first choice also publishes the policy's notices to the ledger: warm it up first.
    const first = new Client(portal.base);
    await first.page('/privacy');
    expect((await first.post('/cookies', { choice: 'refuse-all', return: '/privacy' })).status).toBe(303);
    const visitor = new Client(portal.base);
    await visitor.page('/privacy');
    const start = await entries();
    expect((await visitor.post('/cookies', { choice: 'accept-all', return: '/privacy' })).status).toBe(303);
    expect(await entries()).toBe(start + 2);
    // Accepting again renews both grants; refusing then withdraws both.
    expect((await visitor.post('/cookies', { choice: 'accept-all', return: '/privacy' })).status).toBe(303);
    expect((await visitor.post('/cookies', { choice: 'refuse-all', return: '/privacy' })).status).toBe(303);
    expect(await entries()).toBe(start + 6);
    const consent = await visitor.page('/consent');
    expect(consent).toContain('data-purpose="audience-measurement">withdrawn');
    expect(consent).toContain('data-purpose="targeted-advertising">withdrawn');

    expect((await visitor.post('/cookies', { choice: 'refuse-all', return: '/privacy' })).status).toBe(303);
    const limited = await visitor.post('/cookies', { choice: 'accept-all', return: '/privacy' });
    expect(limited.status).toBe(429);
    expect(await limited.text()).toContain('Too many cookie choices');
    expect(portal.errors).toEqual([]);
  });
});
