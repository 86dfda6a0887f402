import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, STAFF, fileAndVerify, startPortal } from './harness.js';
import type { Portal } from './harness.js';

/** Every form of the portal: path and its fields. */
const forms: Array<{ path: string; page: string; fields: string[]; staff?: boolean }> = [
  {
    path: '/cookies',
    page: '/cookies',
    fields: ['choice', 'return', 'purpose_audience-measurement', 'purpose_targeted-advertising'],
  },
  { path: '/rights/access', page: '/rights/access', fields: ['email', 'customerNumber'] },
  { path: '/rights/portability', page: '/rights/portability', fields: ['email', 'format'] },
  {
    path: '/rights/rectification',
    page: '/rights/rectification',
    fields: ['email', 'field', 'corrected', 'explanation'],
  },
  { path: '/erase', page: '/rights/erasure', fields: ['email', 'grounds', 'explanation'] },
  { path: '/rights/restriction', page: '/rights/restriction', fields: ['email', 'ground', 'explanation'] },
  { path: '/rights/objection', page: '/rights/objection', fields: ['email', 'kind', 'grounds'] },
  { path: '/rights/withdraw-consent', page: '/rights/withdraw-consent', fields: ['email', 'purposes'] },
  {
    path: '/rights/post-mortem-directives',
    page: '/rights/post-mortem-directives',
    fields: ['email', 'kind', 'instructions', 'executorName', 'executorEmail'],
  },
  { path: '/rights/verify', page: '/rights', fields: ['submission', 'code', 'token'] },
  { path: '/withdraw', page: '/consent', fields: [] },
  { path: '/admin/login', page: '/admin/login', fields: ['email', 'password', 'next'] },
  { path: '/admin/staff', page: '/admin/staff', fields: ['email', 'name', 'role', 'password'], staff: true },
  // `:request` is a real, verified request (see beforeAll): with an id that does not exist the
  // route answers 404 before it reads the form, and the fuzzing would test nothing.
  { path: '/admin/requests/:request/deny', page: '/admin/requests', fields: ['reason'], staff: true },
  {
    path: '/admin/requests/:request/extend',
    page: '/admin/requests',
    fields: ['months', 'reasons'],
    staff: true,
  },
];

