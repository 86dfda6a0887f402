import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  Client,
  STAFF,
  codeFrom,
  fileAndVerify,
  releaseExport,
  startPortal,
  submissionOf,
  verifiedRequestId,
  waitFor,
} from './harness.js';
import type { Portal } from './harness.js';
import { unzip } from './zip.js';

/** The second pair of eyes: another staff member releases the export the first one ran. */
async function release(portal: Portal, requestId: string): Promise<Response> {
  const second = new Client(portal.base);
  await second.login(ADMIN);
  await second.page(`/admin/requests/${requestId}`);
  return releaseExport(second, requestId);
}

describe.each(testEngines())('rights requests over HTTP on $engine', (engine) => {
  let portal: Portal;
  beforeAll(async () => {
    portal = await startPortal(engine, { rateLimits: { intake: 1000, verify: 1000, login: 5 } });
  });
  afterAll(async () => {
    await portal?.close();
  });

  it('answers intake the same way for a known and an unknown address (no enumeration)', async () => {
    const visitor = new Client(portal.base);
    await visitor.page('/rights/access');
    const known = await visitor.post('/rights/access', { email: 'katherine@example.com' });
    const unknown = await visitor.post('/rights/access', { email: 'nobody-here@example.org' });
    expect(known.status).toBe(303);
    expect(unknown.status).toBe(303);
    const pageOf = async (response: Response) =>
      (await visitor.page(response.headers.get('location')!)).replace(/value="[^"]*"/g, '');
    expect(await pageOf(known)).toBe(await pageOf(unknown));
  });

  it('runs an access request end to end: code by mail, staff approval, single-use session-bound download', async () => {
    const visitor = new Client(portal.base);
    const requestId = await fileAndVerify(portal, visitor, 'access', { email: 'Ada@example.com' });
    const status = await visitor.page(`/rights/requests/${requestId}`);
    expect(status).toContain('data-status="verified"');

    // Another browser cannot see the request, nor ask for its download (hostile case 12).
    const stranger = new Client(portal.base);
    await stranger.page('/rights');
    expect((await stranger.get(`/rights/requests/${requestId}`)).status).toBe(404);
    expect((await stranger.post(`/rights/requests/${requestId}/download`, {})).status).toBe(404);

    const staff = new Client(portal.base);
    expect((await staff.login(STAFF)).status).toBe(303);
    const queue = await staff.page('/admin/requests');
    expect(queue).toContain(requestId);
    expect(queue).toMatch(/days left|due in/);
    await staff.page(`/admin/requests/${requestId}`);
    expect((await staff.post(`/admin/requests/${requestId}/approve`, {})).status).toBe(303);
    expect((await staff.post(`/admin/requests/${requestId}/export`, {})).status).toBe(303);
    // Not released yet: the visitor has nothing to download (four eyes).
    expect(await visitor.page(`/rights/requests/${requestId}`)).not.toContain('Download my data');
    expect((await visitor.post(`/rights/requests/${requestId}/download`, {})).status).toBe(404);
    expect((await release(portal, requestId)).status).toBe(303);
    const detail = await staff.page(`/admin/requests/${requestId}`);
    expect(detail).toContain(`staff:${STAFF.email}`);
    expect(detail).toContain('data-status="completed"');
    expect(portal.mail.at(-1)!.to).toBe('ada@example.com');

    // The visitor's own pages show their request and consents: never kept in a cache.
    expect((await visitor.get(`/rights/requests/${requestId}`)).headers.get('cache-control')).toBe(
      'no-store',
    );
    expect((await visitor.get('/consent')).headers.get('cache-control')).toBe('no-store');
    await visitor.page(`/rights/requests/${requestId}`);
    const link = await visitor.post(`/rights/requests/${requestId}/download`, {});
    expect(link.status).toBe(303);
    const url = link.headers.get('location')!;

    // The link is bound to the visitor's session: useless in another browser (hostile case 13).
    expect((await stranger.get(url)).status).toBe(404);

    const download = await visitor.get(url);
    expect(download.status).toBe(200);
    expect(download.headers.get('cache-control')).toBe('no-store');
    expect(download.headers.get('referrer-policy')).toBe('no-referrer');
    expect(download.headers.get('content-disposition')).toMatch(/^attachment;/);
    const files = await unzip(Buffer.from(await download.arrayBuffer()));
    const customers = files.get('data/customers.json')?.toString('utf8') ?? '';
    expect(customers).toContain('Ada Lovelace');
    expect(customers).not.toContain('Grace Hopper');
    expect(files.get('data/invoices.json')?.toString('utf8')).toContain('ada@example.com');

    // Single use.
    expect((await visitor.get(url)).status).toBe(410);
  });

  it('refuses an expired download link', async () => {
    const visitor = new Client(portal.base);
    const requestId = await fileAndVerify(portal, visitor, 'access', { email: 'grace@example.com' });
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    await staff.page(`/admin/requests/${requestId}`);
    await staff.post(`/admin/requests/${requestId}/approve`, {});
    await staff.post(`/admin/requests/${requestId}/export`, {});
    await release(portal, requestId);
    // The visitor's own pages show their request and consents: never kept in a cache.
    expect((await visitor.get(`/rights/requests/${requestId}`)).headers.get('cache-control')).toBe(
      'no-store',
    );
    expect((await visitor.get('/consent')).headers.get('cache-control')).toBe('no-store');
    await visitor.page(`/rights/requests/${requestId}`);
    const link = await visitor.post(`/rights/requests/${requestId}/download`, {});
    portal.clock.advance(16 * 60_000);
    const response = await visitor.get(link.headers.get('location')!);
    expect(response.status).toBe(410);
  });

  it('without an origin for links, the mail offers the token to paste, not a "link" that is none, and pasting it confirms', async () => {
    const visitor = new Client(portal.base);
    await visitor.page('/rights/access');
    const before = portal.mail.length;
    expect((await visitor.post('/rights/access', { email: 'token-only@example.org' })).status).toBe(303);
    await waitFor(() => portal.mail.length > before);
    const text = portal.mail.slice(before).find((m) => m.to === 'token-only@example.org')!.text;
    expect(text).not.toMatch(/link: /);
    const token =
      /paste this confirmation token on the "Confirm your request" page of our privacy centre \(\/rights\/verify\): (\S+)$/m.exec(
        text,
      )![1]!;
    // In another browser, as the mail says.
    const elsewhere = new Client(portal.base);
    expect(await elsewhere.page('/rights/verify')).toContain('name="token"');
    expect(verifiedRequestId(await elsewhere.post('/rights/verify', { token }))).toBeTruthy();
  });

  it('refuses a wrong code without verifying, and the right code in another browser', async () => {
    const visitor = new Client(portal.base);
    await visitor.page('/rights/access');
    const before = portal.mail.length;
    const submitted = await visitor.post('/rights/access', { email: 'alan@example.com' });
    const location = submitted.headers.get('location')!;
    await visitor.page(location);
    const submission = submissionOf(portal, location);
    const wrong = await visitor.post('/rights/verify', { submission, code: '000000' });
    expect(wrong.status).toBe(400);
    const mine = () => portal.mail.slice(before).filter((mail) => mail.to === 'alan@example.com');
    await waitFor(() => mine().length > 0);
    const code = codeFrom(mine()[0]!.text);
    // The page's address is no use elsewhere: another browser gets nowhere even with the code.
    const stranger = new Client(portal.base);
    await stranger.page(location);
    const elsewhere = await stranger.post('/rights/verify', { submission, code });
    expect(elsewhere.status).toBe(400);
    expect(await elsewhere.text()).toContain('The code or link is not valid for this request.');
    // Neither attempt verified the request: the code still does, in the browser that filed it.
    const requestId = verifiedRequestId(await visitor.post('/rights/verify', { submission, code }));
    expect((await visitor.get(`/rights/requests/${requestId}`)).status).toBe(200);
    expect((await stranger.get(`/rights/requests/${requestId}`)).status).toBe(404);
  });

  it('answers a duplicate from another browser with a reference of its own, never the open request id', async () => {
    const grace = new Client(portal.base);
    await grace.page('/rights/access');
    const before = portal.mail.length;
    const first = (await grace.post('/rights/access', { email: 'grace@example.com' })).headers.get(
      'location',
    )!;
    const mallory = new Client(portal.base);
    await mallory.page('/rights/access');
    const second = (await mallory.post('/rights/access', { email: 'grace@example.com' })).headers.get(
      'location',
    )!;
    expect(submissionOf(portal, second)).not.toBe(submissionOf(portal, first));
    const mine = () => portal.mail.slice(before).filter((mail) => mail.to === 'grace@example.com');
    await waitFor(() => mine().length > 0);
    const requestId = verifiedRequestId(
      await grace.post('/rights/verify', {
        submission: submissionOf(portal, first),
        code: codeFrom(mine()[0]!.text),
      }),
    );
    // One request, and nothing Mallory was shown names it.
    expect(second).not.toContain(requestId);
    expect(await mallory.page(second)).not.toContain(requestId);
    expect((await mallory.get(`/rights/requests/${requestId}`)).status).toBe(404);
  });

  it('wrong codes through a stranger’s duplicate reference never lock the subject’s pending request', async () => {
    const grace = new Client(portal.base);
    await grace.page('/rights/access');
    const before = portal.mail.length;
    const mine = (await grace.post('/rights/access', { email: 'hopper@example.com' })).headers.get(
      'location',
    )!;
    const mails = () => portal.mail.slice(before).filter((mail) => mail.to === 'hopper@example.com');
    await waitFor(() => mails().length > 0);
    const code = codeFrom(mails()[0]!.text);
    const wrong = code === '000000' ? '111111' : '000000';
    // Mallory submits Grace's address too, and guesses through the reference she was given.
    const mallory = new Client(portal.base);
    await mallory.page('/rights/access');
    const theirs = (await mallory.post('/rights/access', { email: 'hopper@example.com' })).headers.get(
      'location',
    )!;
    await mallory.page(theirs);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      statuses.push(
        (await mallory.post('/rights/verify', { submission: submissionOf(portal, theirs), code: wrong }))
          .status,
      );
    }
    expect(statuses).toEqual([400, 400, 400, 400, 429, 429]);
    // Her reference is locked, even for the right code; Grace's request is not.
    const locked = await mallory.post('/rights/verify', { submission: submissionOf(portal, theirs), code });
    expect(locked.status).toBe(429);
    const requestId = verifiedRequestId(
      await grace.post('/rights/verify', { submission: submissionOf(portal, mine), code }),
    );
    expect((await grace.get(`/rights/requests/${requestId}`)).status).toBe(200);
    expect((await mallory.get(`/rights/requests/${requestId}`)).status).toBe(404);
  });

  it('erases on request, keeping only the invoices the law requires; a later access export shows just those', async () => {
    const visitor = new Client(portal.base);
    const erasureId = await fileAndVerify(portal, visitor, 'erasure', {
      email: 'edsger@example.com',
      grounds: 'no-longer-necessary',
    });
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    await staff.page(`/admin/requests/${erasureId}`);
    await staff.post(`/admin/requests/${erasureId}/approve`, {});
    const detail = await staff.page(`/admin/requests/${erasureId}`);
    expect(detail).toContain('Preview the erasure');
    const planned = await staff.post(`/admin/requests/${erasureId}/erasure`, {});
    expect(planned.status).toBe(303);
    const planUrl = planned.headers.get('location')!;
    const preview = await staff.page(planUrl);
    expect(preview).toContain('data-erasure-status="planned"');
    expect(preview).toMatch(/invoices<\/td><td>\d+<\/td>[\s\S]*Art 17\(3\)\(b\)/);
    // Nothing changed yet.
    const before = await portal.t.db
      .selectFrom('customers')
      .select('id')
      .where('email', '=', 'edsger@example.com')
      .execute();
    expect(before).toHaveLength(1);
    expect((await staff.post(`${planUrl}/request-approval`, {})).status).toBe(303);
    const second = new Client(portal.base);
    await second.login(ADMIN);
    await second.page(planUrl);
    expect((await second.post(`${planUrl}/execute`, {})).status).toBe(303);
    const result = await staff.page(planUrl);
    expect(result).toContain('data-report-status="partial"');
    expect(result).toContain('data-verified="true"');
    expect(await staff.page(`/admin/requests/${erasureId}`)).toContain('data-status="completed"');

    const again = new Client(portal.base);
    const accessId = await fileAndVerify(portal, again, 'access', { email: 'edsger@example.com' });
    await staff.page(`/admin/requests/${accessId}`);
    await staff.post(`/admin/requests/${accessId}/approve`, {});
    await staff.post(`/admin/requests/${accessId}/export`, {});
    await release(portal, accessId);
    await again.page(`/rights/requests/${accessId}`);
    const link = await again.post(`/rights/requests/${accessId}/download`, {});
    const files = await unzip(
      Buffer.from(await (await again.get(link.headers.get('location')!)).arrayBuffer()),
    );
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8')) as {
      tables: { name: string; rows: number }[];
    };
    const withRows = manifest.tables.filter((table) => table.rows > 0).map((table) => table.name);
    expect(withRows).toEqual(['invoices']);
  });
});

describe('links in mail', () => {
  it('point at the configured origin for links when the public origin is unset', async () => {
    const portal = await startPortal(
      testEngines()[0]!,
      { linkOrigin: 'http://127.0.0.1:3000' },
      { seed: false },
    );
    try {
      const visitor = new Client(portal.base);
      await visitor.page('/rights/access');
      expect((await visitor.post('/rights/access', { email: 'linked@example.org' })).status).toBe(303);
      await waitFor(() => portal.mail.length > 0);
      expect(portal.mail[0]!.text).toMatch(
        /^Or confirm with this link: http:\/\/127\.0\.0\.1:3000\/rights\/verify\?token=\S+$/m,
      );
    } finally {
      await portal.close();
    }
  });
});
