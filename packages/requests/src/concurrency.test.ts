import { fileURLToPath } from 'node:url';
import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import { migrate, openDatabase } from '@privacykit/core/db';
import { createTestDatabase, startWorker, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type {
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryId,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely';
import { describe, expect, it } from 'vitest';
import { identityLookupHash } from './identity.js';
import { requestMigrations } from './migrations.js';
import { createRequestService } from './request-service.js';
import type { RequestService, SubmitRequestInput, SubmitResult } from './request-service.js';
import { allRows, body, startSmtp, testPolicy } from './test-support.js';

const submitter = fileURLToPath(new URL('../test/submitter.ts', import.meta.url));

type Answer = SubmitResult | { error: string };

/** A requester process (`test/submitter.ts`): `ready` once connected, its answers after `go`. */
function startSubmitter(
  url: string,
  order: 'ab' | 'ba',
  subjects: readonly string[],
  options: { at?: string; smtpPort?: number } = {},
) {
  const env = { ...process.env };
  if (options.at) env.PRIVACYKIT_SUBMITTER_AT = options.at;
  if (options.smtpPort) env.PRIVACYKIT_SUBMITTER_SMTP_PORT = String(options.smtpPort);
  const worker = startWorker<Answer[]>(submitter, [url, order, ...subjects], { env });
  return { ready: worker.ready, go: worker.go, answers: worker.outcomes };
}

describe.each(testEngines())('identical submissions at the same instant on $engine', (engine) => {
  it('create one request per subject; every other requester gets the duplicate answer', async () => {
    const database = await createTestDatabase(engine);
    try {
      await migrate(database.db, [requestMigrations]);
      const subjects = ['ana', 'ben', 'chloe', 'dev', 'eli', 'fay'];
      // Four processes, each with its own connections, submit the same requests; half of them list
      // the two identities the other way round (still the same request).
      const processes = (['ab', 'ba', 'ab', 'ba'] as const).map((order) =>
        startSubmitter(database.url, order, subjects),
      );
      await Promise.all(processes.map((p) => p.ready));
      for (const p of processes) p.go();
      const answers = await Promise.all(processes.map((p) => p.answers));

      const requests = await database.db
        .selectFrom('privacykit_requests_requests')
        .select(['id', 'status'])
        .execute();
      expect(requests).toHaveLength(subjects.length);

      for (const [index, subject] of subjects.entries()) {
        const forSubject = answers.map((answer) => answer[index] as Answer);
        expect(forSubject.filter((answer) => 'error' in answer)).toEqual([]);
        const results = forSubject as SubmitResult[];
        const created = results.filter((result) => result.duplicateOf === null);
        expect(created, subject).toHaveLength(1);
        const requestId = created[0]!.requestId;
        // What a sequential duplicate gets: the open request, its status, marked as a duplicate.
        const duplicate = {
          requestId,
          submissionId: expect.any(String),
          status: 'identity-pending',
          duplicateOf: requestId,
          excessive: false,
          mailThrottled: false,
        };
        expect(results.filter((result) => result.duplicateOf !== null)).toEqual([
          duplicate,
          duplicate,
          duplicate,
        ]);
        const actions = (
          await database.db
            .selectFrom('privacykit_requests_audit')
            .select('action')
            .where('request_id', '=', requestId)
            .execute()
        ).map((row) => row.action);
        expect(actions.filter((action) => action === 'submitted')).toHaveLength(1);
        expect(actions.filter((action) => action === 'duplicate-submission')).toHaveLength(3);
        // One challenge per identity of the one request: the subject is mailed once, not four times.
        const challenges = await database.db
          .selectFrom('privacykit_requests_challenges')
          .select('id')
          .where('request_id', '=', requestId)
          .execute();
        expect(challenges).toHaveLength(2);
      }
    } finally {
      await database.destroy();
    }
  }, 120_000);
});

const assigner = fileURLToPath(new URL('../test/assigner.ts', import.meta.url));

/** A staff member's process (`test/assigner.ts`, which says what each op does); it answers `ok` or the error, per call. */
function startStaff(
  url: string,
  op: 'assign' | 'cancel' | 'resend' | 'extend',
  label: string,
  count: number,
  requestIds: string[],
) {
  return startWorker(assigner, [url, op, label, String(count), ...requestIds]);
}

describe.each(testEngines())('staff in two processes working the same requests on $engine', (engine) => {
  async function withRequests(
    count: number,
    work: (database: TestDatabase, ids: string[], service: RequestService) => Promise<void>,
  ) {
    const database = await createTestDatabase(engine);
    try {
      await migrate(database.db, [requestMigrations]);
      const service = createRequestService({
        db: database.db,
        policy: testPolicy(),
        clock: fixedClock('2024-01-31T10:00:00Z'),
        secret: 'a test secret of more than thirty-two bytes!!',
      });
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const submitted = await service.submit({
          right: 'access',
          identities: [{ kind: 'email', value: `busy${i}@example.com` }],
        });
        ids.push(submitted.requestId);
      }
      await service.whenIdle();
      await work(database, ids, service);
    } finally {
      await database.destroy();
    }
  }

  it('every read-then-write succeeds in turn: no raw "database is locked", no assignment lost', async () => {
    await withRequests(1, async (database, [id], service) => {
      const count = 40;
      const staff = ['ann', 'bob'].map((label) =>
        startStaff(database.url, 'assign', label, count, [id as string]),
      );
      await Promise.all(staff.map((p) => p.ready));
      for (const p of staff) p.go();
      const outcomes = (await Promise.all(staff.map((p) => p.outcomes))).flat();
      expect(outcomes.filter((outcome) => outcome !== 'ok')).toEqual([]);
      const assigned = (await service.audit(id as string)).filter((entry) => entry.action === 'assigned');
      expect(assigned).toHaveLength(2 * count);
    });
  }, 120_000);

  it('a subject asking for a fresh code from two tabs at once ends with one live code per identity, never two, and no more mails than the throttle allows', async () => {
    await withRequests(20, async (database, ids, service) => {
      const count = 3;
      const tabs = ['tab1', 'tab2'].map((label) => startStaff(database.url, 'resend', label, count, ids));
      await Promise.all(tabs.map((p) => p.ready));
      for (const p of tabs) p.go();
      const outcomes = (await Promise.all(tabs.map((p) => p.outcomes))).flat();
      expect(outcomes.filter((outcome) => outcome !== 'ok')).toEqual([]);
      for (const id of ids) {
        const live = await database.db
          .selectFrom('privacykit_requests_challenges')
          .select('id')
          .where('request_id', '=', id)
          .where('consumed_at', 'is', null)
          .execute();
        expect(live, id).toHaveLength(1);
        // Six resends, and the submission's mail took one of the identity's five a day: four go
        // out, two are held back — the budget holds across processes.
        const actions = (await service.audit(id)).map((entry) => entry.action);
        expect(
          actions.filter((action) => action === 'challenge-resent'),
          id,
        ).toHaveLength(4);
        expect(
          actions.filter((action) => action === 'challenge-withheld'),
          id,
        ).toHaveLength(2 * count - 4);
      }
    });
  }, 120_000);

  it('two staff extending the same requests at once: both months count, both reasons are kept (Art 12(3))', async () => {
    await withRequests(20, async (database, ids, service) => {
      const staff = ['ann', 'bob'].map((label) => startStaff(database.url, 'extend', label, 1, ids));
      await Promise.all(staff.map((p) => p.ready));
      for (const p of staff) p.go();
      const outcomes = (await Promise.all(staff.map((p) => p.outcomes))).flat();
      expect(outcomes.filter((outcome) => outcome !== 'ok')).toEqual([]);
      for (const id of ids) {
        const { extension, effectiveDeadline } = await service.get(id);
        expect(extension.months, id).toBe(2);
        expect([...extension.reasons].sort(), id).toEqual(['ann needs time', 'bob needs time']);
        expect(effectiveDeadline, id).toBe('2024-04-30');
      }
    });
  }, 120_000);

  it('two staff cancelling the same requests at once: exactly one cancels each, the other is told it is illegal', async () => {
    await withRequests(30, async (database, ids, service) => {
      const staff = ['ann', 'bob'].map((label) => startStaff(database.url, 'cancel', label, 1, ids));
      await Promise.all(staff.map((p) => p.ready));
      for (const p of staff) p.go();
      const [ann, bob] = await Promise.all(staff.map((p) => p.outcomes));
      for (const [i, id] of ids.entries()) {
        expect([ann?.[i], bob?.[i]].sort(), id).toEqual(['ok', 'requests/illegal-transition']);
        const cancelled = (await service.audit(id)).filter((entry) => entry.to === 'cancelled');
        expect(cancelled, id).toHaveLength(1);
      }
    });
  }, 120_000);
});

describe.each(testEngines())(
  'duplicates at the same instant after the codes expired on $engine',
  (engine) => {
    it('mint and mail one fresh code per identity, audited once; every duplicate is still recorded', async () => {
      const database = await createTestDatabase(engine);
      const smtp = await startSmtp();
      try {
        await migrate(database.db, [requestMigrations]);
        const created = '2024-01-31T10:00:00Z';
        const later = '2024-01-31T10:15:00Z'; // the 10-minute codes of the requests have expired
        const service = (at: string) =>
          createRequestService({
            db: database.db,
            policy: testPolicy(),
            clock: fixedClock(at),
            secret: 'a test secret of more than thirty-two bytes!!',
          });
        const subjects = ['ana', 'ben', 'chloe', 'dev', 'eli', 'fay'];
        const requestIds = new Map<string, string>();
        for (const subject of subjects) {
          const { requestId } = await service(created).submit({
            right: 'access',
            identities: [
              { kind: 'email', value: `${subject}@example.com` },
              { kind: 'customer-id', value: `cust-${subject}` },
            ],
          });
          requestIds.set(subject, requestId);
        }

        // Four processes, each with its own connections and its own SMTP client, send the same
        // duplicates at once.
        const processes = (['ab', 'ba', 'ab', 'ba'] as const).map((order) =>
          startSubmitter(database.url, order, subjects, { at: later, smtpPort: smtp.port }),
        );
        await Promise.all(processes.map((p) => p.ready));
        for (const p of processes) p.go();
        const answers = await Promise.all(processes.map((p) => p.answers));

        for (const [index, subject] of subjects.entries()) {
          const requestId = requestIds.get(subject) as string;
          const duplicate = {
            requestId,
            submissionId: expect.any(String),
            status: 'identity-pending',
            duplicateOf: requestId,
            excessive: false,
            mailThrottled: false,
          };
          expect(answers.map((answer) => answer[index])).toEqual([
            duplicate,
            duplicate,
            duplicate,
            duplicate,
          ]);

          // One mail with one fresh code reached the subject, not one per duplicate.
          const mails = smtp.inbox.filter((mail) => mail.to.includes(`${subject}@example.com`));
          expect(mails, subject).toHaveLength(1);
          const challenges = await database.db
            .selectFrom('privacykit_requests_challenges')
            .select(['created_at', 'consumed_at'])
            .where('request_id', '=', requestId)
            .execute();
          const live = challenges.filter((challenge) => challenge.consumed_at === null);
          // The two expired codes were spent by the one resend, which minted one per identity.
          expect(challenges, subject).toHaveLength(4);
          expect(live.map((challenge) => challenge.created_at)).toEqual([
            '2024-01-31T10:15:00.000Z',
            '2024-01-31T10:15:00.000Z',
          ]);
          const actions = (
            await database.db
              .selectFrom('privacykit_requests_audit')
              .select('action')
              .where('request_id', '=', requestId)
              .execute()
          ).map((row) => row.action);
          expect(actions.filter((action) => action === 'duplicate-submission')).toHaveLength(4);
          expect(actions.filter((action) => action === 'challenge-resent')).toHaveLength(1);

          // The code in that mail verifies the email identity.
          const code = /confirmation code: (\d{6})/.exec(body(mails[0]!.raw))?.[1];
          expect(await service(later).verify({ requestId, code: code ?? '' })).toEqual({
            requestId,
            status: 'identity-pending',
            remaining: 1,
          });
        }
      } finally {
        await smtp.close();
        await database.destroy();
      }
    }, 120_000);
  },
);

type Moment = 'check' | 'holders' | 'request-insert';

/**
 * Runs a hook once the submission's duplicate check (`check`), its look-up of the intake slots'
 * holders (`holders`) or its insert of the new request (`request-insert`) has been answered: the
 * moments at which a concurrent submission can win the race.
 */
function interleave(hooks: Partial<Record<Moment, () => Promise<void>>>): KyselyPlugin {
  const moments = new Map<QueryId, Moment>();
  return {
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      const text = JSON.stringify(args.node);
      if (args.node.kind === 'SelectQueryNode' && text.includes('"privacykit_requests_identities"')) {
        if (text.includes('"request_right"')) moments.set(args.queryId, 'check');
        else if (text.includes('"dedupe_right"')) moments.set(args.queryId, 'holders');
      } else if (args.node.kind === 'InsertQueryNode' && text.includes('"privacykit_requests_requests"')) {
        moments.set(args.queryId, 'request-insert');
      }
      return args.node;
    },
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      const moment = moments.get(args.queryId);
      moments.delete(args.queryId);
      if (moment) await hooks[moment]?.();
      return args.result;
    },
  };
}

