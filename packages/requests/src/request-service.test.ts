import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import type { FixedClock } from '@privacykit/core';
import { migrate, openDatabase } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityLookupHash } from './identity.js';
import { requestMigrations } from './migrations.js';
import { createRequestService } from './request-service.js';
import type { RequestServiceOptions, SubmitRequestInput } from './request-service.js';
import { allRows, codeIn, memoryMailer, testPolicy, tokenIn } from './test-support.js';

const MINUTE = 60_000;
const DAY = 86_400_000;

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (!isPrivacyKitError(error, code)) throw error;
    return;
  }
  throw new Error(`expected ${code}, but nothing was thrown`);
}

describe.each(testEngines())('requests on $engine', (engine) => {
  let database: TestDatabase;
  let tenantCounter = 0;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    await migrate(database.db, [requestMigrations]);
  });
  afterAll(async () => {
    await database?.destroy();
  });

  /** A service on its own tenant, so tests never see each other's requests. */
  function setup(
    options: Partial<Omit<RequestServiceOptions, 'policy'>> & { start?: string; zone?: string } = {},
  ) {
    const tenant = `t${++tenantCounter}-${Date.now().toString(36)}`;
    const clock: FixedClock = fixedClock(options.start ?? '2024-01-31T10:00:00Z');
    const mailer = memoryMailer();
    const policy = testPolicy({ tenant, zone: options.zone });
    const service = createRequestService({
      mailer,
      secret: 'a test secret of more than thirty-two bytes!!',
      verificationLink: (token) => `https://privacy.example.com/verify/${token}`,
      ...options,
      db: options.db ?? database.db,
      policy,
      clock,
    });
    const mailsTo = (to: string) => mailer.sent.filter((mail) => mail.to === to);
    return { service, clock, mailer, mailsTo, tenant, policy };
  }

  /** A submission of `right` for one email address, with these details. */
  const filed = (right: string, email: string, details: unknown): SubmitRequestInput =>
    ({ right, identities: [{ kind: 'email', value: email }], details }) as SubmitRequestInput;

  const access = (email: string, extra: Partial<SubmitRequestInput> = {}): SubmitRequestInput =>
    ({ right: 'access', identities: [{ kind: 'email', value: email }], ...extra }) as SubmitRequestInput;

  async function submitted(
    ctx: ReturnType<typeof setup>,
    email: string,
    extra: Partial<SubmitRequestInput> = {},
  ) {
    const result = await ctx.service.submit(access(email, extra));
    await ctx.service.whenIdle();
    const mail = ctx.mailsTo(email).at(-1);
    return { ...result, mail };
  }

  async function verified(
    ctx: ReturnType<typeof setup>,
    email: string,
    extra: Partial<SubmitRequestInput> = {},
  ) {
    const { requestId, mail } = await submitted(ctx, email, extra);
    if (!mail) throw new Error('no challenge mail');
    await ctx.service.verify({ requestId, code: codeIn(mail.text) });
    return requestId;
  }

  describe('intake and verification', () => {
    it('migrates idempotently', async () => {
      const again = await migrate(database.db, [requestMigrations]);
      expect(again[0]?.applied).toEqual([]);
    });

    it('submits, mails a challenge to the registered channel, and verifies with the code', async () => {
      const ctx = setup();
      const result = await ctx.service.submit(access('ada@example.com'));
      expect(result).toEqual({
        requestId: expect.stringMatching(
          /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
        ),
        submissionId: expect.any(String),
        status: 'identity-pending',
        duplicateOf: null,
        excessive: false,
        mailThrottled: false,
      });
      await ctx.service.whenIdle();
      const [mail] = ctx.mailsTo('ada@example.com');
      expect(mail).toBeDefined();
      const outcome = await ctx.service.verify({ requestId: result.requestId, code: codeIn(mail!.text) });
      expect(outcome).toEqual({ requestId: result.requestId, status: 'verified', remaining: 0 });
      const record = await ctx.service.get(result.requestId);
      expect(record.status).toBe('verified');
      expect(record.identities).toEqual([
        { kind: 'email', value: 'ada@example.com', verified: true, verifiedAt: '2024-01-31T10:00:00.000Z' },
      ]);
      const trail = await ctx.service.audit(result.requestId);
      expect(
        trail.filter((entry) => entry.action === 'transition').map((entry) => [entry.from, entry.to]),
      ).toEqual([
        ['received', 'identity-pending'],
        ['identity-pending', 'verified'],
      ]);
      expect(trail.every((entry) => /Z$/.test(entry.at))).toBe(true);
    });

    it('stores codes and tokens only as HMACs, never in plain text', async () => {
      const ctx = setup();
      const { requestId, mail } = await submitted(ctx, 'hash@example.com');
      const code = codeIn(mail!.text);
      const token = tokenIn(mail!.text);
      const rows = (await allRows(database.db, 'privacykit_requests_challenges')).filter(
        (row) => row.request_id === requestId,
      );
      expect(rows).toHaveLength(1);
      const stored = JSON.stringify(rows);
      expect(stored).not.toContain(code);
      expect(stored).not.toContain(token);
      expect(rows[0]?.code_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(rows[0]?.token_hash).toMatch(/^[0-9a-f]{64}$/);
    });

    it('verifies with the link token, at least 128 bits, once only (hostile case 14)', async () => {
      const ctx = setup();
      const { requestId, mail } = await submitted(ctx, 'link@example.com');
      const token = tokenIn(mail!.text);
      expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(16);
      expect((await ctx.service.verify({ token })).status).toBe('verified');
      await expectCode(ctx.service.verify({ token }), 'requests/verification-failed');
      await expectCode(
        ctx.service.verify({ requestId, code: codeIn(mail!.text) }),
        'requests/verification-failed',
      );
      await expectCode(ctx.service.verify({ token: 'A'.repeat(43) }), 'requests/verification-failed');
    });

    it('without a verification link, the mail names the token as one to paste, and where', async () => {
      const bare = setup({ verificationLink: undefined });
      const { mail } = await submitted(bare, 'bare@example.com');
      const line = /^Or paste this confirmation token: (\S+)$/m.exec(mail!.text);
      expect(line, mail!.text).not.toBeNull();
      expect(mail!.text).not.toContain('this link');
      expect(mail!.text).toContain('The code and token expire in');
      expect((await bare.service.verify({ token: line![1]! })).status).toBe('verified');

      const page = setup({ verificationLink: undefined, verificationPage: 'our privacy centre (/verify)' });
      const named = await submitted(page, 'page@example.com');
      expect(named.mail!.text).toMatch(
        /^Or paste this confirmation token on our privacy centre \(\/verify\): \S+$/m,
      );
      // With a link, the link as before.
      const linked = await submitted(setup(), 'linked@example.com');
      expect(linked.mail!.text).toMatch(
        /^Or confirm with this link: https:\/\/privacy\.example\.com\/verify\/\S+$/m,
      );
      expect(linked.mail!.text).toContain('The code and link expire in');
    });

    it('expires challenges after the configured time (at most 10 minutes)', async () => {
      const ctx = setup({ codeTtlMinutes: 5 });
      const { requestId, mail } = await submitted(ctx, 'late@example.com');
      ctx.clock.advance(5 * MINUTE + 1000);
      await expectCode(
        ctx.service.verify({ requestId, code: codeIn(mail!.text) }),
        'requests/verification-expired',
      );
      await expectCode(ctx.service.verify({ token: tokenIn(mail!.text) }), 'requests/verification-expired');
      // A fresh challenge works; the old code stays dead.
      await ctx.service.resendChallenge(requestId);
      await ctx.service.whenIdle();
      const fresh = ctx.mailsTo('late@example.com').at(-1)!;
      expect(fresh).not.toBe(mail);
      await expectCode(
        ctx.service.verify({ requestId, code: codeIn(mail!.text) }),
        'requests/verification-failed',
      );
      expect((await ctx.service.verify({ requestId, code: codeIn(fresh.text) })).status).toBe('verified');
      expect(() => setup({ codeTtlMinutes: 11 })).toThrow(
        expect.objectContaining({ code: 'requests/invalid-options' }),
      );
      expect(() => setup({ maxVerificationAttempts: 6 })).toThrow(
        expect.objectContaining({ code: 'requests/invalid-options' }),
      );
    });

    it('locks verification after 5 wrong codes, even for the right one (hostile case 14)', async () => {
      const ctx = setup();
      const { requestId, mail } = await submitted(ctx, 'guess@example.com');
      const right = codeIn(mail!.text);
      const wrong = right === '000000' ? '111111' : '000000';
      for (let i = 1; i <= 4; i++) {
        await expectCode(ctx.service.verify({ requestId, code: wrong }), 'requests/verification-failed');
      }
      await expectCode(ctx.service.verify({ requestId, code: wrong }), 'requests/verification-locked');
      await expectCode(ctx.service.verify({ requestId, code: right }), 'requests/verification-locked');
      await expectCode(ctx.service.verify({ token: tokenIn(mail!.text) }), 'requests/verification-locked');
      const record = await ctx.service.get(requestId);
      expect(record.verificationLocked).toBe(true);
      expect(record.status).toBe('identity-pending');
      // A resend cannot reset the lock.
      const before = ctx.mailer.sent.length;
      await ctx.service.resendChallenge(requestId);
      await ctx.service.whenIdle();
      expect(ctx.mailer.sent.length).toBe(before);
      const actions = (await ctx.service.audit(requestId)).map((entry) => entry.action);
      expect(actions.filter((action) => action === 'verification-failed')).toHaveLength(5);
      expect(actions).toContain('verification-locked');
      // Whoever made the wrong guesses (someone who learnt the reference, say), the subject is
      // not stuck: submitting again gives a new request and a new code, which verifies.
      const again = await submitted(ctx, 'guess@example.com');
      expect(again.requestId).not.toBe(requestId);
      expect(again.duplicateOf).toBeNull();
      await ctx.service.verify({ requestId: again.requestId, code: codeIn(again.mail!.text) });
      expect((await ctx.service.get(again.requestId)).status).toBe('verified');
      expect((await ctx.service.get(requestId)).verificationLocked).toBe(true);
    });

    it('keeps the lockout when wrong codes arrive in parallel', async () => {
      const ctx = setup();
      const { requestId, mail } = await submitted(ctx, 'burst@example.com');
      const right = codeIn(mail!.text);
      const guesses = Array.from({ length: 30 }, (_, i) => String(100000 + i)).filter(
        (code) => code !== right,
      );
      const results = await Promise.allSettled(
        guesses.map((code) => ctx.service.verify({ requestId, code })),
      );
      const codes = results.map((result) =>
        result.status === 'rejected' ? (result.reason as { code?: string }).code : 'accepted',
      );
      expect(codes.filter((code) => code === 'requests/verification-failed').length).toBeLessThanOrEqual(4);
      expect(
        codes.every(
          (code) => code === 'requests/verification-failed' || code === 'requests/verification-locked',
        ),
      ).toBe(true);
      const compared = (await ctx.service.audit(requestId)).filter(
        (entry) => entry.action === 'verification-failed',
      );
      expect(compared.length).toBeLessThanOrEqual(5);
      await expectCode(ctx.service.verify({ requestId, code: right }), 'requests/verification-locked');
    });

    it('gives a right code its attempt back, so earlier typos do not add up across identities', async () => {
      const ctx = setup();
      const { requestId, mail } = await submitted(ctx, 'typo@example.com');
      const right = codeIn(mail!.text);
      const wrong = right === '000000' ? '111111' : '000000';
      for (let i = 0; i < 4; i++) {
        await expectCode(ctx.service.verify({ requestId, code: wrong }), 'requests/verification-failed');
      }
      expect((await ctx.service.verify({ requestId, code: right })).status).toBe('verified');
      expect((await ctx.service.get(requestId)).verificationLocked).toBe(false);
    });

    it('caps wrong codes per identity across its requests: a fresh submission brings no fresh guesses, and the link still verifies (hostile case 14)', async () => {
      const ctx = setup();
      const email = 'target@example.com';
      const guessAway = async (requestId: string, right: string) => {
        const wrong = right === '000000' ? '111111' : '000000';
        for (let i = 1; i <= 4; i++) {
          await expectCode(ctx.service.verify({ requestId, code: wrong }), 'requests/verification-failed');
        }
        await expectCode(ctx.service.verify({ requestId, code: wrong }), 'requests/verification-locked');
      };
      // Someone who knows the address files, guesses five times, files again, guesses five more.
      const first = await submitted(ctx, email);
      await guessAway(first.requestId, codeIn(first.mail!.text));
      const second = await submitted(ctx, email);
      expect(second.requestId).not.toBe(first.requestId);
      await guessAway(second.requestId, codeIn(second.mail!.text));
      // Ten wrong codes for the identity within the day: a third request brings no more guesses,
      // not even the right code, and the refusal costs the request none of its attempts.
      const third = await submitted(ctx, email);
      const code = codeIn(third.mail!.text);
      await expectCode(
        ctx.service.verify({ requestId: third.requestId, code }),
        'requests/verification-throttled',
      );
      await expectCode(
        ctx.service.verify({ requestId: third.requestId, code }),
        'requests/verification-throttled',
      );
      expect((await ctx.service.get(third.requestId)).verificationLocked).toBe(false);
      // The subject is not shut out: the link mailed to their channel cannot be guessed, and works.
      expect(await ctx.service.verify({ token: tokenIn(third.mail!.text) })).toMatchObject({
        requestId: third.requestId,
        status: 'verified',
      });
      // Once the window has passed, codes work again.
      ctx.clock.advance(DAY);
      const later = await submitted(ctx, email, { right: 'erasure' } as Partial<SubmitRequestInput>);
      expect(
        (await ctx.service.verify({ requestId: later.requestId, code: codeIn(later.mail!.text) })).status,
      ).toBe('verified');
      expect(() => setup({ codeGuessLimit: { maxFailures: 0, windowHours: 24 } })).toThrow(
        expect.objectContaining({ code: 'requests/invalid-options' }),
      );
    });

    it('counts a wrong code against every unverified identity the request names', async () => {
      const ctx = setup({ codeGuessLimit: { maxFailures: 3, windowHours: 24 } });
      // An attacker names their own address and the victim's, and guesses three times.
      const planted = await ctx.service.submit({
        right: 'access',
        identities: [
          { kind: 'email', value: 'attacker@example.net' },
          { kind: 'email', value: 'named@example.com' },
        ],
      } as SubmitRequestInput);
      for (let i = 0; i < 3; i++) {
        await expectCode(
          ctx.service.verify({ requestId: planted.requestId, code: '000000' }),
          'requests/verification-failed',
        );
      }
      const own = await submitted(ctx, 'named@example.com');
      await expectCode(
        ctx.service.verify({ requestId: own.requestId, code: codeIn(own.mail!.text) }),
        'requests/verification-throttled',
      );
      expect((await ctx.service.verify({ token: tokenIn(own.mail!.text) })).status).toBe('verified');
    });

    it('wrong codes through a duplicate submission lock that submission only: the subject still verifies their request', async () => {
      const ctx = setup();
      const own = await submitted(ctx, 'owner@example.com');
      const right = codeIn(own.mail!.text);
      const wrong = right === '000000' ? '111111' : '000000';
      // A stranger submits the same address and guesses through the handle they were given.
      const stranger = await ctx.service.submit(access('owner@example.com'));
      expect(stranger.duplicateOf).toBe(own.requestId);
      expect(stranger.submissionId).not.toBe(own.submissionId);
      for (let i = 1; i <= 4; i++) {
        await expectCode(
          ctx.service.verify({ submissionId: stranger.submissionId, code: wrong }),
          'requests/verification-failed',
        );
      }
      await expectCode(
        ctx.service.verify({ submissionId: stranger.submissionId, code: wrong }),
        'requests/verification-locked',
      );
      await expectCode(
        ctx.service.verify({ submissionId: stranger.submissionId, code: right }),
        'requests/verification-locked',
      );
      // The request is not locked: its subject's code, through their own handle, verifies it.
      expect((await ctx.service.get(own.requestId)).verificationLocked).toBe(false);
      expect(await ctx.service.verify({ submissionId: own.submissionId, code: right })).toMatchObject({
        requestId: own.requestId,
        status: 'verified',
      });
      const actions = (await ctx.service.audit(own.requestId)).map((entry) => entry.action);
      expect(actions).toContain('duplicate-submission-locked');
      expect(actions).not.toContain('verification-locked');
      await expectCode(
        ctx.service.verify({ submissionId: 'no-such-submission', code: right }),
        'requests/verification-failed',
      );
    });

    it('the handle of the submission that created a request spends the request’s own attempts', async () => {
      const ctx = setup();
      const own = await submitted(ctx, 'creator@example.com');
      const right = codeIn(own.mail!.text);
      const wrong = right === '000000' ? '111111' : '000000';
      for (let i = 1; i <= 4; i++) {
        await expectCode(
          ctx.service.verify({ submissionId: own.submissionId, code: wrong }),
          'requests/verification-failed',
        );
      }
      await expectCode(
        ctx.service.verify({ requestId: own.requestId, code: wrong }),
        'requests/verification-locked',
      );
      expect((await ctx.service.get(own.requestId)).verificationLocked).toBe(true);
      // A submission after the lock gets a request of its own, as before.
      expect((await ctx.service.submit(access('creator@example.com'))).duplicateOf).toBeNull();
    });

    it('requires every identity of a request to be verified before it is verified', async () => {
      const registered: Record<string, string> = {
        'C-1001': 'bob@example.com',
        'bob@work.example': 'bob@work.example',
      };
      const ctx = setup({ lookupRegisteredChannel: (identity) => registered[identity.value] ?? null });
      const { requestId } = await ctx.service.submit({
        right: 'erasure',
        identities: [
          { kind: 'email', value: 'bob@work.example' },
          { kind: 'customer-number', value: 'C-1001' },
        ],
      });
      await ctx.service.whenIdle();
      const [workMail] = ctx.mailsTo('bob@work.example');
      const [customerMail] = ctx.mailsTo('bob@example.com');
      expect(workMail && customerMail).toBeTruthy();
      const first = await ctx.service.verify({ requestId, code: codeIn(workMail!.text) });
      expect(first).toEqual({ requestId, status: 'identity-pending', remaining: 1 });
      await expectCode(
        ctx.service.transition(requestId, { to: 'verified', by: 'staff:eve' }),
        'requests/identity-unverified',
      );
      const second = await ctx.service.verify({ requestId, code: codeIn(customerMail!.text) });
      expect(second.status).toBe('verified');
    });

    it('answers the same whether or not the identity is known, and mails only known channels (no enumeration)', async () => {
      const ctx = setup({
        lookupRegisteredChannel: (identity) =>
          identity.value === 'known@example.com' ? 'known@example.com' : null,
      });
      const known = await ctx.service.submit(access('known@example.com'));
      const unknown = await ctx.service.submit(access('nobody@example.com'));
      await ctx.service.whenIdle();
      expect(Object.keys(unknown).sort()).toEqual(Object.keys(known).sort());
      expect({ ...unknown, requestId: 'x', submissionId: 'y' }).toEqual({
        ...known,
        requestId: 'x',
        submissionId: 'y',
      });
      expect(ctx.mailsTo('known@example.com')).toHaveLength(1);
      expect(ctx.mailer.sent.some((mail) => mail.to === 'nobody@example.com')).toBe(false);
      // Both wrote a challenge: the same work on both paths.
      const challenges = await allRows(database.db, 'privacykit_requests_challenges');
      expect(challenges.filter((row) => row.request_id === known.requestId)).toHaveLength(1);
      expect(challenges.filter((row) => row.request_id === unknown.requestId)).toHaveLength(1);
      // Nobody can verify the unknown one with a guessed code.
      await expectCode(
        ctx.service.verify({ requestId: unknown.requestId, code: '123456' }),
        'requests/verification-failed',
      );
    });
  });

  describe('impostors (hostile cases 9, 11, 12, 27)', () => {
    it('sends the challenge only to the registered channel, whatever the request says (case 9)', async () => {
      // An impostor writes from a spoofed From: alice@…, or names a look-alike a1ice@… address.
      const registered: Record<string, string> = { 'alice@example.com': 'alice@example.com' };
      const ctx = setup({ lookupRegisteredChannel: (identity) => registered[identity.value] ?? null });
      const spoofed = await ctx.service.submit({ ...access('alice@example.com'), channel: 'email' });
      const lookalike = await ctx.service.submit(access('a1ice@example.com'));
      await ctx.service.whenIdle();
      expect(ctx.mailer.sent.map((mail) => mail.to)).toEqual(['alice@example.com']);
      // The impostor, without Alice's mailbox, can only guess — and gets locked out.
      for (let i = 0; i < 4; i++) {
        await expectCode(
          ctx.service.verify({ requestId: spoofed.requestId, code: '000001' }),
          'requests/verification-failed',
        );
      }
      await expectCode(
        ctx.service.verify({ requestId: spoofed.requestId, code: '000001' }),
        'requests/verification-locked',
      );
      await expectCode(ctx.service.deliveryChannel(spoofed.requestId), 'requests/identity-unverified');
      await expectCode(ctx.service.deliveryChannel(lookalike.requestId), 'requests/identity-unverified');
    });

    it('without a lookup, a look-alike address verifies only itself and reaches nothing of Alice', async () => {
      const ctx = setup();
      const alice = await verified(ctx, 'alice@example.com');
      const impostor = await verified(ctx, 'a1ice@example.com');
      expect(await ctx.service.deliveryChannel(impostor)).toBe('a1ice@example.com');
      await expectCode(
        ctx.service.getForRequester(alice, { kind: 'email', value: 'a1ice@example.com' }),
        'requests/not-found',
      );
      const history = await ctx.service.historyFor([{ kind: 'email', value: 'a1ice@example.com' }]);
      expect(history.requests.map((request) => request.id)).toEqual([impostor]);
    });

    it('refuses to send the answer to another address than the verified one (case 11)', async () => {
      const ctx = setup();
      const before = (await allRows(database.db, 'privacykit_requests_requests')).length;
      await expectCode(
        ctx.service.submit(access('carol@example.com', { deliverTo: 'carol.new@elsewhere.example' })),
        'requests/delivery-address-mismatch',
      );
      expect((await allRows(database.db, 'privacykit_requests_requests')).length).toBe(before);
      expect(ctx.mailer.sent).toHaveLength(0);
      const id = await verified(ctx, 'carol@example.com', { deliverTo: 'Carol@example.com' });
      expect(await ctx.service.deliveryChannel(id)).toBe('carol@example.com');
    });

    it('gives user A a logged not-found for user B’s request, sequential or random ids (case 12)', async () => {
      const ctx = setup();
      const bobs = await verified(ctx, 'bob@example.com');
      const alice = { kind: 'email', value: 'alice@example.com' };
      await expectCode(ctx.service.getForRequester(bobs, alice), 'requests/not-found');
      // A neighbouring id (last hex digit changed) and garbage get the very same answer.
      const neighbour = bobs.slice(0, -1) + (bobs.endsWith('0') ? '1' : '0');
      await expectCode(ctx.service.getForRequester(neighbour, alice), 'requests/not-found');
      await expectCode(ctx.service.getForRequester('1', alice), 'requests/not-found');
      expect((await ctx.service.getForRequester(bobs, { kind: 'email', value: 'BOB@example.com' })).id).toBe(
        bobs,
      );
      const refused = (await ctx.service.audit(bobs)).filter((entry) => entry.action === 'access-refused');
      expect(refused).toHaveLength(1);
      expect(JSON.stringify(refused)).not.toContain('alice');
      const logged = await allRows(database.db, 'privacykit_requests_audit');
      expect(logged.some((row) => row.request_id === neighbour && row.action === 'access-refused')).toBe(
        true,
      );
    });

    it('matches Alice@ with alice@ but never full-width, Turkish ı or Kelvin-sign look-alikes (case 27)', async () => {
      const ctx = setup();
      const id = await verified(ctx, 'kate@example.com');
      const same = await ctx.service.submit(access('  KATE@Example.COM '));
      expect(same.duplicateOf).toBe(id);
      expect((await ctx.service.getForRequester(id, { kind: 'email', value: 'Kate@EXAMPLE.com' })).id).toBe(
        id,
      );
      for (const impostor of [
        '\u212Aate@example.com',
        'ｋate@example.com',
        'kate@examp\u0131e.com',
        'KATE@EXAMPLE.COM\u200B',
      ]) {
        await expectCode(
          ctx.service.getForRequester(id, { kind: 'email', value: impostor }),
          'requests/not-found',
        );
        expect((await ctx.service.historyFor([{ kind: 'email', value: impostor }])).requests).toEqual([]);
        const other = await ctx.service.submit(access(impostor));
        expect(other.duplicateOf).toBeNull();
        expect(other.requestId).not.toBe(id);
      }
    });
  });

  describe('duplicates and floods (Art 12(5), hostile case 15)', () => {
    it('returns the open request for the same right and identity within 7 days', async () => {
      const ctx = setup();
      const first = await ctx.service.submit(access('dup@example.com'));
      ctx.clock.advance(3 * DAY);
      const again = await ctx.service.submit(access('dup@example.com'));
      expect(again).toMatchObject({ requestId: first.requestId, duplicateOf: first.requestId });
      const erasure = await ctx.service.submit({
        right: 'erasure',
        identities: [{ kind: 'email', value: 'dup@example.com' }],
      });
      expect(erasure.duplicateOf).toBeNull();
      ctx.clock.advance(5 * DAY);
      const later = await ctx.service.submit(access('dup@example.com'));
      expect(later.duplicateOf).toBeNull();
      // The first request, still open but past the window, gave up its place to the later one.
      expect(await ctx.service.submit(access('dup@example.com'))).toMatchObject({
        requestId: later.requestId,
        duplicateOf: later.requestId,
      });
      expect((await ctx.service.audit(first.requestId)).map((entry) => entry.action)).toContain(
        'duplicate-submission',
      );
    });

    it('records a duplicate submission on the request it was answered with, creating no request', async () => {
      const ctx = setup();
      const first = await ctx.service.submit(access('twice@example.com'));
      ctx.clock.advance(DAY);
      await ctx.service.submit(access('twice@example.com', { channel: 'email' }));
      expect((await ctx.service.list()).map((request) => request.id)).toEqual([first.requestId]);
      // The original is no one's duplicate; the later submission is in its audit trail.
      expect((await ctx.service.get(first.requestId)).duplicateOf).toBeNull();
      const duplicates = (await ctx.service.audit(first.requestId)).filter(
        (entry) => entry.action === 'duplicate-submission',
      );
      expect(duplicates).toEqual([
        expect.objectContaining({
          by: 'subject',
          at: '2024-02-01T10:00:00.000Z',
          data: { channel: 'email' },
        }),
      ]);
    });

    it('a duplicate rectification adds its corrections only once its own code is used; nothing it says is lost', async () => {
      const ctx = setup();
      const rectify = (changes: { field: string; corrected: string }[], explanation?: string) =>
        filed('rectification', 'fix@example.com', { changes, ...(explanation ? { explanation } : {}) });
      const first = await ctx.service.submit(rectify([{ field: 'address', corrected: '1 Rue A' }]));
      ctx.clock.advance(DAY);
      const again = await ctx.service.submit(
        rectify([
          { field: 'address', corrected: '2 Rue B' },
          { field: 'phone', corrected: '+33 1 23 45 67 89' },
        ]),
      );
      await ctx.service.whenIdle();
      expect(again.duplicateOf).toBe(first.requestId);
      // Unproven, it changes nothing yet: it is in the audit, and its code went to the channel.
      expect((await ctx.service.get(first.requestId)).details).toEqual({
        changes: [{ field: 'address', corrected: '1 Rue A' }],
      });
      const [entry] = (await ctx.service.audit(first.requestId)).filter(
        (audited) => audited.action === 'duplicate-submission',
      );
      expect(entry?.data).toEqual({
        channel: 'web',
        details: {
          changes: [
            { field: 'address', corrected: '2 Rue B' },
            { field: 'phone', corrected: '+33 1 23 45 67 89' },
          ],
        },
        merged: false,
        unverified: true,
        confirmationMailed: true,
      });
      const [, amendment] = ctx.mailsTo('fix@example.com');
      expect(amendment?.subject).toMatch(/details added/);
      // The mail counts the corrections and repeats nothing the sender typed, field names included.
      expect(amendment?.text).toContain(
        'adding 2 corrections (shown on your request page once you confirm).',
      );
      expect(amendment?.text).not.toContain('Rue B');
      expect(amendment?.text).not.toContain('phone');
      expect(await ctx.service.verify({ requestId: first.requestId, code: codeIn(amendment!.text) })).toEqual(
        {
          requestId: first.requestId,
          status: 'verified',
          remaining: 0,
        },
      );
      expect((await ctx.service.get(first.requestId)).details).toEqual({
        changes: [
          { field: 'address', corrected: '2 Rue B' },
          { field: 'phone', corrected: '+33 1 23 45 67 89' },
        ],
      });
      expect((await ctx.service.audit(first.requestId)).map((audited) => audited.action)).toEqual([
        'submitted',
        'transition',
        'duplicate-submission',
        'details-amended',
        'identity-verified',
        'transition',
      ]);
    });

    it('a forged duplicate never joins the request its subject verifies with their own code', async () => {
      const ctx = setup();
      const rectify = (corrected: string) =>
        filed('rectification', 'pending-victim@example.com', { changes: [{ field: 'address', corrected }] });
      const { requestId } = await ctx.service.submit(rectify('1 Real Street'));
      await ctx.service.whenIdle();
      const [own] = ctx.mailsTo('pending-victim@example.com');
      // Before the subject confirms, someone names their email with an address of their own.
      await ctx.service.submit(rectify('99 Attacker Road, send mail here'));
      await ctx.service.whenIdle();
      const [, forged] = ctx.mailsTo('pending-victim@example.com');
      expect(forged?.text).toMatch(/If you did not send it, ignore this message: nothing is added/);
      await ctx.service.verify({ requestId, code: codeIn(own!.text) });
      expect(await ctx.service.get(requestId)).toMatchObject({
        status: 'verified',
        details: { changes: [{ field: 'address', corrected: '1 Real Street' }] },
      });
      // Verifying spent the forged submission's code with the subject's own: it can never add itself.
      const challenges = (await allRows(database.db, 'privacykit_requests_challenges')).filter(
        (row) => row.request_id === requestId,
      );
      expect(
        challenges
          .map((row) => `${row.amendment === null ? 'own' : 'forged'}: ${row.consumed_at ? 'spent' : 'live'}`)
          .sort(),
      ).toEqual(['forged: spent', 'own: spent']);
      await expectCode(ctx.service.verify({ token: tokenIn(forged!.text) }), 'requests/verification-failed');
      const actions = (await ctx.service.audit(requestId)).map((entry) => entry.action);
      expect(actions).not.toContain('details-amended');
      expect((await ctx.service.get(requestId)).details).toEqual({
        changes: [{ field: 'address', corrected: '1 Real Street' }],
      });
    });

    it('the link mailed for a duplicate confirms its additions too, merged into the request as it is then', async () => {
      const ctx = setup();
      const withdraw = (purposes: string[]) => filed('withdraw-consent', 'links@example.com', { purposes });
      const { requestId } = await ctx.service.submit(withdraw(['newsletter']));
      await ctx.service.submit(withdraw(['service']));
      await ctx.service.whenIdle();
      const [, added] = ctx.mailsTo('links@example.com');
      expect(added?.text).toContain('adding withdrawing consent to service.');
      expect(await ctx.service.verify({ token: tokenIn(added!.text) })).toMatchObject({ status: 'verified' });
      expect((await ctx.service.get(requestId)).details).toEqual({ purposes: ['newsletter', 'service'] });
      expect(
        (await ctx.service.audit(requestId)).find((entry) => entry.action === 'details-amended'),
      ).toMatchObject({
        by: 'subject',
        data: { details: { purposes: ['service'] }, merged: true },
      });
    });

    it('an unverified duplicate never rewrites a request whose subject verified it: its details are only kept in the audit', async () => {
      const ctx = setup();
      const rectify = (corrected: string) =>
        filed('rectification', 'victim@example.com', { changes: [{ field: 'address', corrected }] });
      const requestId = await verified(ctx, 'victim@example.com', rectify('1 Real Street'));
      expect((await ctx.service.get(requestId)).status).toBe('verified');
      // Anyone can name the victim's email on the form; the submission proves nothing.
      const forged = await ctx.service.submit(rectify('99 Attacker Road, send mail here'));
      expect(forged.duplicateOf).toBe(requestId);
      expect((await ctx.service.get(requestId)).details).toEqual({
        changes: [{ field: 'address', corrected: '1 Real Street' }],
      });
      const entry = (await ctx.service.audit(requestId)).at(-1);
      expect(entry).toMatchObject({
        action: 'duplicate-submission',
        data: {
          merged: false,
          unverified: true,
          details: { changes: [{ corrected: '99 Attacker Road, send mail here' }] },
        },
      });
    });

    it('a confirmed duplicate withdrawal adds its purposes; details it cannot merge are only kept in the audit', async () => {
      const ctx = setup();
      const withdraw = (purposes: string[]) => filed('withdraw-consent', 'w@example.com', { purposes });
      const first = await ctx.service.submit(withdraw(['newsletter']));
      await ctx.service.submit(withdraw(['service', 'newsletter']));
      await ctx.service.whenIdle();
      await ctx.service.verify({
        requestId: first.requestId,
        code: codeIn(ctx.mailsTo('w@example.com')[1]!.text),
      });
      expect((await ctx.service.get(first.requestId)).details).toEqual({
        purposes: ['newsletter', 'service'],
      });

      const restrict = (ground: string) => filed('restriction', 'r@example.com', { ground });
      const held = await ctx.service.submit(restrict('accuracy-contested'));
      await ctx.service.submit(restrict('objection-pending'));
      await ctx.service.whenIdle();
      expect((await ctx.service.get(held.requestId)).details).toEqual({ ground: 'accuracy-contested' });
      const kept = (await ctx.service.audit(held.requestId)).at(-1);
      expect(kept?.data).toEqual({
        channel: 'web',
        details: { ground: 'objection-pending' },
        merged: false,
        unverified: true,
      });
      // Nothing to confirm: the subject got their one code and no other.
      expect(ctx.mailsTo('r@example.com')).toHaveLength(1);
    });

    it('a confirmed duplicate objection to every purpose widens a narrower open one; a narrower one adds nothing to it', async () => {
      const ctx = setup();
      const object = (purposes?: string[]) =>
        filed('objection', 'o@example.com', { kind: 'direct-marketing', ...(purposes ? { purposes } : {}) });
      const lastCode = async () => {
        await ctx.service.whenIdle();
        return codeIn(ctx.mailsTo('o@example.com').at(-1)!.text);
      };
      const first = await ctx.service.submit(object(['newsletter']));
      await ctx.service.submit(object(['service']));
      const narrower = await lastCode();
      await ctx.service.submit(object());
      const every = await lastCode();
      expect(ctx.mailsTo('o@example.com').at(-1)?.text).toContain(
        'adding an objection (direct-marketing) to every purpose.',
      );
      await ctx.service.verify({ requestId: first.requestId, code: every });
      expect((await ctx.service.get(first.requestId)).details).toEqual({ kind: 'direct-marketing' });
      const widened = (await ctx.service.audit(first.requestId)).find(
        (entry) => entry.action === 'details-amended',
      );
      expect(widened?.data).toMatchObject({ merged: true });
      // The narrower one's code was spent with the rest: one verification per identity.
      await expectCode(
        ctx.service.verify({ requestId: first.requestId, code: narrower }),
        'requests/verification-failed',
      );
      // Once verified, a duplicate mails nothing and changes nothing.
      await ctx.service.submit(object(['newsletter']));
      await ctx.service.whenIdle();
      expect(ctx.mailsTo('o@example.com')).toHaveLength(3);
      expect((await ctx.service.get(first.requestId)).details).toEqual({ kind: 'direct-marketing' });
      expect((await ctx.service.audit(first.requestId)).at(-1)?.data).toMatchObject({ merged: false });
    });

    it('mails a duplicate a fresh code only once the last one expired, and spends the expired one', async () => {
      const ctx = setup();
      const { requestId, mail } = await submitted(ctx, 'lost@example.com');
      ctx.clock.advance(5 * MINUTE);
      await ctx.service.submit(access('lost@example.com'));
      await ctx.service.whenIdle();
      // The code mailed five minutes ago still works: no second one.
      expect(ctx.mailsTo('lost@example.com')).toEqual([mail]);
      ctx.clock.advance(6 * MINUTE);
      await ctx.service.submit(access('lost@example.com'));
      await ctx.service.submit(access('lost@example.com'));
      await ctx.service.whenIdle();
      const mails = ctx.mailsTo('lost@example.com');
      expect(mails).toHaveLength(2);
      await expectCode(
        ctx.service.verify({ requestId, code: codeIn(mail!.text) }),
        'requests/verification-failed',
      );
      expect((await ctx.service.verify({ requestId, code: codeIn(mails[1]!.text) })).status).toBe('verified');
      const actions = (await ctx.service.audit(requestId)).map((entry) => entry.action);
      expect(actions.filter((action) => action === 'duplicate-submission')).toHaveLength(3);
      expect(actions.filter((action) => action === 'challenge-resent')).toHaveLength(1);
    });

    it('never answers a submission with a request that also names someone else: the answer would go to them', async () => {
      const ctx = setup();
      // An attacker files access for their own address and the victim's, and confirms their own.
      const planted = await ctx.service.submit({
        right: 'access',
        identities: [
          { kind: 'email', value: 'attacker@example.net' },
          { kind: 'email', value: 'victim@example.com' },
        ],
      } as SubmitRequestInput);
      await ctx.service.whenIdle();
      const [toVictim] = ctx.mailsTo('victim@example.com');
      expect(toVictim?.text).toContain('The request also names 1 other identity, each confirmed separately');
      await ctx.service.verify({
        requestId: planted.requestId,
        code: codeIn(ctx.mailsTo('attacker@example.net')[0]!.text),
      });
      ctx.clock.advance(MINUTE);
      // The victim's own request is a request of their own, confirmed by their own code.
      const own = await ctx.service.submit(access('victim@example.com'));
      await ctx.service.whenIdle();
      expect(own.duplicateOf).toBeNull();
      expect(own.requestId).not.toBe(planted.requestId);
      const code = codeIn(ctx.mailsTo('victim@example.com').at(-1)!.text);
      expect(await ctx.service.verify({ requestId: own.requestId, code })).toMatchObject({
        requestId: own.requestId,
        status: 'verified',
      });
      expect(await ctx.service.deliveryChannel(own.requestId)).toBe('victim@example.com');
      // The planted request still waits for the victim's identity, which they never confirmed.
      expect((await ctx.service.get(planted.requestId)).status).toBe('identity-pending');
      // The same two again are a duplicate of the planted request, the one naming just those;
      // the victim's request gains no one.
      const again = await ctx.service.submit({
        right: 'access',
        identities: [
          { kind: 'email', value: 'attacker@example.net' },
          { kind: 'email', value: 'victim@example.com' },
        ],
      } as SubmitRequestInput);
      expect(again.duplicateOf).toBe(planted.requestId);
      expect((await ctx.service.get(own.requestId)).identities.map((identity) => identity.value)).toEqual([
        'victim@example.com',
      ]);
    });

    it('takes identity kinds as the data map names them, camelCase included', async () => {
      const ctx = setup();
      const submitted = await ctx.service.submit({
        right: 'access',
        identities: [
          { kind: 'email', value: 'kinds@example.com' },
          { kind: 'customerNumber', value: 'C-1' },
        ],
      } as SubmitRequestInput);
      expect(submitted.status).toBe('identity-pending');
      const history = await ctx.service.historyFor([{ kind: 'customerNumber', value: 'C-1' }]);
      expect(history.requests.map((request) => request.id)).toEqual([submitted.requestId]);
      await expectCode(
        ctx.service.submit({
          right: 'access',
          identities: [{ kind: '1st', value: 'x' }],
        } as SubmitRequestInput),
        'requests/invalid-input',
      );
    });

    it('does not treat a closed request as a duplicate', async () => {
      const ctx = setup();
      const first = await ctx.service.submit(access('closed@example.com'));
      await ctx.service.transition(first.requestId, {
        to: 'cancelled',
        by: 'subject',
        reason: 'sent by mistake',
      });
      expect((await ctx.service.submit(access('closed@example.com'))).duplicateOf).toBeNull();
    });

    it('a flood of 1,000 unverified submissions naming a victim mails them a bounded number of codes and never gets their own request refused (case 15)', async () => {
      const ctx = setup({ excessive: { maxRequests: 5, windowDays: 30 } });
      const rights = ['access', 'erasure', 'portability', 'restriction'] as const;
      const results = [];
      for (let i = 0; i < 1000; i++) {
        const right = rights[i % rights.length]!;
        results.push(
          await ctx.service.submit({
            right,
            identities: [{ kind: 'email', value: 'victim@example.com' }],
            ...(right === 'restriction' ? { details: { ground: 'accuracy-contested' } } : {}),
          } as SubmitRequestInput),
        );
        ctx.clock.advance(1000);
      }
      await ctx.service.whenIdle();
      // Four distinct requests (one per right), the rest duplicates. Anyone can type the victim's
      // address: none of it counts towards Art 12(5), nothing is flagged.
      expect(new Set(results.map((result) => result.requestId)).size).toBe(4);
      expect(results.every((result) => !result.excessive)).toBe(true);
      expect((await ctx.service.list()).filter((request) => request.excessive)).toEqual([]);
      // The first four codes, then one fresh code once they had expired: the throttle's five a
      // day, and the rest held back.
      expect(ctx.mailsTo('victim@example.com')).toHaveLength(5);
      expect(results.slice(0, 4).every((result) => !result.mailThrottled)).toBe(true);
      expect(results.some((result) => result.mailThrottled)).toBe(true);

      // The victim is not shut out: the next day their own submission gets a fresh code, which
      // verifies their request.
      ctx.clock.advance(DAY);
      const own = await ctx.service.submit(access('victim@example.com'));
      await ctx.service.whenIdle();
      expect(own).toMatchObject({ excessive: false, mailThrottled: false });
      expect(ctx.mailsTo('victim@example.com')).toHaveLength(6);
      const code = codeIn(ctx.mailsTo('victim@example.com').at(-1)!.text);
      expect((await ctx.service.verify({ requestId: own.requestId, code })).status).toBe('verified');

      // A requester who keeps filing and verifying requests is still flagged (Art 12(5)).
      for (let i = 0; i < 5; i++) {
        const id = await verified(ctx, 'keen@example.com');
        await ctx.service.transition(id, { to: 'cancelled', by: 'subject', reason: 'asked again' });
        ctx.clock.advance(DAY);
      }
      const sixth = await submitted(ctx, 'keen@example.com');
      expect(sixth.excessive).toBe(true);
      expect(ctx.mailsTo('keen@example.com')).toHaveLength(5);
      expect((await ctx.service.get(sixth.requestId)).excessive).toBe(true);
    }, 120_000);

    it('counts only verified requests towards Art 12(5), within its window', async () => {
      const ctx = setup({ excessive: { maxRequests: 2, windowDays: 30 } });
      // Unverified requests for every right, filed by someone else, count for nothing.
      for (const right of ['access', 'erasure', 'portability'] as const) {
        await ctx.service.submit({ right, identities: [{ kind: 'email', value: 'ida@example.com' }] });
      }
      ctx.clock.advance(DAY);
      const first = await verified(ctx, 'ida@example.com', {
        right: 'objection',
        details: { kind: 'direct-marketing' },
      } as Partial<SubmitRequestInput>);
      ctx.clock.advance(DAY);
      const second = await verified(ctx, 'ida@example.com', {
        right: 'rectification',
        details: { changes: [{ field: 'name', corrected: 'Ida' }] },
      } as Partial<SubmitRequestInput>);
      expect((await ctx.service.get(first)).excessive).toBe(false);
      expect((await ctx.service.get(second)).excessive).toBe(false);
      // A third request on top of two verified ones within 30 days is one too many.
      ctx.clock.advance(DAY);
      const third = await submitted(ctx, 'ida@example.com', {
        right: 'restriction',
        details: { ground: 'accuracy-contested' },
      } as Partial<SubmitRequestInput>);
      expect(third.excessive).toBe(true);
      expect((await ctx.service.audit(third.requestId)).map((entry) => entry.action)).toContain(
        'flagged-excessive',
      );
      // Once the verified ones are older than the window, a request is not.
      ctx.clock.advance(31 * DAY);
      expect(
        (
          await submitted(ctx, 'ida@example.com', {
            right: 'restriction',
            details: { ground: 'unlawful-processing' },
          } as Partial<SubmitRequestInput>)
        ).excessive,
      ).toBe(false);
    });

    it('holds back challenge mails past the per-identity throttle, the same whether or not the address is known', async () => {
      const ctx = setup({
        mailThrottle: { maxMails: 2, windowHours: 24 },
        lookupRegisteredChannel: ({ value }) => (value === 'known@example.com' ? value : null),
      });
      const file = (email: string, right: 'access' | 'erasure' | 'portability') =>
        ctx.service.submit({ right, identities: [{ kind: 'email', value: email }] });
      const answers: Record<string, Awaited<ReturnType<typeof file>>[]> = {};
      for (const email of ['known@example.com', 'unknown@example.com']) {
        answers[email] = [];
        for (const right of ['access', 'erasure', 'portability'] as const) {
          answers[email].push(await file(email, right));
        }
      }
      await ctx.service.whenIdle();
      for (const email of ['known@example.com', 'unknown@example.com']) {
        expect(answers[email]!.map((answer) => answer.mailThrottled)).toEqual([false, false, true]);
      }
      const mails = ctx.mailsTo('known@example.com');
      expect(mails).toHaveLength(2);
      const [access, erasure, portability] = answers['known@example.com']!;
      expect((await ctx.service.audit(portability!.requestId)).map((entry) => entry.action)).toContain(
        'challenge-withheld',
      );
      // A resend is throttled too, and leaves the live code the subject has working.
      expect(await ctx.service.resendChallenge(erasure!.requestId)).toEqual({ mailThrottled: true });
      await ctx.service.whenIdle();
      expect(ctx.mailsTo('known@example.com')).toHaveLength(2);
      expect(
        (await ctx.service.verify({ requestId: erasure!.requestId, code: codeIn(mails[1]!.text) })).status,
      ).toBe('verified');
      // The next day the held-back request gets its code when its subject asks again.
      ctx.clock.advance(DAY);
      const again = await file('known@example.com', 'portability');
      await ctx.service.whenIdle();
      expect(again).toMatchObject({ requestId: portability!.requestId, mailThrottled: false });
      const code = codeIn(ctx.mailsTo('known@example.com').at(-1)!.text);
      expect((await ctx.service.verify({ requestId: portability!.requestId, code })).status).toBe('verified');
      expect((await ctx.service.resendChallenge(access!.requestId)).mailThrottled).toBe(false);
      expect(() => setup({ mailThrottle: { maxMails: 0, windowHours: 24 } })).toThrow(
        expect.objectContaining({ code: 'requests/invalid-options' }),
      );
    });

    it('stores no guessable code for a request whose challenge is not mailed (flagged as excessive)', async () => {
      const ctx = setup({ excessive: { maxRequests: 1, windowDays: 30 } });
      await verified(ctx, 'quiet@example.com');
      const flagged = await ctx.service.submit({
        right: 'erasure',
        identities: [{ kind: 'email', value: 'quiet@example.com' }],
      } as SubmitRequestInput);
      await ctx.service.whenIdle();
      expect(flagged.excessive).toBe(true);
      expect(ctx.mailsTo('quiet@example.com')).toHaveLength(1);
      // Every 6-digit code is wrong: the stored secret is a 256-bit token nobody was sent.
      const [challenge] = (await allRows(database.db, 'privacykit_requests_challenges')).filter(
        (row) => row.request_id === flagged.requestId,
      );
      const key = 'a test secret of more than thirty-two bytes!!';
      const { hmacSha256Hex } = await import('@privacykit/core/crypto');
      let found: string | undefined;
      for (let guess = 0; guess < 1_000_000 && found === undefined; guess += 1) {
        const code = String(guess).padStart(6, '0');
        if (hmacSha256Hex(key, `code\u0000${challenge!.id}\u0000${code}`) === challenge!.code_hash)
          found = code;
      }
      expect(found).toBeUndefined();
    }, 120_000);

    it('keeps one live code for the latest additions: resubmitting adds no codes to guess against', async () => {
      const ctx = setup();
      const withdraw = (purposes: string[]) => filed('withdraw-consent', 'many@example.com', { purposes });
      const { requestId } = await ctx.service.submit(withdraw(['newsletter']));
      for (let i = 0; i < 4; i += 1)
        await ctx.service.submit(withdraw(i % 2 === 0 ? ['service'] : ['newsletter', 'service']));
      await ctx.service.whenIdle();
      const live = (await allRows(database.db, 'privacykit_requests_challenges')).filter(
        (row) => row.request_id === requestId && row.consumed_at === null,
      );
      expect(live.map((row) => (row.amendment === null ? 'own' : 'latest additions')).sort()).toEqual([
        'latest additions',
        'own',
      ]);
      // The earlier additions' codes no longer work; the latest one does.
      const mails = ctx.mailsTo('many@example.com');
      await expectCode(
        ctx.service.verify({ requestId, code: codeIn(mails[1]!.text) }),
        'requests/verification-failed',
      );
      expect((await ctx.service.verify({ requestId, code: codeIn(mails.at(-1)!.text) })).status).toBe(
        'verified',
      );
    });

    it('refuses a request dated in the future, writing nothing', async () => {
      const ctx = setup();
      const before = (await allRows(database.db, 'privacykit_requests_requests')).length;
      await expectCode(
        ctx.service.submit(access('future@example.com', { receivedAt: '2099-01-31T10:00:00Z' })),
        'requests/invalid-input',
      );
      expect((await allRows(database.db, 'privacykit_requests_requests')).length).toBe(before);
      // A few minutes of clock skew between the host and this server is not the future.
      const skewed = new Date(ctx.clock.now().getTime() + 60_000).toISOString();
      expect((await ctx.service.submit(access('future@example.com', { receivedAt: skewed }))).status).toBe(
        'identity-pending',
      );
    });

    it('a submission that fails stores nothing of itself, not even a counter for its identities', async () => {
      const ctx = setup();
      const stored = async () => {
        const rows: string[] = [];
        for (const table of [
          'privacykit_requests_requests',
          'privacykit_requests_identities',
          'privacykit_requests_challenges',
          'privacykit_requests_audit',
          'privacykit_requests_submissions',
          'privacykit_requests_identity_limits',
        ]) {
          for (const row of await allRows(database.db, table))
            if (row.tenant === ctx.tenant) rows.push(table);
        }
        return rows;
      };
      // Refused before anything is written.
      await expectCode(
        ctx.service.submit(access('failed@example.com', { deliverTo: 'other@example.com' })),
        'requests/delivery-address-mismatch',
      );
      expect(await stored()).toEqual([]);
      // Failed inside its transaction, at its last write (a lost connection, a full disk): it rolls
      // back whole, and the identity's mail counter must not outlive it.
      const failing = failingAt('privacykit_requests_submissions');
      const failed = createRequestService({
        secret: 'a test secret of more than thirty-two bytes!!',
        db: database.db.withPlugin(failing),
        policy: ctx.policy,
        clock: ctx.clock,
        mailer: ctx.mailer,
      });
      await expect(failed.submit(access('failed@example.com'))).rejects.toThrow('the disk is full');
      await failed.whenIdle();
      expect(await stored()).toEqual([]);
      expect(ctx.mailer.sent).toEqual([]);

      // The same submission, once it goes through, stores its request and counts its mail.
      await ctx.service.submit(access('failed@example.com'));
      expect(await stored()).toEqual(
        expect.arrayContaining(['privacykit_requests_requests', 'privacykit_requests_identity_limits']),
      );
    });
  });

  describe('counter retention (Art 5(1)(e))', () => {
    const HOUR = 3_600_000;
    const SECRET = 'a test secret of more than thirty-two bytes!!';
    const hashOf = (email: string) => identityLookupHash(SECRET, 'email', email);
    /** The tenant's counter rows, by the identity they count for. */
    async function counters(tenant: string) {
      const rows = await database.db
        .selectFrom('privacykit_requests_identity_limits')
        .selectAll()
        .where('tenant', '=', tenant)
        .orderBy('lookup_hash')
        .execute();
      return rows as { lookup_hash: string; mails: number; mail_window_start: string | null }[];
    }
    const countersFor = async (tenant: string) =>
      (await counters(tenant)).map((row) => row.lookup_hash).sort();

    it('deletes a counter once every one of its windows has ended, never before', async () => {
      const ctx = setup({
        mailThrottle: { maxMails: 5, windowHours: 24 },
        codeGuessLimit: { maxFailures: 10, windowHours: 48 },
      });
      // T0: one identity mailed; another mailed and sent a wrong code (its 48-hour window opens).
      await submitted(ctx, 'mailed@example.com');
      const guessed = await submitted(ctx, 'guessed@example.com');
      const wrong = codeIn(guessed.mail!.text) === '000000' ? '111111' : '000000';
      await expectCode(
        ctx.service.verify({ requestId: guessed.requestId, code: wrong }),
        'requests/verification-failed',
      );
      ctx.clock.advance(12 * HOUR);
      await submitted(ctx, 'later@example.com');
      await ctx.service.whenIdle();
      const all = [
        hashOf('mailed@example.com'),
        hashOf('guessed@example.com'),
        hashOf('later@example.com'),
      ].sort();
      expect(await countersFor(ctx.tenant)).toEqual(all);

      // A millisecond before the first mail window ends, nothing has ended.
      ctx.clock.advance(12 * HOUR - 1);
      expect(await ctx.service.pruneThrottles()).toBe(0);
      expect(await countersFor(ctx.tenant)).toEqual(all);
      // Once it ends (as `takeFromBudget` sees it: a new mail would open a fresh window), that
      // counter goes; the one with a code window still open stays, and so does the later mail's.
      ctx.clock.advance(1);
      expect(await ctx.service.pruneThrottles()).toBe(1);
      expect(await countersFor(ctx.tenant)).toEqual(
        [hashOf('guessed@example.com'), hashOf('later@example.com')].sort(),
      );
      // The later mail's window ends at T0 + 36 h; the wrong code's at T0 + 48 h.
      ctx.clock.advance(12 * HOUR);
      expect(await ctx.service.pruneThrottles()).toBe(1);
      expect(await countersFor(ctx.tenant)).toEqual([hashOf('guessed@example.com')]);
      ctx.clock.advance(12 * HOUR);
      expect(await ctx.service.pruneThrottles()).toBe(1);
      expect(await countersFor(ctx.tenant)).toEqual([]);
      expect(await ctx.service.pruneThrottles()).toBe(0);
    });

    it('a spent budget stays spent until its window ends; after a prune the next use opens a fresh window', async () => {
      const ctx = setup({ mailThrottle: { maxMails: 1, windowHours: 24 } });
      const email = 'flooded@example.com';
      const file = (right: 'access' | 'erasure' | 'portability') =>
        ctx.service.submit({ right, identities: [{ kind: 'email', value: email }] });
      expect((await file('access')).mailThrottled).toBe(false);
      ctx.clock.advance(23 * HOUR);
      await ctx.service.whenIdle();
      // The window is open: pruning must not give the flooder a fresh budget.
      expect(await ctx.service.pruneThrottles()).toBe(0);
      expect((await file('erasure')).mailThrottled).toBe(true);
      ctx.clock.advance(HOUR);
      await ctx.service.whenIdle();
      expect(await ctx.service.pruneThrottles()).toBe(1);
      expect(await counters(ctx.tenant)).toEqual([]);
      // The identity's next mail creates its counter again, with a window that starts now.
      const fresh = await file('portability');
      await ctx.service.whenIdle();
      expect(fresh.mailThrottled).toBe(false);
      expect(await counters(ctx.tenant)).toEqual([
        expect.objectContaining({
          lookup_hash: hashOf(email),
          mails: 1,
          mail_window_start: ctx.clock.now().toISOString(),
        }),
      ]);
      expect(ctx.mailsTo(email)).toHaveLength(2);
      expect(await file('access')).toMatchObject({ duplicateOf: expect.any(String), mailThrottled: true });
    });

    it('deletes in batches of batchSize, all of the tenant’s ended counters, none of another tenant', async () => {
      const statements: number[] = [];
      const deletes = new Set<unknown>();
      const counting: KyselyPlugin = {
        transformQuery(args) {
          if (args.node.kind === 'DeleteQueryNode') deletes.add(args.queryId);
          return args.node;
        },
        async transformResult(args) {
          if (deletes.delete(args.queryId)) statements.push(Number(args.result.numAffectedRows));
          return args.result;
        },
      };
      const ctx = setup({ db: database.db.withPlugin(counting) });
      const other = setup();
      const ended = new Date(ctx.clock.now().getTime() - 25 * HOUR).toISOString();
      const rows = (tenant: string, n: number) =>
        Array.from({ length: n }, (_, i) => ({
          tenant,
          lookup_hash: `${String(i).padStart(4, '0')}-ended`,
          mail_window_start: ended,
          mails: 5,
          failure_window_start: i % 2 === 0 ? null : ended,
          failures: i % 2,
        }));
      await database.db
        .insertInto('privacykit_requests_identity_limits')
        .values(rows(ctx.tenant, 25))
        .execute();
      await database.db
        .insertInto('privacykit_requests_identity_limits')
        .values(rows(other.tenant, 3))
        .execute();

      expect(await ctx.service.pruneThrottles({ batchSize: 10 })).toBe(25);
      expect(statements).toEqual([10, 10, 5]);
      expect(await counters(ctx.tenant)).toEqual([]);
      expect(await counters(other.tenant)).toHaveLength(3);
      for (const batchSize of [0, 1.5, 5_001]) {
        await expectCode(ctx.service.pruneThrottles({ batchSize }), 'requests/invalid-input');
      }
    });

    it('prunes by itself at most once an hour, after a submission, and its failure fails no caller', async () => {
      const ctx = setup({ mailThrottle: { maxMails: 5, windowHours: 0.25 } });
      const file = async (email: string) => {
        const result = await ctx.service.submit(access(email));
        await ctx.service.whenIdle();
        return result;
      };
      await file('a@example.com'); // the instance's first prune: nothing has ended yet
      ctx.clock.advance(20 * MINUTE);
      await file('b@example.com');
      ctx.clock.advance(39 * MINUTE);
      await file('c@example.com');
      // a@'s window ended 44 minutes ago, b@'s 4: still there, the last prune was 59 minutes ago.
      expect(await countersFor(ctx.tenant)).toEqual(
        ['a@example.com', 'b@example.com', 'c@example.com'].map(hashOf).sort(),
      );
      ctx.clock.advance(MINUTE);
      await file('d@example.com');
      expect(await countersFor(ctx.tenant)).toEqual(['c@example.com', 'd@example.com'].map(hashOf).sort());

      // A prune that fails (here every delete) is not the caller's failure: the submission is
      // answered and stored, and `whenIdle` resolves. Called explicitly, it throws.
      const failing = failingDeletes('the disk is full');
      const broken = createRequestService({
        secret: SECRET,
        db: database.db.withPlugin(failing),
        policy: ctx.policy,
        clock: ctx.clock,
        mailer: ctx.mailer,
        mailThrottle: { maxMails: 5, windowHours: 0.25 },
      });
      // c@'s and d@'s windows have ended: the background prune tries to delete them.
      ctx.clock.advance(HOUR);
      expect((await broken.submit(access('e@example.com'))).status).toBe('identity-pending');
      await broken.whenIdle();
      expect(await countersFor(ctx.tenant)).toEqual(
        ['c@example.com', 'd@example.com', 'e@example.com'].map(hashOf).sort(),
      );
      await expect(broken.pruneThrottles()).rejects.toThrow('the disk is full');
    });

    it('keeps a counter its identity used again while the prune ran: the delete checks its windows again', async () => {
      // The other node submits on connections of its own (this one's is busy with the prune's read).
      const rival = await openDatabase({ url: database.url, poolSize: 2 });
      try {
        const usedMeanwhile = afterLimitsRead(async () => {
          // After the prune read the row as ended, and before it deletes it, another submission
          // naming the identity takes a mail: a fresh window opens in that very row.
          const other = createRequestService({
            secret: SECRET,
            mailThrottle,
            db: rival,
            policy: ctx.policy,
            clock: ctx.clock,
            mailer: ctx.mailer,
          });
          expect((await other.submit(filed('erasure', email, undefined))).mailThrottled).toBe(false);
          await other.whenIdle();
        });
        const email = 'returning@example.com';
        const mailThrottle = { maxMails: 1, windowHours: 24 };
        const ctx = setup({ mailThrottle, db: database.db.withPlugin(usedMeanwhile) });
        await submitted(ctx, email);
        ctx.clock.advance(24 * HOUR);
        usedMeanwhile.arm();
        expect(await ctx.service.pruneThrottles()).toBe(0);
        expect(usedMeanwhile.fired()).toBe(true);
        expect(await counters(ctx.tenant)).toEqual([
          expect.objectContaining({
            lookup_hash: hashOf(email),
            mails: 1,
            mail_window_start: ctx.clock.now().toISOString(),
          }),
        ]);
        // The window the other submission opened holds: its budget (one mail) is spent.
        expect((await ctx.service.submit(filed('portability', email, undefined))).mailThrottled).toBe(true);
      } finally {
        await rival.destroy();
      }
    });

    /**
     * Keeps a service from deleting counters, so its background prune cannot delete what a failed
     * call left behind before the test looks.
     */
    const noPruning = failingDeletes('not pruning here');

    it('a resend that fails at its last write leaves no counter for its identity', async () => {
      const mailThrottle = { maxMails: 5, windowHours: 24 };
      const ctx = setup({ mailThrottle });
      const email = 'resent@example.com';
      const { requestId } = await submitted(ctx, email);
      // The submission's mail window ends and its counter is pruned; the request still waits.
      ctx.clock.advance(24 * HOUR);
      expect(await ctx.service.pruneThrottles()).toBe(1);
      // The resend fails at its last write, the new challenge (a lost connection, a full disk):
      // it rolls back whole, and the counter its mail would have opened must not outlive it.
      const failed = createRequestService({
        secret: SECRET,
        mailThrottle,
        db: database.db.withPlugin(failingAt('privacykit_requests_challenges')).withPlugin(noPruning),
        policy: ctx.policy,
        clock: ctx.clock,
        mailer: ctx.mailer,
      });
      await expect(failed.resendChallenge(requestId)).rejects.toThrow('the disk is full');
      await failed.whenIdle();
      expect(await counters(ctx.tenant)).toEqual([]);
      expect(ctx.mailsTo(email)).toHaveLength(1);

      // The same resend, once it goes through, mails a code and counts it.
      expect(await ctx.service.resendChallenge(requestId)).toEqual({ mailThrottled: false });
      await ctx.service.whenIdle();
      expect(ctx.mailsTo(email)).toHaveLength(2);
      expect(await counters(ctx.tenant)).toEqual([
        expect.objectContaining({
          lookup_hash: hashOf(email),
          mails: 1,
          mail_window_start: ctx.clock.now().toISOString(),
        }),
      ]);
    });

    it('a code that fails at its last write, right or wrong, leaves no counter for its identity', async () => {
      // Mail windows of 6 minutes, so the counter of the submission's mail is pruned while its
      // 10-minute code still works.
      const mailThrottle = { maxMails: 5, windowHours: 0.1 };
      const ctx = setup({ mailThrottle });
      const email = 'coded@example.com';
      const { requestId, mail } = await submitted(ctx, email);
      const right = codeIn(mail!.text);
      const wrong = right === '000000' ? '111111' : '000000';
      ctx.clock.advance(6 * MINUTE);
      expect(await ctx.service.pruneThrottles()).toBe(1);
      const failingService = (plugin: KyselyPlugin) =>
        createRequestService({
          secret: SECRET,
          mailThrottle,
          db: database.db.withPlugin(plugin).withPlugin(noPruning),
          policy: ctx.policy,
          clock: ctx.clock,
          mailer: ctx.mailer,
        });

      // A wrong code whose failure cannot be recorded (the audit entry is its last write): the
      // attempt it took from the identity's wrong-code budget goes with it.
      const wrongFails = failingService(failingAt('privacykit_requests_audit', '"verification-failed"'));
      await expect(wrongFails.verify({ requestId, code: wrong })).rejects.toThrow('the disk is full');
      await wrongFails.whenIdle();
      expect(await counters(ctx.tenant)).toEqual([]);
      // The right code, failing at the audit of the transition to verified, its last write.
      const rightFails = failingService(failingAt('privacykit_requests_audit', '"transition"'));
      await expect(rightFails.verify({ requestId, code: right })).rejects.toThrow('the disk is full');
      await rightFails.whenIdle();
      expect(await counters(ctx.tenant)).toEqual([]);
      expect((await ctx.service.get(requestId)).status).toBe('identity-pending');

      // Neither counted: a wrong code recorded now is the request's first, and the right code verifies.
      await expectCode(ctx.service.verify({ requestId, code: wrong }), 'requests/verification-failed');
      expect(
        (await ctx.service.audit(requestId)).filter((entry) => entry.action === 'verification-failed'),
      ).toEqual([expect.objectContaining({ data: { failures: 1 } })]);
      expect(await counters(ctx.tenant)).toEqual([
        expect.objectContaining({ lookup_hash: hashOf(email), failures: 1 }),
      ]);
      expect((await ctx.service.verify({ requestId, code: right })).status).toBe('verified');
    });

    // SQLite holds the write lock from the start of a transaction: no prune can run inside one.
    it.skipIf(engine.engine === 'sqlite')(
      'a counter pruned between its read and its update is created afresh, not taken for a spent budget',
      async () => {
        const email = 'raced@example.com';
        const prunedMeanwhile = afterLimitsRead(async () => {
          // Another node's prune, after this transaction read the row and before it updates it.
          await database.db
            .deleteFrom('privacykit_requests_identity_limits')
            .where('tenant', '=', ctx.tenant)
            .where('lookup_hash', '=', hashOf(email))
            .execute();
        });
        const ctx = setup({
          db: database.db.withPlugin(prunedMeanwhile),
          mailThrottle: { maxMails: 1, windowHours: 24 },
        });
        const { requestId } = await submitted(ctx, email);
        ctx.clock.advance(24 * HOUR);
        prunedMeanwhile.arm();
        expect(await ctx.service.resendChallenge(requestId)).toEqual({ mailThrottled: false });
        expect(prunedMeanwhile.fired()).toBe(true);
        await ctx.service.whenIdle();
        expect(ctx.mailsTo(email)).toHaveLength(2);
        expect(await counters(ctx.tenant)).toEqual([
          expect.objectContaining({
            lookup_hash: hashOf(email),
            mails: 1,
            mail_window_start: ctx.clock.now().toISOString(),
          }),
        ]);
      },
    );
  });

  describe('deadlines, extensions and pauses (Art 12(3), hostile cases 7 and 8)', () => {
    it('sets the deadline to the same date next month in the controller zone, clamped', async () => {
      const ctx = setup({ start: '2024-01-31T22:59:00Z' }); // 23:59 in Paris on 31 Jan
      const { requestId } = await ctx.service.submit(access('jan@example.com'));
      const record = await ctx.service.get(requestId);
      expect(record).toMatchObject({
        receivedDate: '2024-01-31',
        deadline: '2024-02-29',
        effectiveDeadline: '2024-02-29',
      });
      ctx.clock.set('2024-01-31T23:45:00Z');
      const late = await ctx.service.submit(
        access('feb@example.com', { receivedAt: '2024-01-31T23:30:00Z' }),
      );
      expect((await ctx.service.get(late.requestId)).deadline).toBe('2024-03-01');
    });

    it('moves a deadline off a public holiday when holidays are configured', async () => {
      const ctx = setup({ start: '2024-06-14T09:00:00Z', holidays: ['2024-07-14'] });
      const { requestId } = await ctx.service.submit(access('holiday@example.com'));
      expect((await ctx.service.get(requestId)).deadline).toBe('2024-07-15');
    });

    it('extends by two further months with reasons within the first month, and tells the subject', async () => {
      const ctx = setup();
      const id = await verified(ctx, 'ext@example.com');
      ctx.clock.set('2024-02-20T10:00:00Z');
      const record = await ctx.service.extend(id, {
        months: 2,
        reasons: ['42 tables to search across 3 systems'],
        by: 'staff:eve',
      });
      expect(record.extension).toEqual({ months: 2, reasons: ['42 tables to search across 3 systems'] });
      expect(record.extendedDeadline).toBe('2024-04-30');
      expect(record.effectiveDeadline).toBe('2024-04-30');
      const notice = ctx.mailsTo('ext@example.com').at(-1)!;
      expect(notice.text).toContain('42 tables to search');
      expect(notice.text).toContain('2024-04-30');
      const extended = (await ctx.service.audit(id)).find((entry) => entry.action === 'extended')!;
      expect(extended).toMatchObject({ by: 'staff:eve', reason: '42 tables to search across 3 systems' });
      await expectCode(
        ctx.service.extend(id, { months: 1, reasons: ['more'], by: 'staff:eve' }),
        'requests/extension-limit',
      );
    });

    it('refuses an extension after the first month or without reasons, writing nothing (case 8)', async () => {
      const ctx = setup();
      const id = await verified(ctx, 'noext@example.com');
      const other = await verified(ctx, 'noext2@example.com');
      const auditBefore = (await ctx.service.audit(id)).length;
      await expectCode(
        ctx.service.extend(id, { months: 1, reasons: [], by: 'staff:eve' }),
        'requests/extension-reasons-required',
      );
      await expectCode(
        ctx.service.extend(id, { months: 1, reasons: ['  '], by: 'staff:eve' }),
        'requests/extension-reasons-required',
      );
      await expectCode(
        ctx.service.extend(id, { months: 1, by: 'staff:eve' } as never),
        'requests/extension-reasons-required',
      );
      ctx.clock.set('2024-02-29T22:59:00Z'); // 23:59 in Paris on the last day of month one: still in time
      const inTime = await ctx.service.extend(id, { months: 1, reasons: ['complex'], by: 'staff:eve' });
      expect(inTime.effectiveDeadline).toBe('2024-03-31');
      ctx.clock.set('2024-02-29T23:00:00Z'); // 00:00 on 1 Mar in Paris: month one is over
      await expectCode(
        ctx.service.extend(other, { months: 1, reasons: ['complex'], by: 'staff:eve' }),
        'requests/extension-too-late',
      );
      const record = await ctx.service.get(other);
      expect(record.extension.months).toBe(0);
      expect((await ctx.service.audit(id)).length).toBe(auditBefore + 2); // the extension and its notice
    });

    it('lists overdue and due-soon requests', async () => {
      const ctx = setup({ start: '2024-03-01T10:00:00Z' });
      const early = await ctx.service.submit(access('early@example.com'));
      ctx.clock.set('2024-03-20T10:00:00Z');
      const later = await ctx.service.submit(access('later@example.com'));
      const done = await verified(ctx, 'done@example.com', { receivedAt: '2024-03-01T09:00:00Z' } as never);
      await ctx.service.transition(done, { to: 'in-progress', by: 'staff:eve' });
      await ctx.service.transition(done, { to: 'completed', by: 'staff:eve', reason: 'export sent' });
      ctx.clock.set('2024-04-02T10:00:00Z');
      const overdue = await ctx.service.list({ overdue: true });
      expect(overdue.map((request) => request.id)).toEqual([early.requestId]);
      expect((await ctx.service.list({ dueBefore: '2024-04-20' })).map((r) => r.id)).toEqual([
        early.requestId,
      ]);
      expect((await ctx.service.list({ dueBefore: '2024-04-21' })).map((r) => r.id)).toEqual([
        early.requestId,
        later.requestId,
      ]);
      expect((await ctx.service.dueSoon({ days: 30 })).map((r) => r.id)).toEqual([later.requestId]);
      expect((await ctx.service.dueSoon({ days: 7 })).map((r) => r.id)).toEqual([]);
    });

    it('pauses the clock while identity is checked only when asked to', async () => {
      const paused = setup({ pauseWhileVerifying: true });
      const { requestId, mail } = await submitted(paused, 'slow@example.com');
      paused.clock.advance(3 * DAY);
      await paused.service.resendChallenge(requestId);
      await paused.service.whenIdle();
      const fresh = paused.mailsTo('slow@example.com').at(-1)!;
      expect(fresh).not.toBe(mail);
      await paused.service.verify({ requestId, code: codeIn(fresh.text) });
      const record = await paused.service.get(requestId);
      expect(record).toMatchObject({
        deadline: '2024-02-29',
        pausedDays: 3,
        effectiveDeadline: '2024-03-03',
      });

      const running = setup();
      const other = await submitted(running, 'fast@example.com');
      running.clock.advance(3 * DAY);
      await running.service.resendChallenge(other.requestId);
      await running.service.whenIdle();
      await running.service.verify({
        requestId: other.requestId,
        code: codeIn(running.mailsTo('fast@example.com').at(-1)!.text),
      });
      expect(await running.service.get(other.requestId)).toMatchObject({
        pausedDays: 0,
        effectiveDeadline: '2024-02-29',
      });

      // A letter received on 14 February, entered on 4 March and confirmed at once: the clock
      // ran from receipt, and the weeks before the code was sent pause nothing.
      const letter = setup({ pauseWhileVerifying: true, start: '2024-03-04T09:00:00Z' });
      const posted = await letter.service.submit(
        access('letter@example.com', { receivedAt: '2024-02-14T10:00:00Z' }),
      );
      await letter.service.whenIdle();
      letter.clock.advance(MINUTE);
      await letter.service.verify({
        requestId: posted.requestId,
        code: codeIn(letter.mailsTo('letter@example.com').at(-1)!.text),
      });
      expect(await letter.service.get(posted.requestId)).toMatchObject({
        receivedDate: '2024-02-14',
        deadline: '2024-03-14',
        pausedDays: 0,
        effectiveDeadline: '2024-03-14',
      });
    });

    it('a duplicate received earlier (a letter entered after the online request) moves the receipt and the deadlines earlier', async () => {
      const ctx = setup({ start: '2024-01-31T10:00:00Z' });
      const web = await ctx.service.submit(access('twice@example.com'));
      expect(await ctx.service.get(web.requestId)).toMatchObject({
        receivedDate: '2024-01-31',
        deadline: '2024-02-29',
      });
      // The subject's letter reached the controller on 20 January.
      const posted = await ctx.service.submit(
        access('twice@example.com', { channel: 'post', receivedAt: '2024-01-20T09:00:00Z' }),
      );
      expect(posted.duplicateOf).toBe(web.requestId);
      expect(await ctx.service.get(web.requestId)).toMatchObject({
        receivedDate: '2024-01-20',
        deadline: '2024-02-20',
        effectiveDeadline: '2024-02-20',
      });
      const entry = (await ctx.service.audit(web.requestId)).find((e) => e.action === 'duplicate-submission');
      expect(entry?.data).toMatchObject({
        receivedAt: '2024-01-20T09:00:00.000Z',
        earlierReceipt: { from: '2024-01-31T10:00:00.000Z', to: '2024-01-20T09:00:00.000Z' },
      });
      // A later duplicate leaves the first receipt alone.
      await ctx.service.submit(access('twice@example.com', { receivedAt: '2024-01-25T09:00:00Z' }));
      expect(await ctx.service.get(web.requestId)).toMatchObject({
        receivedDate: '2024-01-20',
        deadline: '2024-02-20',
      });
    });
  });

  describe('state machine, denial and audit (Art 12(4), R14)', () => {
    it('rejects illegal transitions with a typed error and writes nothing', async () => {
      const ctx = setup();
      const { requestId } = await ctx.service.submit(access('sm@example.com'));
      const auditBefore = (await ctx.service.audit(requestId)).length;
      await expectCode(
        ctx.service.transition(requestId, { to: 'completed', by: 'staff:eve' }),
        'requests/illegal-transition',
      );
      await expectCode(
        ctx.service.transition(requestId, { to: 'in-progress', by: 'staff:eve' }),
        'requests/illegal-transition',
      );
      expect((await ctx.service.get(requestId)).status).toBe('identity-pending');
      expect((await ctx.service.audit(requestId)).length).toBe(auditBefore);
      await expectCode(
        ctx.service.transition('nope', { to: 'denied', by: 'staff:eve', reason: 'x' }),
        'requests/not-found',
      );
    });

    it('goes through waiting-on-subject and back, auditing who, when, from, to and why', async () => {
      const ctx = setup();
      const id = await verified(ctx, 'flow@example.com');
      await ctx.service.assign(id, { assignee: 'staff:eve', by: 'staff:lead' });
      await ctx.service.transition(id, { to: 'in-progress', by: 'staff:eve' });
      ctx.clock.advance(DAY);
      await ctx.service.transition(id, {
        to: 'waiting-on-subject',
        by: 'staff:eve',
        reason: 'which account?',
      });
      await expectCode(
        ctx.service.transition(id, { to: 'completed', by: 'staff:eve' }),
        'requests/illegal-transition',
      );
      await ctx.service.transition(id, { to: 'in-progress', by: 'staff:eve', reason: 'answered' });
      const done = await ctx.service.transition(id, {
        to: 'completed',
        by: 'staff:eve',
        reason: 'export delivered',
      });
      expect(done.outcome).toEqual({
        status: 'completed',
        at: '2024-02-01T10:00:00.000Z',
        summary: 'export delivered',
      });
      expect(done.assignee).toBe('staff:eve');
      const trail = (await ctx.service.audit(id)).filter((entry) => entry.action === 'transition');
      expect(trail.slice(-4)).toMatchObject([
        { by: 'staff:eve', from: 'verified', to: 'in-progress', at: '2024-01-31T10:00:00.000Z' },
        {
          by: 'staff:eve',
          from: 'in-progress',
          to: 'waiting-on-subject',
          reason: 'which account?',
          at: '2024-02-01T10:00:00.000Z',
        },
        { from: 'waiting-on-subject', to: 'in-progress', reason: 'answered' },
        { from: 'in-progress', to: 'completed', reason: 'export delivered' },
      ]);
      await expectCode(
        ctx.service.transition(id, { to: 'in-progress', by: 'staff:eve' }),
        'requests/illegal-transition',
      );
    });

    it('requires a reason to deny and attaches the remedies, mailed to the subject', async () => {
      const ctx = setup();
      const id = await verified(ctx, 'deny@example.com');
      await expectCode(
        ctx.service.transition(id, { to: 'denied', by: 'staff:eve' }),
        'requests/reason-required',
      );
      await expectCode(
        ctx.service.transition(id, { to: 'denied', by: 'staff:eve', reason: '   ' }),
        'requests/reason-required',
      );
      const denied = await ctx.service.transition(id, {
        to: 'denied',
        by: 'staff:eve',
        reason: 'manifestly unfounded',
      });
      expect(denied.outcome?.status).toBe('denied');
      if (denied.outcome?.status !== 'denied') throw new Error('unreachable');
      expect(denied.outcome.reason).toBe('manifestly unfounded');
      expect(denied.outcome.remedies.map((remedy) => remedy.kind)).toEqual(['complaint', 'judicial']);
      expect(denied.outcome.remedies[0]).toMatchObject({ authority: { name: 'the CNIL' } });
      const notice = ctx.mailsTo('deny@example.com').at(-1)!;
      expect(notice.text).toContain('manifestly unfounded');
      expect(notice.text).toContain('the CNIL');
      expect(notice.text).toContain('Art. 79');
    });
  });

  describe('arguments that are not what the types say (plain JavaScript callers)', () => {
    it('gives requests/invalid-input, not a TypeError, and writes nothing', async () => {
      const ctx = setup();
      const id = await verified(ctx, 'args@example.com');
      const before = JSON.stringify(await allRows(database.db, 'privacykit_requests_requests'));
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['extend', () => ctx.service.extend(id, null as never)],
        ['assign', () => ctx.service.assign(id, null as never)],
        ['dueSoon', () => ctx.service.dueSoon(null as never)],
        ['pruneThrottles', () => ctx.service.pruneThrottles(null as never)],
        ['get', () => ctx.service.get({} as never)],
        ['transition', () => ctx.service.transition(42 as never, { to: 'in-progress', by: 'staff:eve' })],
      ];
      for (const [name, call] of calls)
        await expectCode(call(), 'requests/invalid-input').catch((error) => {
          throw new Error(`${name}: ${String(error)}`);
        });
      expect(JSON.stringify(await allRows(database.db, 'privacykit_requests_requests'))).toBe(before);
    });
  });

  describe('details per right', () => {
    it('validates each right’s details and writes nothing on bad input', async () => {
      const ctx = setup();
      const identities = [{ kind: 'email', value: 'details@example.com' }];
      const before = (await allRows(database.db, 'privacykit_requests_requests')).length;
      const bad: unknown[] = [
        { right: 'rectification', identities, details: { changes: [] } },
        { right: 'objection', identities, details: { kind: 'particular-situation' } },
        { right: 'withdraw-consent', identities, details: { purposes: ['unknown-purpose'] } },
        { right: 'restriction', identities, details: { ground: 'because' } },
        { right: 'complaint', identities },
        { right: 'access', identities: [] },
        { right: 'access', identities: [{ kind: 'email', value: 'not an address' }] },
        // A NUL in an address or a customer number: stored, hashed and mailed to as it was.
        { right: 'access', identities: [{ kind: 'email', value: 'victim\u0000x@example.org' }] },
        // Mailed to victim@example.com, each under a throttle of its own (a mail cannon before).
        { right: 'access', identities: [{ kind: 'email', value: 'x0<victim@example.com>' }] },
        { right: 'access', identities: [{ kind: 'email', value: '"x" <victim@example.com>' }] },
        { right: 'access', identities: [{ kind: 'email', value: 'victim@example.com.' }] },
        { right: 'access', identities: [...identities, { kind: 'customerNumber', value: 'C-1\u0007' }] },
        // An executor whose address is none: they could never prove it to act on the directive.
        {
          right: 'post-mortem-directives',
          identities,
          details: {
            action: 'give',
            kind: 'general',
            instructions: 'Erase everything.',
            executor: { name: 'Eva', email: 'not-an-address' },
          },
        },
      ];
      for (const input of bad) {
        await expectCode(ctx.service.submit(input as SubmitRequestInput), 'requests/invalid-input');
      }
      expect((await allRows(database.db, 'privacykit_requests_requests')).length).toBe(before);
      const marketing = await ctx.service.submit({
        right: 'objection',
        identities,
        details: { kind: 'direct-marketing', purposes: ['newsletter'] },
      });
      const rectification = await ctx.service.submit({
        right: 'rectification',
        identities,
        details: { changes: [{ field: 'name', current: 'Ada Lovelase', corrected: 'Ada Lovelace' }] },
      });
      expect((await ctx.service.get(marketing.requestId)).details).toEqual({
        kind: 'direct-marketing',
        purposes: ['newsletter'],
      });
      expect((await ctx.service.get(rectification.requestId)).details).toMatchObject({
        changes: [{ field: 'name', corrected: 'Ada Lovelace' }],
      });
    });
  });

  describe('post-mortem directives (LIL art. 85, hostile case 28)', () => {
    async function completeVerified(ctx: ReturnType<typeof setup>, input: SubmitRequestInput, email: string) {
      const { requestId } = await ctx.service.submit(input);
      await ctx.service.whenIdle();
      await ctx.service.verify({ requestId, code: codeIn(ctx.mailsTo(email).at(-1)!.text) });
      await ctx.service.transition(requestId, { to: 'in-progress', by: 'staff:eve' });
      return requestId;
    }

    it('records, executes and revokes directives; a revoked one is never executed', async () => {
      const ctx = setup();
      const dan = [{ kind: 'email', value: 'dan@example.com' }];
      const give = await completeVerified(
        ctx,
        {
          right: 'post-mortem-directives',
          identities: dan,
          details: {
            action: 'give',
            kind: 'general',
            instructions: 'Erase everything.',
            executor: { name: 'Eva', email: 'Eva@example.com' },
          },
        },
        'dan@example.com',
      );
      await ctx.service.transition(give, { to: 'completed', by: 'staff:eve' });
      const [directive] = await ctx.service.directivesFor(dan);
      expect(directive).toMatchObject({
        id: give,
        kind: 'general',
        status: 'active',
        executor: { name: 'Eva' },
      });

      const execute = (requester: 'executor' | 'heir') =>
        ({
          right: 'post-mortem-directives',
          identities: [
            { kind: 'email', value: requester === 'executor' ? 'eva@example.com' : 'heir@example.com' },
          ],
          details: {
            action: 'execute',
            directiveId: give,
            requester,
            deceased: dan[0],
            proofOfDeath: { kind: 'death-certificate', reference: 'DC-1' },
            ...(requester === 'heir'
              ? { proofOfStanding: { kind: 'notarial-deed', reference: 'ND-9' } }
              : {}),
          },
        }) as SubmitRequestInput;

      const byExecutor = await completeVerified(ctx, execute('executor'), 'eva@example.com');
      expect((await ctx.service.get(byExecutor)).status).toBe('in-progress');

      const revoke = await completeVerified(
        ctx,
        {
          right: 'post-mortem-directives',
          identities: dan,
          details: { action: 'revoke', directiveId: give },
        },
        'dan@example.com',
      );
      await ctx.service.transition(revoke, { to: 'completed', by: 'staff:eve' });
      expect((await ctx.service.directivesFor(dan))[0]?.status).toBe('revoked');

      await expectCode(
        ctx.service.transition(byExecutor, { to: 'completed', by: 'staff:eve' }),
        'requests/directive-revoked',
      );
      const { requestId: late } = await ctx.service.submit(execute('heir'));
      await ctx.service.whenIdle();
      await ctx.service.verify({
        requestId: late,
        code: codeIn(ctx.mailsTo('heir@example.com').at(-1)!.text),
      });
      await expectCode(
        ctx.service.transition(late, { to: 'in-progress', by: 'staff:eve' }),
        'requests/directive-revoked',
      );
      expect((await ctx.service.get(late)).status).toBe('verified');
    });

    it('a revocation sent while the directive it revokes is still open is a request of its own; the same directive sent again is a duplicate', async () => {
      const ctx = setup();
      const olga = [{ kind: 'email', value: 'olga@example.com' }];
      const directive = {
        right: 'post-mortem-directives',
        identities: olga,
        details: { action: 'give', kind: 'general', instructions: 'Close my accounts.' },
      } as SubmitRequestInput;
      const given = await ctx.service.submit(directive);
      expect((await ctx.service.submit(directive)).duplicateOf).toBe(given.requestId);
      const revoked = await ctx.service.submit({
        right: 'post-mortem-directives',
        identities: olga,
        details: { action: 'revoke', directiveId: given.requestId },
      });
      expect(revoked.duplicateOf).toBeNull();
      expect(revoked.requestId).not.toBe(given.requestId);
      expect((await ctx.service.get(revoked.requestId)).details).toEqual({
        action: 'revoke',
        directiveId: given.requestId,
      });
      // A particular directive given meanwhile is a third request, not folded into the general one.
      const particular = await ctx.service.submit({
        ...directive,
        details: { action: 'give', kind: 'particular', instructions: 'Keep my photos.' },
      } as SubmitRequestInput);
      expect(particular.duplicateOf).toBeNull();
      expect(new Set([given.requestId, revoked.requestId, particular.requestId]).size).toBe(3);
    });

    it('refuses an heir without proof and a stranger posing as executor', async () => {
      const ctx = setup();
      const before = (await allRows(database.db, 'privacykit_requests_requests')).length;
      await expectCode(
        ctx.service.submit({
          right: 'post-mortem-directives',
          identities: [{ kind: 'email', value: 'heir@example.com' }],
          details: {
            action: 'execute',
            requester: 'heir',
            deceased: { kind: 'email', value: 'gone@example.com' },
            proofOfDeath: { kind: 'death-certificate', reference: 'DC-2' },
          },
        }),
        'requests/proof-required',
      );
      await expectCode(
        ctx.service.submit({
          right: 'post-mortem-directives',
          identities: [{ kind: 'email', value: 'heir@example.com' }],
          details: {
            action: 'execute',
            requester: 'heir',
            deceased: { kind: 'email', value: 'gone@example.com' },
          },
        }),
        'requests/proof-required',
      );
      expect((await allRows(database.db, 'privacykit_requests_requests')).length).toBe(before);

      const gone = [{ kind: 'email', value: 'gone@example.com' }];
      const give = await completeVerified(
        ctx,
        {
          right: 'post-mortem-directives',
          identities: gone,
          details: {
            action: 'give',
            kind: 'particular',
            instructions: 'Send my photos to Eva.',
            executor: { name: 'Eva', email: 'eva@example.com' },
          },
        },
        'gone@example.com',
      );
      await ctx.service.transition(give, { to: 'completed', by: 'staff:eve' });
      const stranger = await completeVerified(
        ctx,
        {
          right: 'post-mortem-directives',
          identities: [{ kind: 'email', value: 'mallory@example.com' }],
          details: {
            action: 'execute',
            directiveId: give,
            requester: 'executor',
            deceased: gone[0]!,
            proofOfDeath: { kind: 'death-certificate', reference: 'forged' },
          },
        },
        'mallory@example.com',
      ).catch((error: unknown) => error);
      expect(isPrivacyKitError(stranger, 'requests/not-executor')).toBe(true);

      // An heir with proof may go ahead.
      const heir = await completeVerified(
        ctx,
        {
          right: 'post-mortem-directives',
          identities: [{ kind: 'email', value: 'heir@example.com' }],
          details: {
            action: 'execute',
            directiveId: give,
            requester: 'heir',
            deceased: gone[0]!,
            proofOfDeath: { kind: 'death-certificate', reference: 'DC-3' },
            proofOfStanding: { kind: 'notarial-deed', reference: 'ND-3' },
          },
        },
        'heir@example.com',
      );
      expect((await ctx.service.transition(heir, { to: 'completed', by: 'staff:eve' })).status).toBe(
        'completed',
      );
    });
  });

  describe('history, tenancy and secrets', () => {
    it('exports a subject’s requests and audit as plain JSON without secrets', async () => {
      const ctx = setup();
      const id = await verified(ctx, 'hist@example.com');
      await ctx.service.transition(id, { to: 'in-progress', by: 'staff:eve' });
      ctx.clock.advance(MINUTE);
      await ctx.service.submit({
        right: 'erasure',
        identities: [
          { kind: 'email', value: 'hist@example.com' },
          { kind: 'email', value: 'someone.else@example.com' },
        ],
      });
      const history = await ctx.service.historyFor([{ kind: 'email', value: 'HIST@example.com' }]);
      expect(history.requests.map((request) => request.right)).toEqual(['access', 'erasure']);
      expect(history.audit.some((entry) => entry.requestId === id && entry.to === 'in-progress')).toBe(true);
      const json = JSON.stringify(history);
      expect(JSON.parse(json)).toEqual(history);
      expect(json).not.toContain('someone.else');
      expect(json).not.toMatch(/[0-9a-f]{64}/);
      expect(json).not.toContain('hash');
      expect(json).not.toContain(codeIn(ctx.mailsTo('hist@example.com')[0]!.text));
    });

    it('never shows one tenant’s requests to another', async () => {
      const a = setup();
      const b = setup();
      const id = await verified(a, 'tenant@example.com');
      await expectCode(b.service.get(id), 'requests/not-found');
      await expectCode(
        b.service.getForRequester(id, { kind: 'email', value: 'tenant@example.com' }),
        'requests/not-found',
      );
      expect(await b.service.list()).toEqual([]);
      expect((await b.service.historyFor([{ kind: 'email', value: 'tenant@example.com' }])).requests).toEqual(
        [],
      );
      expect((await b.service.submit(access('tenant@example.com'))).duplicateOf).toBeNull();
    });

    it('creates a per-tenant HMAC key when none is configured', async () => {
      const ctx = setup({ secret: undefined });
      const id = await verified(ctx, 'key@example.com');
      expect((await ctx.service.get(id)).status).toBe('verified');
      const keys = (await allRows(database.db, 'privacykit_requests_secrets')).filter(
        (row) => row.tenant === ctx.tenant,
      );
      expect(keys).toHaveLength(1);
      expect(String(keys[0]?.secret).length).toBeGreaterThanOrEqual(43);
    });
  });
});

