import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import type { FixedClock } from '@privacykit/core';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityLookupHash } from './identity.js';
import { requestMigrations } from './migrations.js';
import { createRequestService } from './request-service.js';
import type { RedactionCandidate, RequestServiceOptions, SubmitRequestInput } from './request-service.js';
import { allRows, codeIn, memoryMailer, testPolicy } from './test-support.js';

const DAY = 86_400_000;
const secret = 'a test secret of more than thirty-two bytes!!';

/** Every table of the package, read whole: where personal data could be left behind. */
const TABLES = [
  'privacykit_requests_requests',
  'privacykit_requests_identities',
  'privacykit_requests_challenges',
  'privacykit_requests_audit',
  'privacykit_requests_directives',
  'privacykit_requests_secrets',
  'privacykit_requests_identity_limits',
  'privacykit_requests_submissions',
];

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (!isPrivacyKitError(error, code)) throw error;
    return;
  }
  throw new Error(`expected ${code}, but nothing was thrown`);
}

/** Closed requests a year after closure, never-verified ones 30 days after receipt. */
const yearAfterClosure = (request: RedactionCandidate): Date | null =>
  request.closedAt
    ? new Date(request.closedAt.getTime() + 365 * DAY)
    : new Date(request.receivedAt.getTime() + 30 * DAY);