// SQLite takes the write lock before the duplicate check (BEGIN IMMEDIATE), so no submission can
// commit between a check and its insert there: an intake never loses a race to lose five times.
describe.each(testEngines().filter((engine) => engine.engine !== 'sqlite'))(
  'a submission that loses every race for its intake slot on $engine',
  (engine) => {
    // The rival commits its request after this submission's duplicate check (its slot look-up then
    // finds the slot taken) or after that look-up (its insert then hits the unique index), and
    // cancels it before this submission checks again, so every rerun loses once more.
    it.each([
      { wins: 'check', cancels: 'holders' },
      { wins: 'holders', cancels: 'request-insert' },
    ] as const)(
      'fails with requests/intake-conflict after five attempts and stores nothing of itself (rival wins after $wins)',
      async ({ wins, cancels }) => {
        const database = await createTestDatabase(engine);
        const rival = await openDatabase({ url: database.url, poolSize: 2 });
        try {
          await migrate(database.db, [requestMigrations]);
          const options = {
            policy: testPolicy(),
            clock: fixedClock('2024-01-31T10:00:00Z'),
            secret: 'a test secret of more than thirty-two bytes!!',
          };
          const input: SubmitRequestInput = {
            right: 'access',
            identities: [{ kind: 'email', value: 'ana@example.com' }],
          };
          // This submission also names an identity the rival's does not, so nothing the rival
          // stores can stand for what this one left behind.
          const ours: SubmitRequestInput = {
            ...input,
            identities: [...input.identities, { kind: 'email', value: 'zoe@example.com' }],
          };
          // Another requester on its own connections, submitting the same request for ana.
          const other = createRequestService({ ...options, db: rival });
          const theirs: string[] = [];
          const service = createRequestService({
            ...options,
            db: database.db.withPlugin(
              interleave({
                async [wins]() {
                  theirs.push((await other.submit(input)).requestId);
                },
                async [cancels]() {
                  await other.transition(theirs.at(-1) as string, { to: 'cancelled', by: 'subject' });
                },
              }),
            ),
          });

          const error = await service.submit(ours).then(
            () => undefined,
            (thrown: unknown) => thrown,
          );
          expect(isPrivacyKitError(error, 'requests/intake-conflict')).toBe(true);
          expect(error).toMatchObject({
            message: expect.stringContaining('nothing was stored, submit it again'),
            details: { attempts: 5 },
          });
          expect(theirs).toHaveLength(5);

          // Every row there is belongs to the rival's five requests: nothing half-written.
          const ids = new Set(theirs);
          const requests = await allRows(database.db, 'privacykit_requests_requests');
          expect(requests.map((row) => row.id).sort()).toEqual([...ids].sort());
          for (const table of [
            'privacykit_requests_identities',
            'privacykit_requests_challenges',
            'privacykit_requests_audit',
            'privacykit_requests_submissions',
          ]) {
            const rows = await allRows(database.db, table);
            expect(
              rows.filter((row) => !ids.has(row.request_id as string)),
              table,
            ).toEqual([]);
          }
          // Not even a mail counter for the identity only this submission named: the rival's
          // submissions counted ana's mails, and that is the only counter there is.
          expect(await allRows(database.db, 'privacykit_requests_identity_limits')).toEqual([
            expect.objectContaining({
              lookup_hash: identityLookupHash(options.secret, 'email', 'ana@example.com'),
            }),
          ]);
          // Submitting again, once the rival stops, records the request.
          const again = await createRequestService({ ...options, db: database.db }).submit(ours);
          expect(again).toMatchObject({ status: 'identity-pending', duplicateOf: null });
          expect(ids.has(again.requestId)).toBe(false);
        } finally {
          await rival.destroy();
          await database.destroy();
        }
      },
      60_000,
    );
  },
);

