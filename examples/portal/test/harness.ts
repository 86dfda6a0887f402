import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fixedClock } from '@privacykit/core';
import type { FixedClock } from '@privacykit/core';
import { createTestDatabase } from '@privacykit/core/testing';
import type { TestDatabase, TestEngine } from '@privacykit/core/testing';
import { createApp } from '../src/app.js';
import type { AppDeps } from '../src/app.js';
import { seedDemo } from '../src/demo/seed.js';
import type { MailMessage, Mailer } from '../src/mailer.js';
import { seedPolicy } from '../src/policy.js';
import { migratePortal } from '../src/setup.js';
import { createStaffDirectory } from '../src/staff.js';

export const STAFF = {
  email: 'officer@example.com',
  password: 'correct horse battery staple',
  name: 'Olive Officer',
};
export const ADMIN = { email: 'root@example.com', password: 'another long passphrase', name: 'Ada Admin' };

/** A portal on a fresh database of `engine`, listening on 127.0.0.1:0, with mail captured. */
export interface Portal {
  base: string;
  t: TestDatabase;
  clock: FixedClock;
  mail: MailMessage[];
  errors: unknown[];
  close(): Promise<void>;
}

/**
 * scrypt's N for the test portals' staff: every test signs in, and at the production cost (2^17,
 * about 0.8 s and 128 MiB a hash here) that alone took minutes. `src/staff.test.ts` checks the
 * production parameters themselves.
 */
export const TEST_PASSWORD_COST = 2 ** 12;

export async function startPortal(
  engine: TestEngine,
  /** Deps to replace; a function receives the portal's base URL (e.g. for `scanOrigins`). */
  overrides: Partial<AppDeps> | ((base: string) => Partial<AppDeps>) = {},
  options: { seed?: boolean; at?: string } = {},
): Promise<Portal> {
  const t = await createTestDatabase(engine);
  await migratePortal(t.db);
  const clock = fixedClock(options.at ?? '2025-03-10T09:00:00Z');
  if (options.seed !== false) await seedDemo({ db: t.db, tenant: seedPolicy.tenant, clock });
  const staff = createStaffDirectory({
    db: t.db,
    tenant: seedPolicy.tenant,
    clock,
    passwordCost: TEST_PASSWORD_COST,
  });
  await staff.create({ ...STAFF, role: 'privacy-officer' });
  await staff.create({ ...ADMIN, role: 'admin' });
  const mail: MailMessage[] = [];
  const errors: unknown[] = [];
  const mailer: Mailer = {
    async send(message) {
      mail.push(message);
    },
  };
  // Listen first so the app can be configured with its own address.
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    server.on(
      'request',
      createApp({
        db: t.db,
        policy: seedPolicy,
        clock,
        mailer,
        sessionSecret: 'test-secret',
        staffPasswordCost: TEST_PASSWORD_COST,
        logError: (error) => errors.push(error),
        ...(typeof overrides === 'function' ? overrides(base) : overrides),
      }),
    );
  } catch (error) {
    server.close();
    await t.db.destroy();
    await t.destroy();
    throw error;
  }
  return {
    base,
    t,
    clock,
    mail,
    errors,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      // pg's Pool.end() resolves before its sockets are closed; dropping the database at once
      // (WITH (FORCE)) then kills a closing client with an unhandled FATAL. Close first, wait, drop.
      await t.db.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await t.destroy();
    },
  };
}

/** A cookie-keeping HTTP client that reads the CSRF token from the last form it saw. */
export class Client {
  readonly cookies = new Map<string, string>();
  csrf = '';

  constructor(
    readonly base: string,
    readonly headers: Record<string, string> = {},
  ) {}

