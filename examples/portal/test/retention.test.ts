import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, STAFF, startPortal } from './harness.js';
import type { Portal } from './harness.js';

describe.each(testEngines())('retention in the back office on $engine', (engine) => {
  let portal: Portal;
  beforeAll(async () => {
    portal = await startPortal(engine);
  });
  afterAll(async () => {
    await portal?.close();
  });

  it('shows the schedule in words and a dry run, holds a subject, sweeps with a verifying certificate', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    const page = await staff.page('/admin/retention');
    expect(page).toContain('deleted 10 years after the invoice date');
    // Edsger's contract ended more than five years ago: his client record is due for deletion.
    expect(page).toMatch(/data-due="customer-relationship">[1-9]/);

    expect(
      (
        await staff.post('/admin/retention/holds', {
          kind: 'subject',
          value: 'edsger@example.com',
          reason: 'claim 2025-17',
        })
      ).status,
    ).toBe(303);
    const emailsBefore = await portal.t.db.selectFrom('customers').select('email').execute();
    expect(emailsBefore.map((row) => row.email)).toContain('grace@example.com');
    const swept = await staff.post('/admin/retention/sweep', {});
    expect(swept.status).toBe(303);
    const run = await staff.page(swept.headers.get('location')!);
    expect(run).toContain('data-certificate-valid="true"');
    // The hold kept Edsger's client record.
    const edsger = await portal.t.db
      .selectFrom('customers')
      .select('id')
      .where('email', '=', 'edsger@example.com')
      .execute();
    expect(edsger).toHaveLength(1);
    // The sweep did dispose of what no hold covers: Grace's contract ended 70 months ago (the
    // rule keeps a client record 5 years after the contract ends), so her record and its
    // children are gone, while Alan (8 months ago) and current clients stay.
    const remaining = await portal.t.db.selectFrom('customers').select('email').orderBy('email').execute();
    const emails = remaining.map((row) => row.email as string);
    expect(emails).not.toContain('grace@example.com');
    expect(emails).toEqual(expect.arrayContaining(['alan@example.com', 'edsger@example.com']));
    expect(await staff.page('/admin/retention')).toContain('claim 2025-17');
  });

  it('shows a row whose date cannot be read in the backlog, and the sweep leaves it without failing', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    const customer = await portal.t.db
      .selectFrom('customers')
      .select(['id', 'tenant'])
      .executeTakeFirstOrThrow();
    await portal.t.db
      .insertInto('logins')
      .values({
        id: 'bad-date-login',
        tenant: customer.tenant,
        customer_id: customer.id,
        at: '2020-01-15T10:00:00.000Z',
        recorded_on: '15/01/2020',
      })
      .execute();
    expect(await staff.page('/admin/retention')).toContain(
      'data-unreadable="traffic-data">1: bad-date-login</td>',
    );
    const swept = await staff.post('/admin/retention/sweep', {});
    expect(swept.status).toBe(303);
    expect(await staff.page(swept.headers.get('location')!)).toContain('data-certificate-valid="true"');
    const left = await portal.t.db
      .selectFrom('logins')
      .select('recorded_on')
      .where('id', '=', 'bad-date-login')
      .execute();
    expect(left).toEqual([{ recorded_on: '15/01/2020' }]);
  });
});