// SQLite runs one write transaction at a time (BEGIN IMMEDIATE): there is no lock order to get wrong.
describe.each(testEngines().filter((engine) => engine.engine !== 'sqlite'))(
  'first uses of one identity’s counter at the same instant on $engine',
  (engine) => {
    it('wrong codes and resends for requests sharing an identity whose counter was pruned: each counted once, none deadlocks', async () => {
      const database = await createTestDatabase(engine);
      const pools = await Promise.all(
        [1, 2, 3, 4].map(() => openDatabase({ url: database.url, poolSize: 5 })),
      );
      try {
        await migrate(database.db, [requestMigrations]);
        const clock = fixedClock('2024-01-31T10:00:00Z');
        const options = {
          policy: testPolicy(),
          clock,
          secret: 'a test secret of more than thirty-two bytes!!',
          // Windows of 6 minutes: the counters are pruned while the 10-minute codes still work.
          mailThrottle: { maxMails: 100, windowHours: 0.1 },
          codeGuessLimit: { maxFailures: 100, windowHours: 0.1 },
        };
        const service = createRequestService({ ...options, db: database.db });
        const shared = identityLookupHash(options.secret, 'email', 'shared@example.com');
        const ids: string[] = [];
        for (let i = 0; i < 40; i++) {
          const submitted = await service.submit({
            right: 'access',
            identities: [
              { kind: 'email', value: `own${i}@example.com` },
              { kind: 'email', value: 'shared@example.com' },
            ],
          });
          ids.push(submitted.requestId);
        }
        await service.whenIdle();
        const sharedCounter = async () =>
          database.db
            .selectFrom('privacykit_requests_identity_limits')
            .select(['mails', 'failures'])
            .where('lookup_hash', '=', shared)
            .executeTakeFirst();
        // Four nodes, each with connections of its own, create the shared identity's counter at once.
        const nodes = pools.map((db) => createRequestService({ ...options, db }));
        const outcomes = async (calls: Promise<unknown>[]) =>
          (await Promise.allSettled(calls)).map((result) =>
            result.status === 'fulfilled' ? 'ok' : String((result.reason as { code?: unknown }).code),
          );

        clock.advance(7 * 60_000);
        expect(await service.pruneThrottles()).toBe(41);
        const wrong = await outcomes(ids.map((id, i) => nodes[i % 4]!.verify({ requestId: id, code: 'x' })));
        expect(wrong.filter((outcome) => outcome !== 'requests/verification-failed')).toEqual([]);
        expect(await sharedCounter()).toEqual({ mails: 0, failures: 40 });

        clock.advance(7 * 60_000);
        expect(await service.pruneThrottles()).toBe(41);
        const resent = await outcomes(ids.map((id, i) => nodes[i % 4]!.resendChallenge(id)));
        expect(resent.filter((outcome) => outcome !== 'ok')).toEqual([]);
        expect(await sharedCounter()).toEqual({ mails: 40, failures: 0 });
        for (const node of nodes) await node.whenIdle();
      } finally {
        for (const pool of pools) await pool.destroy();
        await database.destroy();
      }
    }, 120_000);
  },
);
