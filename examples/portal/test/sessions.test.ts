import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fixedClock } from '@privacykit/core';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import { sha256Hex } from '@privacykit/core/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { seedPolicy } from '../src/policy.js';
import { migratePortal } from '../src/setup.js';
import { Client, startPortal, waitFor } from './harness.js';
import type { Portal } from './harness.js';

const count = async (portal: Portal | { t: Portal['t'] }, table: string) =>
  Number(
    (
      await portal.t.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

describe.each(testEngines())('sessions only when needed on $engine', (engine) => {
  let portal: Portal;
  beforeAll(async () => {
    portal = await startPortal(engine, { rateLimits: { intake: 1000 } }, { seed: false });
  });
  afterAll(async () => {
    await portal?.close();
  });

  it('stores no session for visitors who only read pages, forms and banner included', async () => {
    const before = await count(portal, 'privacykit_portal_sessions');
    for (let i = 0; i < 10; i += 1) {
      for (const path of ['/privacy', '/rights/access', '/newsletter', '/cookies', '/rights/check']) {
        const response = await fetch(portal.base + path);
        expect(response.status, path).toBe(200);
        expect(await response.text()).toMatch(/name="_csrf" value="[^"]+"/);
      }
    }
    // A visitor keeping the cookie and reading on stores nothing either.
    const reader = new Client(portal.base);
    for (const path of ['/privacy', '/consent', '/rights', '/privacy']) await reader.page(path);
    expect(await count(portal, 'privacykit_portal_sessions')).toBe(before);
  });

  it('still binds every form to its browser: the banner works, a token from elsewhere or without the cookie does not', async () => {
    const visitor = new Client(portal.base);
    await visitor.page('/privacy');
    const other = new Client(portal.base);
    await other.page('/privacy');
    expect((await visitor.post('/cookies', { choice: 'refuse-all' }, { csrf: other.csrf })).status).toBe(403);
    const cookieless = new Client(portal.base);
    expect((await cookieless.post('/cookies', { choice: 'refuse-all' }, { csrf: visitor.csrf })).status).toBe(
      403,
    );
    expect((await visitor.post('/cookies', { choice: 'refuse-all', return: '/privacy' })).status).toBe(303);
  });

  it('stores a session once something must be kept, under the id the browser already had', async () => {
    const before = await count(portal, 'privacykit_portal_sessions');
    const visitor = new Client(portal.base);
    await visitor.page('/newsletter');
    const cookie = decodeURIComponent(visitor.cookies.get('pk_session')!);
    const sid = /^s:([^.]+)\./.exec(cookie)![1]!;
    expect((await visitor.post('/newsletter', { email: 'someone@example.com', agree: 'yes' })).status).toBe(
      303,
    );
    const rows = await portal.t.db.selectFrom('privacykit_portal_sessions').select('sid').execute();
    expect(rows).toHaveLength(before + 1);
    expect(rows.map((row) => row.sid)).toContain(sha256Hex(sid));
    // The page's form token still works: the row took the id the token is bound to.
    const page = await visitor.page('/newsletter');
    expect(page).toContain('data-confirm');
    expect((await visitor.post('/newsletter/confirm', { code: '00000000' })).status).toBe(400);
  });
});

describe.each(testEngines())('housekeeping on $engine', (engine) => {
  it('purges expired sessions, spent return codes and old outbox mail on a timer started with the server, stopped when it closes', async () => {
    const t = await createTestDatabase(engine);
    const clock = fixedClock('2025-03-10T09:00:00Z');
    let server: Server | undefined;
    try {
      await migratePortal(t.db);
      const now = clock.now().getTime();
      const at = (ms: number) => new Date(now + ms).toISOString();
      await t.db
        .insertInto('privacykit_portal_sessions')
        .values([
          { sid: 'expired-1', data: '{"requestIds":["x"]}', expires_at: at(-60_000) },
          { sid: 'expired-2', data: '{"requestIds":["y"]}', expires_at: at(-1) },
          { sid: 'live', data: '{"requestIds":["z"]}', expires_at: at(30 * 60_000) },
        ])
        .execute();
      const code = (id: string, createdMs: number) => ({
        id,
        tenant: seedPolicy.tenant,
        request_id: 'r',
        code_hash: '0'.repeat(64),
        attempts: 0,
        created_at: at(createdMs),
        expires_at: at(createdMs + 10 * 60_000),
        consumed_at: null,
      });
      // Two hours old: past the hour the mail cap counts. Five minutes old: still counted, kept.
      await t.db
        .insertInto('privacykit_portal_return_codes')
        .values([code('old', -2 * 3600_000), code('recent', -5 * 60_000)])
        .execute();
      const mail = (id: string, sentMs: number) => ({
        id,
        tenant: seedPolicy.tenant,
        recipient: 'a@example.com',
        subject: 'code',
        body: 'Your confirmation code: 12345678',
        sent_at: at(sentMs),
      });
      await t.db
        .insertInto('privacykit_portal_outbox')
        .values([mail('week-old', -8 * 86_400_000), mail('today', -3600_000)])
        .execute();

      const app = createApp({
        db: t.db,
        policy: seedPolicy,
        clock,
        sessionSecret: 'test-secret',
        housekeepingIntervalMs: 50,
        logError: (error) => {
          throw error;
        },
      });
      expect(app.housekeeping.running).toBe(false);
      server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server!.once('listening', resolve));
      expect(app.housekeeping.running).toBe(true);
      const ids = async (table: string, column: string) =>
        (await t.db.selectFrom(table).select(column).execute()).map((row) => String(row[column])).sort();
      const deadline = Date.now() + 10_000;
      while ((await ids('privacykit_portal_sessions', 'sid')).length > 1 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await app.housekeeping.runOnce();
      expect(await ids('privacykit_portal_sessions', 'sid')).toEqual(['live']);
      expect(await ids('privacykit_portal_return_codes', 'id')).toEqual(['recent']);
      expect(await ids('privacykit_portal_outbox', 'id')).toEqual(['today']);
      // The portal answers meanwhile (the timer is unref'd and runs beside requests).
      const port = (server.address() as AddressInfo).port;
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

      server.closeAllConnections();
      await new Promise((resolve) => server!.close(resolve));
      server = undefined;
      await waitFor(() => !app.housekeeping.running);
      expect(app.housekeeping.running).toBe(false);
    } finally {
      if (server) await new Promise((resolve) => server!.close(resolve));
      await t.db.destroy();
      await t.destroy();
    }
  });
});