/**
 * A plugin that fails every insert into `table` (whose statement also contains `containing`, when
 * given) before it is sent: a write that fails as a lost connection or a full disk would.
 */
function failingAt(table: string, containing?: string): KyselyPlugin {
  return {
    transformQuery(args) {
      const text = JSON.stringify(args.node);
      if (
        args.node.kind === 'InsertQueryNode' &&
        text.includes(`"${table}"`) &&
        (containing === undefined || text.includes(containing))
      )
        throw new Error('the disk is full');
      return args.node;
    },
    async transformResult(args) {
      return args.result;
    },
  };
}

/** A plugin that fails every delete before it is sent, with `message`. */
function failingDeletes(message: string): KyselyPlugin {
  return {
    transformQuery(args) {
      if (args.node.kind === 'DeleteQueryNode') throw new Error(message);
      return args.node;
    },
    async transformResult(args) {
      return args.result;
    },
  };
}

/**
 * A plugin that, once armed, runs `meanwhile` right after the next read of the counter table
 * returns, before the reading transaction goes on: another node acting in between.
 */
function afterLimitsRead(meanwhile: () => Promise<void>): KyselyPlugin & { arm(): void; fired(): boolean } {
  let armed = false;
  let fired = false;
  const reads = new Set<unknown>();
  return {
    arm() {
      armed = true;
    },
    fired: () => fired,
    transformQuery(args) {
      if (
        armed &&
        args.node.kind === 'SelectQueryNode' &&
        JSON.stringify(args.node).includes('"privacykit_requests_identity_limits"')
      )
        reads.add(args.queryId);
      return args.node;
    },
    async transformResult(args) {
      if (reads.delete(args.queryId) && armed) {
        armed = false;
        await meanwhile();
        fired = true;
      }
      return args.result;
    },
  };
}