describe.each(testEngines())('hostile input on $engine', (engine) => {
  let portal: Portal;
  let requestId: string;
  beforeAll(async () => {
    portal = await startPortal(
      engine,
      { rateLimits: { intake: 100_000, verify: 100_000, login: 100_000, loginAddress: 100_000 } },
      { seed: false },
    );
    requestId = await fileAndVerify(portal, new Client(portal.base), 'access', { email: 'fuzz@example.com' });
  });
  afterAll(async () => {
    await portal?.close();
  });

  it('refuses cross-site POSTs to /erase and /withdraw without a token or with a bad Origin (403)', async () => {
    const visitor = new Client(portal.base);
    await visitor.page('/rights/erasure');
    for (const path of ['/erase', '/withdraw']) {
      expect((await visitor.post(path, { email: 'ada@example.com' }, { csrf: null })).status).toBe(403);
      expect(
        (await visitor.post(path, { email: 'ada@example.com' }, { origin: 'https://evil.example' })).status,
      ).toBe(403);
      expect((await visitor.post(path, { email: 'ada@example.com' }, { csrf: 'forged-token' })).status).toBe(
        403,
      );
      expect(
        (
          await visitor.post(
            path,
            { email: 'ada@example.com' },
            { origin: null, headers: { referer: 'https://evil.example/x' } },
          )
        ).status,
      ).toBe(403);
    }
    // The same form with the token and no Origin (old browsers) is accepted.
    expect((await visitor.post('/erase', { email: 'ada@example.com' }, { origin: null })).status).toBe(303);
  });

  it('answers GET /erase and GET /withdraw with 405: GET never mutates', async () => {
    for (const path of ['/erase', '/withdraw']) {
      const response = await fetch(portal.base + path);
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('POST');
    }
  });

  it('gives the same answer for a wrong password of a known account and for an unknown account', async () => {
    const a = new Client(portal.base);
    await a.page('/admin/login');
    const known = await a.post('/admin/login', { email: STAFF.email, password: 'wrong password here' });
    const unknown = await a.post('/admin/login', {
      email: 'ghost@example.com',
      password: 'wrong password here',
    });
    expect(known.status).toBe(401);
    expect(unknown.status).toBe(401);
    const strip = (text: string) => text.replace(/value="[^"]*"/g, '');
    expect(strip(await known.text())).toBe(strip(await unknown.text()));
  });

  it('keeps staff pages behind login and admin pages behind the admin role', async () => {
    const anonymous = new Client(portal.base);
    const response = await anonymous.get('/admin/requests');
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toMatch(/^\/admin\/login/);
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    expect((await officer.get('/admin/staff')).status).toBe(403);
    // The outbox (every mail sent, one-time codes included) and the audit trail are for admins.
    for (const path of ['/admin/outbox', '/admin/audit']) {
      const refused = await officer.get(path);
      expect(refused.status, path).toBe(403);
      expect(await refused.text()).toContain('Your role does not allow this action.');
    }
    const dashboard = await officer.page('/admin');
    expect(dashboard).toContain('href="/admin/requests"');
    for (const path of ['/admin/outbox', '/admin/audit', '/admin/staff']) {
      expect(dashboard).not.toContain(`href="${path}"`);
    }
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    expect((await admin.get('/admin/staff')).status).toBe(200);
    for (const path of ['/admin/outbox', '/admin/audit']) {
      expect((await admin.get(path)).status, path).toBe(200);
    }
    expect(await admin.page('/admin')).toContain('href="/admin/outbox"');
    expect(await (await admin.get('/admin/record')).text()).toContain('Record of processing activities');
  });

  it('rotates the session id on login and ends the session on logout', async () => {
    const staff = new Client(portal.base);
    await staff.page('/admin/login');
    const before = staff.cookies.get('pk_session');
    await staff.post('/admin/login', STAFF);
    const after = staff.cookies.get('pk_session');
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    await staff.page('/admin');
    await staff.post('/admin/logout', {});
    const old = new Client(portal.base);
    old.cookies.set('pk_session', after!);
    expect((await old.get('/admin')).status).toBe(303);
  });

  it('turns fuzzed form input into 4xx answers, never a 500', async () => {
    const visitor = new Client(portal.base);
    const staff = new Client(portal.base);
    await staff.login(ADMIN);
    const value = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'grapheme', maxLength: 50 }),
      fc.constantFrom(
        '',
        ' ',
        'accept-all',
        'save',
        '../../etc/passwd',
        '//evil.example',
        '<script>',
        "' OR 1=1 --",
        'ada@example.com',
        '=cmd|/C calc',
        '\u0000',
        'ａｄａ@example.com',
      ),
      fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...forms),
        fc.dictionary(fc.constantFrom('x', 'choice', 'email', 'kind'), value),
        fc.array(value, { minLength: 3, maxLength: 5 }),
        async (form, extra, values) => {
          const client = form.staff ? staff : visitor;
          await client.page(form.page);
          const body: Record<string, string | string[]> = { ...extra };
          form.fields.forEach((field, i) => {
            body[field] = values[i % values.length]!;
          });
          const response = await client.post(form.path.replace(':request', requestId), body);
          await response.arrayBuffer();
          expect(response.status, `${form.path} ${JSON.stringify(body)}`).toBeLessThan(500);
        },
      ),
      { numRuns: engine.engine === 'sqlite' ? 150 : 60 },
    );
    expect(portal.errors).toEqual([]);
    // The fuzzed deny and extend forms reached a real request, which still answers sensibly.
    await staff.page(`/admin/requests/${requestId}`);
    expect(
      (await staff.post(`/admin/requests/${requestId}/extend`, { months: '1', reasons: '' })).status,
    ).toBe(400);
  });

  it('refuses with 400, filing nothing: an address with a control character, a directive naming half an executor or an executor whose address is none', async () => {
    const visitor = new Client(portal.base);
    const filed = async () =>
      (await portal.t.db.selectFrom('privacykit_requests_requests').select('id').execute()).length;
    const before = await filed();
    const mails = portal.mail.length;
    const directive = { email: 'dora@example.com', kind: 'particular', instructions: 'Close my account' };
    const cases: Array<[string, Record<string, string>, string]> = [
      ['/rights/access', { email: 'victim\u0000x@example.org' }, 'enter a valid email address'],
      ['/rights/access', { email: 'victim\u0007@example.org' }, 'enter a valid email address'],
      // Before, the name was dropped without a word and the directive filed with no executor.
      ['/rights/post-mortem-directives', { ...directive, executorName: 'Bob Smith' }, 'give both'],
      ['/rights/post-mortem-directives', { ...directive, executorEmail: 'bob@example.com' }, 'give both'],
      // Before, stored as the executor's address, which nobody could then prove to act.
      [
        '/rights/post-mortem-directives',
        { ...directive, executorName: 'Bob Smith', executorEmail: 'not-an-address' },
        'valid email address for the person you name',
      ],
    ];
    for (const [path, body, message] of cases) {
      await visitor.page(path);
      const response = await visitor.post(path, body);
      expect(response.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(await response.text()).toContain(message);
    }
    expect(await filed()).toBe(before);
    expect(portal.mail.length).toBe(mails);
    // Both halves given: filed, with its executor.
    await visitor.page('/rights/post-mortem-directives');
    const complete = await visitor.post('/rights/post-mortem-directives', {
      ...directive,
      executorName: 'Bob Smith',
      executorEmail: 'bob@example.com',
    });
    expect(complete.status).toBe(303);
    expect(await filed()).toBe(before + 1);
  });
});

