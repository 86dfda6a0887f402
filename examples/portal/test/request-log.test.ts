import { testEngines } from '@privacykit/core/testing';
import { createRequestService } from '@privacykit/requests';
import type { SubmitRequestInput } from '@privacykit/requests';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedPolicy } from '../src/policy.js';
import { requestLogDueAt } from '../src/request-log-retention.js';
import { Client, STAFF, startPortal } from './harness.js';
import type { Portal } from './harness.js';

const DAY = 86_400_000;

describe.each(testEngines())('the request log on the retention sweep on $engine', (engine) => {
  let portal: Portal;
  beforeAll(async () => {
    // Three years back: the sessions' cookies expire by the real clock, and the test moves its
    // clock three years on.
    portal = await startPortal(engine, {}, { at: '2022-01-10T09:00:00Z' });
  });
  afterAll(async () => {
    await portal?.close();
  });

  it("redacts requests by the policy's id-documents rule and unverified ones after 30 days, from the sweep", async () => {
    // The portal's own request service (same database, tenant and clock).
    const requests = createRequestService({ db: portal.t.db, policy: seedPolicy, clock: portal.clock });
    const closed = async (input: SubmitRequestInput) => {
      const { requestId } = await requests.submit(input);
      await requests.transition(requestId, {
        to: 'cancelled',
        by: 'staff:eve',
        reason: 'withdrawn by phone',
      });
      return requestId;
    };
    const email = (value: string) => [{ kind: 'email', value }];
    const access = await closed({ right: 'access', identities: email('ana@example.com') });
    const objection = await closed({
      right: 'objection',
      identities: email('olaf@example.com'),
      details: { kind: 'direct-marketing' },
    });
    const erasure = await closed({ right: 'erasure', identities: email('erin@example.com') });
    portal.clock.advance(300 * DAY);
    const abandoned = (await requests.submit({ right: 'access', identities: email('ursula@example.com') }))
      .requestId;
    const forgotten = (await requests.submit({ right: 'access', identities: email('fay@example.com') }))
      .requestId;
    portal.clock.advance(66 * DAY); // a year and a day after the first closures
    await requests.submit({ right: 'access', identities: email('newer@example.com') });

    const staff = new Client(portal.base);
    await staff.login(STAFF);
    const page = await staff.page('/admin/retention');
    expect(page).toContain('data-request-log-due="3"');
    expect(page).toContain('(1 closed, 2 never verified)');

    const swept = await staff.post('/admin/retention/sweep', {});
    expect(swept.status).toBe(303);
    const run = await staff.page(swept.headers.get('location')!);
    expect(run).toContain('Request log: 3 requests redacted (1 closed, 2 never verified).');

    expect((await requests.get(access)).redactedAt).not.toBeNull();
    expect((await requests.get(abandoned)).redactedAt).not.toBeNull();
    expect((await requests.get(forgotten)).redactedAt).not.toBeNull();
    // Three years for objection; the policy gives no period for erasure, so it is kept.
    expect((await requests.get(objection)).redactedAt).toBeNull();
    expect((await requests.get(erasure)).redactedAt).toBeNull();
    expect((await requests.historyFor(email('ana@example.com'))).requests).toEqual([]);
    expect(await staff.page('/admin/retention')).toContain('data-request-log-due="0"');
    // The back office still shows the redacted request.
    expect(await staff.page(`/admin/requests/${access}`)).toContain('data-redacted=');

    portal.clock.advance(2 * 365 * DAY);
    const again = new Client(portal.base);
    await again.login(STAFF); // the earlier sign-in has long expired
    expect(await again.page('/admin/retention')).toContain('data-request-log-due="2"');
    const later = await again.post('/admin/retention/sweep', {});
    expect(later.status).toBe(303);
    expect(await again.page(later.headers.get('location')!)).toContain('Request log: 2 requests redacted');
    expect((await requests.get(objection)).redactedAt).not.toBeNull();
    expect((await requests.get(erasure)).redactedAt).toBeNull();
  });

  it('takes its periods from the policy: one year for access and rectification, three for objection, none otherwise', () => {
    const dueAt = requestLogDueAt(seedPolicy);
    const closedAt = new Date('2024-02-29T15:00:00Z');
    const receivedAt = new Date('2024-02-01T08:00:00Z');
    const due = (right: string) =>
      dueAt({ id: 'r', right: right as never, status: 'completed', receivedAt, closedAt })?.toISOString() ??
      null;
    // "P after D" is due at 00:00 in Paris on D + P (29 Feb + 1 year = 28 Feb).
    expect(due('access')).toBe('2025-02-27T23:00:00.000Z');
    expect(due('rectification')).toBe('2025-02-27T23:00:00.000Z');
    expect(due('objection')).toBe('2027-02-27T23:00:00.000Z');
    for (const right of [
      'erasure',
      'portability',
      'restriction',
      'withdraw-consent',
      'post-mortem-directives',
    ])
      expect(due(right)).toBeNull();
    expect(
      dueAt({
        id: 'r',
        right: 'erasure',
        status: 'identity-pending',
        receivedAt,
        closedAt: null,
      })?.toISOString(),
    ).toBe('2024-03-02T08:00:00.000Z');
    expect(() => requestLogDueAt(seedPolicy, { unverifiedDays: 0 })).toThrow();
  });
});