  private store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at).trim();
      const value = pair!.slice(at + 1).trim();
      const expired = attributes.some((a) => /max-age=0|expires=thu, 01 jan 1970/i.test(a.trim()));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  private cookieHeader(): Record<string, string> {
    return this.cookies.size
      ? { cookie: [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ') }
      : {};
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    const response = await fetch(this.base + path, {
      redirect: 'manual',
      headers: { ...this.headers, ...this.cookieHeader(), ...headers },
    });
    this.store(response);
    return response;
  }

  /** GET a page and keep its CSRF token; returns the HTML. */
  async page(path: string, headers: Record<string, string> = {}): Promise<string> {
    const response = await this.get(path, headers);
    const text = await response.text();
    const match = /name="_csrf" value="([^"]+)"/.exec(text);
    if (match) this.csrf = match[1]!;
    return text;
  }

  async post(
    path: string,
    form: Record<string, string | string[]>,
    options: { origin?: string | null; csrf?: string | null; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const body = new URLSearchParams();
    const token = options.csrf === undefined ? this.csrf : options.csrf;
    if (token !== null) body.append('_csrf', token);
    for (const [key, value] of Object.entries(form)) {
      for (const item of Array.isArray(value) ? value : [value]) body.append(key, item);
    }
    const origin = options.origin === undefined ? this.base : options.origin;
    const response = await fetch(this.base + path, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...this.headers,
        ...(origin === null ? {} : { origin }),
        ...this.cookieHeader(),
        ...options.headers,
      },
      body,
    });
    this.store(response);
    return response;
  }

  async login(who: { email: string; password: string }): Promise<Response> {
    await this.page('/admin/login');
    return this.post('/admin/login', { email: who.email, password: who.password });
  }

  /**
   * The first sign-in of an account another staff member created: signs in, then replaces the
   * password its creator chose (the back office allows nothing else before). Updates `who`.
   */
  async firstLogin(who: { email: string; password: string }): Promise<Response> {
    const signedIn = await this.login(who);
    if (signedIn.headers.get('location') !== '/admin/password') return signedIn;
    await this.page('/admin/password');
    const own = `${who.password} (own)`;
    const changed = await this.post('/admin/password', {
      current: who.password,
      password: own,
      confirm: own,
    });
    who.password = own;
    return changed;
  }
}

/**
 * Polls a back-office scan's page (the `Location` of `POST /admin/cookies/scan`) until the scan is
 * done or failed, and returns that page. Bounded by the test's timeout.
 */
export async function settledScan(client: Client, location: string): Promise<string> {
  for (;;) {
    const page = await client.page(location);
    const status = /data-scan-status="(\w+)"/.exec(page)?.[1];
    if (status === 'done' || status === 'failed') return page;
    if (status !== 'queued' && status !== 'running') throw new Error(`no scan status at ${location}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Releases the export waiting on a request's back-office page, as its form does: naming the
 * package the page shows (the form's `export` field, or the reviewer's download link when the
 * page shows no form).
 */
export async function releaseExport(client: Client, requestId: string): Promise<Response> {
  const page = await client.page(`/admin/requests/${requestId}`);
  const exportId = /data-inspect-export="([^"]+)"/.exec(page)?.[1] ?? '';
  return client.post(`/admin/requests/${requestId}/release`, { export: exportId });
}

/** The code in a confirmation mail. */
export function codeFrom(text: string): string {
  const match = /code: (\d{6,8})/.exec(text);
  if (!match) throw new Error(`no code in mail: ${text}`);
  return match[1]!;
}

/** Polls until `check` holds; throws after `ms`. */
export async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The opaque reference of a "check your inbox" page (`/rights/verify?submission=…`). */
export function submissionOf(portal: Portal | string, location: string): string {
  const base = typeof portal === 'string' ? portal : portal.base;
  const ref = new URL(location, base).searchParams.get('submission');
  if (!ref) throw new Error(`no submission reference in ${location}`);
  return ref;
}

/** The request id of the status page a confirmation redirects to (`/rights/requests/…`). */
export function verifiedRequestId(response: Response): string {
  const match = /^\/rights\/requests\/([A-Za-z0-9_-]+)$/.exec(response.headers.get('location') ?? '');
  if (response.status !== 303 || !match) {
    throw new Error(`not verified: ${response.status} → ${response.headers.get('location')}`);
  }
  return match[1]!;
}

/**
 * Files a rights request through its form as `visitor` and confirms it with the code mailed to
 * `form.email`, from the page the form led to. Returns the request id, which the portal shows only
 * once the request is verified.
 */
export async function fileAndVerify(
  portal: Portal,
  visitor: Client,
  right: string,
  form: Record<string, string | string[]>,
): Promise<string> {
  await visitor.page(`/rights/${right}`);
  const before = portal.mail.length;
  const submitted = await visitor.post(right === 'erasure' ? '/erase' : `/rights/${right}`, form);
  if (submitted.status !== 303) throw new Error(`filing ${right} answered ${submitted.status}`);
  const location = submitted.headers.get('location')!;
  await visitor.page(location);
  const to = String(form.email).trim().toLowerCase();
  const mine = () => portal.mail.slice(before).filter((mail) => mail.to.toLowerCase() === to);
  await waitFor(() => mine().length > 0);
  const code = codeFrom(mine().at(-1)!.text);
  const requestId = verifiedRequestId(
    await visitor.post('/rights/verify', { submission: submissionOf(portal, location), code }),
  );
  // As a browser follows the redirect: the verified session has a new id, and its forms new tokens.
  await visitor.page(`/rights/requests/${requestId}`);
  return requestId;
}