describe('rate limits', () => {
  it('throttles staff login attempts (S02)', async () => {
    const portal = await startPortal(testEngines()[0]!, { rateLimits: { login: 3 } }, { seed: false });
    try {
      const client = new Client(portal.base);
      await client.page('/admin/login');
      const statuses: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        statuses.push(
          (await client.post('/admin/login', { email: STAFF.email, password: `guess ${i}` })).status,
        );
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      // Even the right password is refused while throttled.
      expect((await client.post('/admin/login', STAFF)).status).toBe(429);
      // The same account written another way (padding, case) is the same count, not a fresh one.
      for (const email of [` ${STAFF.email}`, `${STAFF.email}\t`, STAFF.email.toUpperCase()]) {
        expect((await client.post('/admin/login', { email, password: 'another guess' })).status).toBe(429);
        expect((await client.post('/admin/login', { ...STAFF, email })).status).toBe(429);
      }
    } finally {
      await portal.close();
    }
  });

  it('throttles wrong current passwords on /admin/password like sign-ins', async () => {
    const portal = await startPortal(testEngines()[0]!, { rateLimits: { login: 3 } }, { seed: false });
    try {
      const client = new Client(portal.base);
      await client.login(STAFF);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        await client.page('/admin/password');
        const next = 'a brand new passphrase';
        statuses.push(
          (await client.post('/admin/password', { current: `guess ${i}`, password: next, confirm: next }))
            .status,
        );
      }
      // Before, a signed-in session could guess the password without limit.
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
    } finally {
      await portal.close();
    }
  });

  it('throttles failed logins per account across addresses, and not the owner signing in (S02, ASVS 2.2.1)', async () => {
    const portal = await startPortal(
      testEngines()[0]!,
      { trustProxy: 1, rateLimits: { login: 1000, loginAccount: 4 } },
      { seed: false },
    );
    try {
      const from = async (ip: string) => {
        const client = new Client(portal.base, { 'x-forwarded-for': ip });
        await client.page('/admin/login');
        return client;
      };
      // The owner signs in many times: successes use up nothing.
      for (let i = 0; i < 6; i += 1)
        expect((await (await from('198.51.100.1')).login(STAFF)).status).toBe(303);
      // Four guesses, each from another address, then the account refuses everyone for the hour.
      const guesses: number[] = [];
      for (let i = 0; i < 6; i += 1) {
        const client = await from(`203.0.113.${i + 10}`);
        guesses.push(
          (
            await client.post('/admin/login', {
              email: ` ${STAFF.email.toUpperCase()}`,
              password: `guess ${i}`,
            })
          ).status,
        );
      }
      expect(guesses).toEqual([401, 401, 401, 401, 429, 429]);
      expect((await (await from('198.51.100.2')).login(STAFF)).status).toBe(429);
      // Another account is not affected.
      const other = await from('203.0.113.99');
      expect((await other.post('/admin/login', { email: ADMIN.email, password: 'wrong' })).status).toBe(401);
      expect((await other.login(ADMIN)).status).toBe(303);
    } finally {
      await portal.close();
    }
  });

  it('throttles failed logins per address whatever the emails, and not other addresses (S02)', async () => {
    const portal = await startPortal(
      testEngines()[0]!,
      { trustProxy: 1, rateLimits: { login: 1000, loginAccount: 1000, loginAddress: 5 } },
      { seed: false },
    );
    try {
      const sprayer = new Client(portal.base, { 'x-forwarded-for': '203.0.113.7' });
      await sprayer.page('/admin/login');
      const statuses: number[] = [];
      for (let i = 0; i < 8; i += 1) {
        statuses.push(
          (await sprayer.post('/admin/login', { email: `spray-${i}@example.net`, password: 'guess' })).status,
        );
      }
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
      const limited = await sprayer.post('/admin/login', STAFF);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      // Staff signing in from elsewhere are not affected.
      const office = new Client(portal.base, { 'x-forwarded-for': '198.51.100.20' });
      expect((await office.login(STAFF)).status).toBe(303);
    } finally {
      await portal.close();
    }
  });

  it('runs a bounded number of password hashes at once; a flood past the queue gets 503 with Retry-After', async () => {
    const portal = await startPortal(
      testEngines()[0]!,
      {
        // Each hash takes a while at this cost, so the flood's sign-ins overlap.
        staffPasswordCost: 2 ** 15,
        trustProxy: 1,
        rateLimits: { login: 1000, loginAccount: 1000, loginAddress: 1000 },
        signInConcurrency: { running: 1, waiting: 2 },
      },
      { seed: false },
    );
    try {
      // Every client has its sign-in form first; then all twelve post at once (a page fetched
      // and posted per client let a loaded machine spread the posts out until none overlapped).
      const clients = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const client = new Client(portal.base, { 'x-forwarded-for': `203.0.113.${i + 1}` });
          await client.page('/admin/login');
          return client;
        }),
      );
      const flood = await Promise.all(
        clients.map((client, i) =>
          client.post('/admin/login', { email: `nobody-${i}@example.net`, password: 'wrong' }),
        ),
      );
      const busy = flood.filter((response) => response.status === 503);
      expect(busy.length).toBeGreaterThan(0);
      expect(busy.every((response) => Number(response.headers.get('retry-after')) > 0)).toBe(true);
      expect(flood.every((response) => response.status === 401 || response.status === 503)).toBe(true);
      // Once it has passed, staff sign in as usual.
      const officer = new Client(portal.base, { 'x-forwarded-for': '198.51.100.30' });
      expect((await officer.login(STAFF)).status).toBe(303);
      expect(portal.errors).toEqual([]);
    } finally {
      await portal.close();
    }
  });

  it('throttles request intake and code guessing (S02, hostile cases 14–15)', async () => {
    const portal = await startPortal(
      testEngines()[0]!,
      { rateLimits: { intake: 2, verify: 3 } },
      { seed: false },
    );
    try {
      const client = new Client(portal.base);
      await client.page('/rights/access');
      const intake: number[] = [];
      for (let i = 0; i < 3; i += 1)
        intake.push((await client.post('/rights/access', { email: `p${i}@example.com` })).status);
      expect(intake).toEqual([303, 303, 429]);
      const guesses: number[] = [];
      for (let i = 0; i < 4; i += 1)
        guesses.push(
          (await client.post('/rights/verify', { submission: 'x'.repeat(24), code: '123456' })).status,
        );
      expect(guesses.at(-1)).toBe(429);
    } finally {
      await portal.close();
    }
  });
});