describe.each(testEngines())('redaction of the request log on $engine', (engine) => {
  let database: TestDatabase;
  let tenantCounter = 0;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    await migrate(database.db, [requestMigrations]);
  });
  afterAll(async () => {
    await database?.destroy();
  });

  function setup(options: Partial<Omit<RequestServiceOptions, 'policy'>> = {}) {
    const tenant = `r${++tenantCounter}-${Date.now().toString(36)}`;
    const clock: FixedClock = fixedClock('2024-01-31T10:00:00Z');
    const mailer = memoryMailer();
    const policy = testPolicy({ tenant });
    const service = createRequestService({
      mailer,
      secret,
      verificationLink: (token) => `https://privacy.example.com/verify/${token}`,
      ...options,
      db: options.db ?? database.db,
      policy,
      clock,
    });
    return { service, clock, mailer, tenant, policy };
  }
  type Ctx = ReturnType<typeof setup>;

  const access = (email: string): SubmitRequestInput => ({
    right: 'access',
    identities: [{ kind: 'email', value: email }],
  });

  async function verifiedRequest(ctx: Ctx, input: SubmitRequestInput): Promise<string> {
    const { requestId } = await ctx.service.submit(input);
    await ctx.service.whenIdle();
    const to = input.identities[0]?.value.toLowerCase();
    const mail = ctx.mailer.sent.filter((m) => m.to === to).at(-1);
    if (!mail) throw new Error('no challenge mail');
    await ctx.service.verify({ requestId, code: codeIn(mail.text) });
    return requestId;
  }

  /** A request taken to `completed`, with staff text on every step that takes some. */
  async function completed(ctx: Ctx, email: string): Promise<string> {
    const id = await verifiedRequest(ctx, access(email));
    await ctx.service.transition(id, { to: 'in-progress', by: 'staff:eve' });
    await ctx.service.extend(id, {
      months: 1,
      reasons: [`${email} has 3 archived accounts`],
      by: 'staff:eve',
    });
    await ctx.service.assign(id, { assignee: 'staff:bob', by: 'staff:eve' });
    await ctx.service.transition(id, { to: 'completed', by: 'staff:eve', reason: `export sent to ${email}` });
    return id;
  }

  /** Where `needle` appears in any column of any row of this tenant's tables. */
  async function occurrences(tenant: string, needle: string): Promise<string[]> {
    const found: string[] = [];
    for (const table of TABLES) {
      for (const row of await allRows(database.db, table)) {
        if (row.tenant !== tenant) continue;
        for (const [column, value] of Object.entries(row)) {
          if (value !== null && String(value).toLowerCase().includes(needle.toLowerCase()))
            found.push(`${table}.${column}`);
        }
      }
    }
    return found;
  }

  const hashOf = (email: string) => identityLookupHash(secret, 'email', email.toLowerCase());

  it('strips a due closed request of every trace of its subject and keeps the evidence', async () => {
    const ctx = setup();
    const id = await completed(ctx, 'Ada@example.com');
    // The same subject's never-verified submission for another right, abandoned.
    await ctx.service.submit({
      right: 'erasure',
      identities: [{ kind: 'email', value: 'ada@example.com' }],
      details: { explanation: 'Ada Lovelace wants out' },
    } as SubmitRequestInput);
    // Sent again with more to say: a duplicate, whose details wait in the audit trail.
    const again = await ctx.service.submit({
      right: 'erasure',
      identities: [{ kind: 'email', value: 'ADA@example.com' }],
      details: { explanation: 'Lovelace again, from the library' },
    } as SubmitRequestInput);
    expect(again.duplicateOf).not.toBeNull();
    await ctx.service.whenIdle();
    expect(await occurrences(ctx.tenant, 'from the library')).toContain('privacykit_requests_audit.data');
    const before = await ctx.service.get(id);
    expect(await occurrences(ctx.tenant, 'ada@example.com')).not.toEqual([]);

    ctx.clock.advance(366 * DAY);
    expect(await ctx.service.redact({ dueAt: yearAfterClosure })).toEqual({
      redacted: 2,
      closed: 1,
      unverified: 1,
    });

    expect(await occurrences(ctx.tenant, 'ada@example.com')).toEqual([]);
    expect(await occurrences(ctx.tenant, hashOf('ada@example.com'))).toEqual([]);
    expect(await occurrences(ctx.tenant, 'archived accounts')).toEqual([]);
    expect(await occurrences(ctx.tenant, 'Lovelace')).toEqual([]);
    expect(await occurrences(ctx.tenant, 'from the library')).toEqual([]);

    const after = await ctx.service.get(id);
    expect(after).toMatchObject({
      id,
      right: 'access',
      channel: 'web',
      status: 'completed',
      details: null,
      receivedAt: before.receivedAt,
      deadline: before.deadline,
      effectiveDeadline: before.effectiveDeadline,
      extension: { months: 1, reasons: [] },
      assignee: 'staff:bob',
      outcome: { status: 'completed', at: before.outcome?.at, summary: null },
      closedAt: before.outcome?.at,
      redactedAt: ctx.clock.now().toISOString(),
      identities: [{ kind: 'email', value: '', verified: true }],
    });
    const audit = await ctx.service.audit(id);
    expect(audit.map((entry) => entry.action)).toEqual([
      'submitted',
      'transition',
      'identity-verified',
      'transition',
      'transition',
      'extended',
      'extension-notice-sent',
      'assigned',
      'transition',
      'redacted',
    ]);
    expect(audit.filter((e) => e.action === 'transition').map((e) => [e.from, e.to, e.by])).toEqual([
      ['received', 'identity-pending', 'system'],
      ['identity-pending', 'verified', 'subject'],
      ['verified', 'in-progress', 'staff:eve'],
      ['in-progress', 'completed', 'staff:eve'],
    ]);
    expect(audit.every((entry) => entry.reason === null)).toBe(true);
    expect(audit.find((e) => e.action === 'extended')?.data).toMatchObject({ months: 1, totalMonths: 1 });

    // The abandoned one is closed by its redaction: it can never be verified any more.
    const [abandoned] = (await ctx.service.list({ right: 'erasure' })) ?? [];
    const code = codeIn(ctx.mailer.sent.filter((m) => m.to === 'ada@example.com').at(-1)?.text ?? '');
    // Its code, live when it was mailed, verifies nothing now; a resend mails nothing.
    const sent = ctx.mailer.sent.length;
    const error = await ctx.service.verify({ requestId: abandoned?.id as string, code }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isPrivacyKitError(error), String(error)).toBe(true);
    expect(await ctx.service.resendChallenge(abandoned?.id as string)).toEqual({ mailThrottled: false });
    expect(ctx.mailer.sent.length).toBe(sent);
    expect((await ctx.service.get(abandoned?.id as string)).status).toBe('cancelled');
    expect(abandoned).toMatchObject({ status: 'cancelled', details: null, outcome: { status: 'cancelled' } });
    expect((await ctx.service.audit(abandoned?.id as string)).at(-1)).toMatchObject({
      action: 'redacted',
      from: 'identity-pending',
      to: 'cancelled',
      data: { category: 'unverified' },
    });
  });

  it('no longer finds a redacted request for its subject, and refuses to act on it', async () => {
    const ctx = setup();
    const ada = [{ kind: 'email', value: 'ada@example.com' }];
    const old = await completed(ctx, 'ada@example.com');
    ctx.clock.advance(200 * DAY);
    const recent = await completed(ctx, 'ada@example.com');
    const open = await verifiedRequest(ctx, { right: 'erasure', identities: ada } as SubmitRequestInput);
    ctx.clock.advance(200 * DAY);
    expect((await ctx.service.redact({ dueAt: yearAfterClosure })).redacted).toBe(1);

    const history = await ctx.service.historyFor(ada);
    expect(history.requests.map((request) => request.id).sort()).toEqual([recent, open].sort());
    expect(history.audit.some((entry) => entry.requestId === old)).toBe(false);
    await expectCode(ctx.service.getForRequester(old, ada), 'requests/not-found');
    expect((await ctx.service.getForRequester(recent, ada)).id).toBe(recent);
    await expectCode(ctx.service.deliveryChannel(old), 'requests/redacted');
    await expectCode(ctx.service.assign(old, { assignee: 'staff:x', by: 'staff:eve' }), 'requests/redacted');
    await expectCode(
      ctx.service.transition(old, { to: 'denied', by: 'staff:eve', reason: 'x' }),
      'requests/redacted',
    );
    await expectCode(
      ctx.service.extend(old, { months: 1, reasons: ['x'], by: 'staff:eve' }),
      'requests/redacted',
    );
    expect(await ctx.service.deliveryChannel(recent)).toBe('ada@example.com');
    // The back office still lists it, without crashing.
    const listed = await ctx.service.list({ status: ['completed'] });
    expect(listed.find((request) => request.id === old)?.redactedAt).not.toBeNull();

    // A new access request is not answered with the redacted one (its slot is gone too).
    const again = await ctx.service.submit({ right: 'access', identities: ada });
    expect(again.duplicateOf).toBeNull();
  });

  it('keeps open, verified and not-yet-due requests exactly as they were', async () => {
    const ctx = setup();
    const closed = await completed(ctx, 'closed@example.com');
    const inProgress = await verifiedRequest(ctx, access('busy@example.com'));
    await ctx.service.transition(inProgress, { to: 'in-progress', by: 'staff:eve' });
    const verified = await verifiedRequest(ctx, access('verified@example.com'));
    ctx.clock.advance(20 * DAY);
    const pending = (await ctx.service.submit(access('pending@example.com'))).requestId;
    await ctx.service.whenIdle();
    const snapshot = async () =>
      Object.fromEntries(
        await Promise.all(
          TABLES.filter((t) => t !== 'privacykit_requests_identity_limits').map(
            async (table) =>
              [
                table,
                (await allRows(database.db, table)).filter((row) => row.tenant === ctx.tenant),
              ] as const,
          ),
        ),
      );
    const before = await snapshot();
    // 20 days after everything: nothing is due.
    expect(await ctx.service.redact({ dueAt: yearAfterClosure })).toEqual({
      redacted: 0,
      closed: 0,
      unverified: 0,
    });
    // Everything would be due, but open verified requests are never asked about.
    const asked: string[] = [];
    ctx.clock.advance(400 * DAY);
    const result = await ctx.service.redact({
      dueAt: (request) => {
        asked.push(request.id);
        return request.right === 'access' && request.status === 'completed' ? null : new Date(0);
      },
      dryRun: true,
    });
    expect(result).toEqual({ redacted: 1, closed: 0, unverified: 1 });
    expect(asked.sort()).toEqual([closed, pending].sort());
    expect(await snapshot()).toEqual(before);
    expect((await ctx.service.get(inProgress)).redactedAt).toBeNull();
    expect((await ctx.service.get(verified)).redactedAt).toBeNull();
  });

  it('never touches post-mortem directives, which outlive the request that gave them', async () => {
    const ctx = setup();
    const dan = [{ kind: 'email', value: 'dan@example.com' }];
    const give = await verifiedRequest(ctx, {
      right: 'post-mortem-directives',
      identities: dan,
      details: { action: 'give', kind: 'general', instructions: 'Erase everything.' },
    } as SubmitRequestInput);
    await ctx.service.transition(give, { to: 'in-progress', by: 'staff:eve' });
    await ctx.service.transition(give, { to: 'completed', by: 'staff:eve' });
    const directives = async () =>
      (await allRows(database.db, 'privacykit_requests_directives')).filter(
        (row) => row.tenant === ctx.tenant,
      );
    const before = await directives();
    expect(before).toHaveLength(1);
    ctx.clock.advance(400 * DAY);
    expect((await ctx.service.redact({ dueAt: yearAfterClosure })).redacted).toBe(1);
    expect(await directives()).toEqual(before);
    expect(await ctx.service.directivesFor(dan)).toMatchObject([
      { id: give, instructions: 'Erase everything.' },
    ]);
    expect((await ctx.service.historyFor(dan)).requests).toEqual([]);
  });

  it('is idempotent and works in batches', async () => {
    const ctx = setup();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await completed(ctx, `batch${i}@example.com`));
    ctx.clock.advance(400 * DAY);
    expect(await ctx.service.redact({ dueAt: yearAfterClosure, batchSize: 3, dryRun: true })).toMatchObject({
      redacted: 7,
    });
    expect(await ctx.service.redact({ dueAt: yearAfterClosure, batchSize: 3 })).toMatchObject({
      redacted: 7,
    });
    const once = (await allRows(database.db, 'privacykit_requests_audit')).filter(
      (row) => row.tenant === ctx.tenant,
    );
    expect(await ctx.service.redact({ dueAt: yearAfterClosure, batchSize: 3 })).toEqual({
      redacted: 0,
      closed: 0,
      unverified: 0,
    });
    const twice = (await allRows(database.db, 'privacykit_requests_audit')).filter(
      (row) => row.tenant === ctx.tenant,
    );
    expect(twice).toEqual(once);
    for (const id of ids) expect((await ctx.service.get(id)).redactedAt).not.toBeNull();
  });

  it('refuses bad options with requests/invalid-input and writes nothing', async () => {
    const ctx = setup();
    const id = await completed(ctx, 'opts@example.com');
    ctx.clock.advance(400 * DAY);
    await expectCode(ctx.service.redact({ dueAt: yearAfterClosure, batchSize: 0 }), 'requests/invalid-input');
    await expectCode(
      ctx.service.redact({ dueAt: yearAfterClosure, batchSize: 1.5 }),
      'requests/invalid-input',
    );
    await expectCode(ctx.service.redact({} as never), 'requests/invalid-input');
    await expectCode(ctx.service.redact({ dueAt: () => new Date('not a date') }), 'requests/invalid-input');
    await expectCode(ctx.service.redact({ dueAt: () => '2020-01-01' as never }), 'requests/invalid-input');
    expect((await ctx.service.get(id)).redactedAt).toBeNull();
  });

  it('leaves every request of a batch that fails midway untouched, and a rerun finishes', async () => {
    const ctx = setup();
    const emails = ['f0@example.com', 'f1@example.com', 'f2@example.com', 'f3@example.com'];
    const ids: string[] = [];
    for (const email of emails) ids.push(await completed(ctx, email));
    ctx.clock.advance(400 * DAY);
    // The disk fills up during the second batch, after its requests were updated and their
    // challenges deleted, inside its transaction: the first batch stays redacted, the second
    // rolls back whole.
    let armed = true;
    let deletes = 0;
    const failing: KyselyPlugin = {
      transformQuery(args) {
        if (
          armed &&
          args.node.kind === 'DeleteQueryNode' &&
          JSON.stringify(args.node.from).includes('"privacykit_requests_submissions"') &&
          ++deletes === 2
        )
          throw new Error('the disk is full');
        return args.node;
      },
      async transformResult(args) {
        return args.result;
      },
    };
    const failed = createRequestService({
      secret,
      db: database.db.withPlugin(failing),
      policy: ctx.policy,
      clock: ctx.clock,
    });
    await expect(failed.redact({ dueAt: yearAfterClosure, batchSize: 2 })).rejects.toThrow(
      'the disk is full',
    );
    const sorted = ids
      .map((id, i) => ({ id, email: emails[i] as string }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const [i, { id, email }] of sorted.entries()) {
      const record = await ctx.service.get(id);
      if (i < 2) {
        expect(record.redactedAt).not.toBeNull();
        expect(await occurrences(ctx.tenant, email)).toEqual([]);
        continue;
      }
      expect(record.redactedAt).toBeNull();
      expect(record.identities[0]?.value).toBe(email);
      expect(record.extension.reasons).toEqual([`${email} has 3 archived accounts`]);
      expect(record.outcome).toMatchObject({ summary: `export sent to ${email}` });
      expect((await ctx.service.historyFor([{ kind: 'email', value: email }])).requests).toHaveLength(1);
      expect((await ctx.service.audit(id)).some((entry) => entry.action === 'redacted')).toBe(false);
    }
    armed = false;
    expect((await failed.redact({ dueAt: yearAfterClosure, batchSize: 2 })).redacted).toBe(2);
    for (const email of emails) expect(await occurrences(ctx.tenant, email)).toEqual([]);
  });
});