describe('staff sessions', () => {
  it('serves every back-office page, the sign-in page included, with Cache-Control: no-store', async () => {
    const portal = await startPortal(testEngines()[0]!, {}, { seed: false });
    try {
      const anonymous = new Client(portal.base);
      expect((await anonymous.get('/admin/login')).headers.get('cache-control')).toBe('no-store');
      const admin = new Client(portal.base);
      await admin.login(ADMIN);
      for (const path of ['/admin', '/admin/requests', '/admin/outbox', '/admin/audit', '/admin/staff']) {
        const response = await admin.get(path);
        expect(response.status, path).toBe(200);
        expect(response.headers.get('cache-control'), path).toBe('no-store');
      }
      // Error pages of the back office too (they may echo what was asked for).
      expect((await admin.get('/admin/requests/no-such-request')).headers.get('cache-control')).toBe(
        'no-store',
      );
    } finally {
      await portal.close();
    }
  });

  it('refuses a second account for an email, whatever its case and however fast the two submits come, with 409 not 500', async () => {
    const portal = await startPortal(testEngines()[0]!, {}, { seed: false });
    try {
      const admin = new Client(portal.base);
      await admin.login(ADMIN);
      await admin.page('/admin/staff');
      const account = {
        email: 'Twice@Example.com',
        name: 'Twice',
        role: 'privacy-officer',
        password: 'a long passphrase here',
      };
      // A double submit: both pass the form check before either is stored.
      const statuses = (
        await Promise.all([admin.post('/admin/staff', account), admin.post('/admin/staff', account)])
      ).map((response) => response.status);
      expect(statuses.sort()).toEqual([303, 409]);
      // The same address in other capitals is the same account.
      const again = await admin.post('/admin/staff', { ...account, email: 'twice@example.COM' });
      expect(again.status).toBe(409);
      expect(await again.text()).toContain('That email already has an account.');
    } finally {
      await portal.close();
    }
  });

  it('behind a TLS-terminating proxy, tells browsers to use HTTPS only (HSTS), as it marks its cookies Secure', async () => {
    const portal = await startPortal(testEngines()[0]!, { trustProxy: 1 }, { seed: false });
    try {
      const overTls = await fetch(`${portal.base}/privacy`, { headers: { 'X-Forwarded-Proto': 'https' } });
      expect(overTls.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
      const plain = await fetch(`${portal.base}/privacy`);
      expect(plain.headers.get('strict-transport-security')).toBeNull();
    } finally {
      await portal.close();
    }
  });

  it('keeps no usable session id in its database: a copy of the sessions table signs no one in', async () => {
    const portal = await startPortal(testEngines()[0]!, {}, { seed: false });
    try {
      const admin = new Client(portal.base);
      await admin.login(ADMIN);
      // express-session's cookie: `s:<id>.<signature>`, URL-encoded.
      const cookie = decodeURIComponent(admin.cookies.get('pk_session') ?? '');
      const sid = /^s:([^.]+)\./.exec(cookie)?.[1];
      expect(sid).toBeTruthy();
      const keys = (await portal.t.db.selectFrom('privacykit_portal_sessions').select('sid').execute()).map(
        (row) => row.sid as string,
      );
      expect(keys).not.toContain(sid);
      expect(keys).toContain(
        createHash('sha256')
          .update(sid as string)
          .digest('hex'),
      );
      expect((await admin.get('/admin')).status).toBe(200);
    } finally {
      await portal.close();
    }
  });

  it('never lets a page be framed, not even by this site, whichever header the browser reads', async () => {
    const portal = await startPortal(testEngines()[0]!, {}, { seed: false });
    try {
      for (const path of ['/admin/login', '/privacy']) {
        const response = await fetch(portal.base + path);
        expect(response.headers.get('content-security-policy'), path).toContain("frame-ancestors 'none'");
        expect(response.headers.get('x-frame-options'), path).toBe('DENY');
      }
    } finally {
      await portal.close();
    }
  });

  it('ends a staff sign-in after its absolute lifetime, however active the session (ASVS 7.3.2)', async () => {
    const portal = await startPortal(testEngines()[0]!, { staffSessionMaxMs: 8 * 3600_000 }, { seed: false });
    try {
      const officer = new Client(portal.base);
      expect((await officer.login(STAFF)).status).toBe(303);
      // Used every hour: the idle timeout never ends it.
      for (let hour = 1; hour < 8; hour += 1) {
        portal.clock.advance(3600_000);
        expect((await officer.get('/admin/requests')).status, `hour ${hour}`).toBe(200);
      }
      portal.clock.advance(3600_000);
      const expired = await officer.get('/admin/requests');
      expect(expired.status).toBe(303);
      expect(expired.headers.get('location')).toMatch(/^\/admin\/login/);
      // A POST with the old session's form token is refused too, not performed.
      await officer.page('/admin/login');
      expect((await officer.post('/admin/retention/sweep', {})).status).toBe(401);
      // Signing in again starts a new lifetime.
      expect((await officer.login(STAFF)).status).toBe(303);
      expect((await officer.get('/admin/requests')).status).toBe(200);
    } finally {
      await portal.close();
    }
  });
});
