import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { definePolicy, defineDataMap, fixedClock, systemClock } from '@privacykit/core';
import { createConsentLedger } from '@privacykit/consent';
import { createRequestService } from '@privacykit/requests';
import { createRetentionEngine } from '@privacykit/retention';
import { createTestDatabase } from '@privacykit/core/testing';
import type { TestDatabase, TestEngine } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fixture from './fixtures/privacykit.config.mjs';
import { createHostTables, expectOneLineError, json, runBin, runInProcess } from './helpers.js';

const policy = definePolicy(fixture.policy as Parameters<typeof definePolicy>[0]);
const dataMap = defineDataMap(fixture.dataMap as Parameters<typeof defineDataMap>[0], { policy });

/**
 * The end-to-end suite of one engine: one database, migrated once by the first test, shared by
 * the tests in order (each builds on what the previous left). Results that matter to scripts
 * (exit codes, `--json` documents, stderr) come from the built binary; human-readable variants of
 * the same command run in-process to keep the suite quick.
 */
export function engineSuite(engine: TestEngine): void {
  describe(`privacykit on ${engine.engine}`, () => {
    let database: TestDatabase;
    let run: (args: string[]) => ReturnType<typeof runBin>;
    let inProcess: (args: string[]) => ReturnType<typeof runInProcess>;
    const scratch = join(tmpdir(), `privacykit-cli-${engine.engine}-${process.pid}`);

    beforeAll(async () => {
      database = await createTestDatabase(engine);
      await createHostTables(database.db);
      run = (args) => runBin(['--db', database.url, ...args]);
      inProcess = (args) => runInProcess(['--db', database.url, ...args]);
    });
    /** The fixture's retention engine on this database (legal holds for the erase tests). */
    const retentionEngine = () =>
      createRetentionEngine({
        db: database.db,
        schedule: fixture.schedule as Parameters<typeof createRetentionEngine>[0]['schedule'],
        dataMap,
        policy,
        clock: systemClock,
      });
    afterAll(async () => {
      await database?.destroy();
      for (const suffix of ['.zip', '.json', '.plan.json', '.receipt.json', '.pub.pem']) {
        rmSync(scratch + suffix, { force: true });
      }
    });

    it('migrate creates every package table, then has nothing left to apply', async () => {
      const first = await run(['migrate', '--json']);
      expect(first.code, first.stderr).toBe(0);
      const applied = json<{ packages: { name: string; applied: string[] }[] }>(first).packages;
      expect(applied.map((pkg) => pkg.name)).toEqual([
        'consent',
        'retention',
        'requests',
        'subject-access',
        'erasure',
      ]);
      expect(applied.every((pkg) => pkg.applied.length > 0)).toBe(true);
      const second = await inProcess(['migrate', '--json']);
      expect(
        json<{ packages: { applied: string[] }[] }>(second).packages.every((pkg) => pkg.applied.length === 0),
      ).toBe(true);
      const human = await inProcess(['migrate']);
      expect(human.stdout).toContain('consent: up to date');
    });

    it('retention dry-run counts what is due with the sweep queries, and changes nothing', async () => {
      const result = await run(['retention', 'dry-run', '--json']);
      expect(result.code, result.stderr).toBe(0);
      const body = json<{ due: number; phases: { rule: string; due: number }[] }>(result);
      expect(body.due).toBe(21);
      expect(body.phases.find((phase) => phase.rule === 'logs')?.due).toBe(20);
      const rows = await database.db
        .selectFrom('logins')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst();
      expect(Number(rows?.n)).toBe(25);
    });

    it('retention backlog alerts with exit 1 while due rows wait', async () => {
      const result = await run(['retention', 'backlog', '--json']);
      expect(result.code, result.stderr).toBe(1);
      expect(json<{ rows: number; overdue: boolean }>(result)).toMatchObject({ rows: 21, overdue: true });
    });

    it('retention sweep with a row budget stops early and exits 1 unless --allow-incomplete', async () => {
      const partial = await run(['retention', 'sweep', '--budget', '5', '--batch-size', '2', '--json']);
      expect(partial.code, partial.stderr).toBe(1);
      expect(json<{ complete: boolean; records: number }>(partial)).toMatchObject({
        complete: false,
        records: 5,
      });
      const allowed = await inProcess([
        'retention',
        'sweep',
        '--budget',
        '3',
        '--allow-incomplete',
        '--json',
      ]);
      expect(allowed.code, allowed.stderr).toBe(0);
      expect(json<{ complete: boolean }>(allowed).complete).toBe(false);
    });

    it('retention sweep finishes the rest: JSON certificate on stdout, progress only on stderr', async () => {
      const result = await run(['retention', 'sweep', '--batch-size', '4', '--json']);
      expect(result.code, result.stderr).toBe(0);
      const certificate = json<{ complete: boolean; records: number; hash: string }>(result);
      expect(certificate.complete).toBe(true);
      expect(certificate.records).toBe(13);
      expect(certificate.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(result.stderr).toMatch(/^sweep: \d+/m);
      const left = await database.db.selectFrom('logins').select('id').orderBy('id').execute();
      expect(left.map((row) => Number(row.id))).toEqual([21, 22, 23, 24, 25]);
      const backlog = await inProcess(['retention', 'backlog']);
      expect(backlog.code).toBe(0);
      expect(backlog.stdout).toContain('no backlog');
    });

    it('retention backlog alerts with exit 1 on a row whose date cannot be read, which the sweep leaves and reports', async () => {
      await database.db
        .insertInto('logins')
        .values({ id: 99, customer_id: 1, logged_on: '15/01/2001', ip: '192.0.2.99' })
        .execute();
      try {
        const backlog = await run(['retention', 'backlog', '--json']);
        expect(backlog.code, backlog.stderr).toBe(1);
        expect(json<{ rows: number; overdue: boolean; invalid: number }>(backlog)).toMatchObject({
          rows: 0,
          overdue: false,
          invalid: 1,
        });
        const human = await inProcess(['retention', 'backlog']);
        expect(human.stdout).toContain(
          '1 row of logins with a date that cannot be read, never handled until repaired (keys 99)',
        );
        const sweep = await run(['retention', 'sweep', '--json']);
        expect(sweep.code, sweep.stderr).toBe(0);
        expect(
          json<{ counts: { table: string; outcome: string; count: number }[] }>(sweep).counts,
        ).toContainEqual(expect.objectContaining({ table: 'logins', outcome: 'invalid', count: 1 }));
        expect(
          (await database.db.selectFrom('logins').select('id').where('id', '=', 99).execute()).length,
        ).toBe(1);
      } finally {
        await database.db.deleteFrom('logins').where('id', '=', 99).execute();
      }
    });

    it('consent verify passes on an intact ledger, and names the first bad entry (sequence and leaf hash) after tampering', async () => {
      const ledger = createConsentLedger({
        db: database.db,
        policy,
        ...(fixture.consent as { secret: string; signEvery: { appends: number } }),
      });
      const decisions = [];
      for (const subject of ['ada', 'bob', 'cy', 'email:ada@example.com']) {
        decisions.push(
          await ledger.record({
            subjectId: subject,
            purpose: 'newsletter',
            state: 'granted',
            source: 'form',
            method: 'click',
          }),
        );
      }
      const ok = await run(['consent', 'verify', '--json']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(json(ok)).toMatchObject({ ok: true, firstBadEntry: null });

      // Receipts: valid with the ledger's key, invalid once altered.
      const receipt = await ledger.receipt(decisions[1]!.eventId);
      writeFileSync(`${scratch}.receipt.json`, JSON.stringify(receipt));
      writeFileSync(`${scratch}.pub.pem`, await ledger.publicKey());
      const verifyReceipt = [
        'consent',
        'receipt',
        'verify',
        `${scratch}.receipt.json`,
        '--key',
        `${scratch}.pub.pem`,
      ];
      // The receipt check needs no database: the binary runs it on one engine only.
      const valid = await (engine.engine === 'sqlite' ? runBin : runInProcess)([...verifyReceipt, '--json']);
      expect(valid.code).toBe(0);
      expect(json(valid)).toMatchObject({ valid: true, purpose: 'newsletter' });
      writeFileSync(`${scratch}.receipt.json`, JSON.stringify({ ...receipt, state: 'withdrawn' }));
      const forged = await runInProcess(verifyReceipt);
      expect(forged.code).toBe(1);
      expect(forged.stdout).toContain('INVALID');

      // Tamper with the second decision's stored entry.
      const row = await database.db
        .selectFrom('privacykit_consent_ledger')
        .select(['seq', 'entry'])
        .where('event_id', '=', decisions[1]!.eventId)
        .executeTakeFirstOrThrow();
      await database.db
        .updateTable('privacykit_consent_ledger')
        .set({ entry: String(row.entry).replace('granted', 'refused') })
        .where('event_id', '=', decisions[1]!.eventId)
        .execute();
      const tampered = await run(['consent', 'verify', '--json']);
      expect(tampered.code).toBe(1);
      const body = json<{
        ok: boolean;
        firstBadEntry: number;
        firstBad: { seq: number; leafHash: string | null };
        reason: string;
      }>(tampered);
      expect(body.ok).toBe(false);
      // The edited entry itself (its leaf hash no longer matches), not some earlier one.
      expect(body.firstBadEntry).toBe(Number(row.seq));
      const stored = await database.db
        .selectFrom('privacykit_consent_ledger')
        .select('leaf_hash')
        .where('seq', '=', body.firstBadEntry)
        .executeTakeFirstOrThrow();
      expect(body.firstBad).toEqual({ seq: body.firstBadEntry, leafHash: stored.leaf_hash });
      expect(tampered.stderr).toContain(
        `first bad entry ${body.firstBadEntry} (stored leaf hash ${stored.leaf_hash})`,
      );
      const human = await inProcess(['consent', 'verify']);
      expect(human.code).toBe(1);
      expect(human.stdout).toMatch(/TAMPERED — first bad entry \d+ \(stored leaf hash [0-9a-f]+\)/);
    });

    let lateId = '';
    it('requests due lists overdue and soon-due requests and exits 1 when one is overdue', async () => {
      const secret = fixture.requests as { secret: string };
      const old = createRequestService({
        db: database.db,
        policy,
        clock: fixedClock(new Date(Date.now() - 40 * 86_400_000)),
        ...secret,
      });
      const late = await old.submit({
        right: 'access',
        identities: [{ kind: 'email', value: 'ada@example.com' }],
      });
      const fresh = createRequestService({ db: database.db, policy, ...secret });
      const recent = await fresh.submit({
        right: 'erasure',
        identities: [{ kind: 'email', value: 'bob@example.com' }],
      });
      lateId = late.requestId;

      const week = await run(['requests', 'due', '--within', '7d', '--json']);
      expect(week.code, week.stderr).toBe(1);
      const body = json<{ overdue: number; requests: { id: string; overdue: boolean }[] }>(week);
      expect(body.overdue).toBe(1);
      expect(body.requests.map((request) => request.id)).toEqual([late.requestId]);

      const quarter = await inProcess(['requests', 'due', '--within', '5w', '--json']);
      const ids = json<{ requests: { id: string }[] }>(quarter).requests.map((request) => request.id);
      expect(ids).toEqual([late.requestId, recent.requestId]);
      const table = await inProcess(['requests', 'due', '--within', '5w']);
      expect(table.stdout).toMatch(/OVERDUE \d+d/);
    });

    it('requests prune deletes the counters whose windows have all ended, keeps live ones and other tenants’', async () => {
      const HOUR = 3_600_000;
      const ago = (hours: number) => new Date(Date.now() - hours * HOUR).toISOString();
      // The fixture configures no mailThrottle or codeGuessLimit: both windows last 24 hours.
      const counter = (tenant: string, key: string, mail: string | null, failure: string | null) => ({
        tenant,
        lookup_hash: `cli-prune-${key}`,
        mail_window_start: mail,
        mails: mail === null ? 0 : 5,
        failure_window_start: failure,
        failures: failure === null ? 0 : 3,
      });
      await database.db
        .insertInto('privacykit_requests_identity_limits')
        .values([
          counter('acme', 'ended-mail', ago(25), null),
          counter('acme', 'ended-both', ago(30), ago(26)),
          counter('acme', 'ended-empty', null, null),
          counter('acme', 'live-mail', ago(1), null),
          counter('acme', 'live-code', ago(30), ago(23)),
          counter('other', 'ended-mail', ago(25), null),
        ])
        .execute();
      const counters = async () =>
        (
          await database.db
            .selectFrom('privacykit_requests_identity_limits')
            .select(['tenant', 'lookup_hash'])
            .execute()
        ).map((row) => `${row.tenant}/${row.lookup_hash}`);
      const before = await counters();

      const pruned = await run(['requests', 'prune', '--batch-size', '2', '--json']);
      expect(pruned.code, pruned.stderr).toBe(0);
      const after = await counters();
      const gone = before.filter((key) => !after.includes(key));
      expect(json(pruned)).toEqual({ tenant: 'acme', deleted: gone.length });
      expect(gone).toEqual(
        expect.arrayContaining(
          ['ended-mail', 'ended-both', 'ended-empty'].map((key) => `acme/cli-prune-${key}`),
        ),
      );
      expect(after).toEqual(
        expect.arrayContaining([
          'acme/cli-prune-live-mail',
          'acme/cli-prune-live-code',
          'other/cli-prune-ended-mail',
        ]),
      );
      // The counter of the request filed today in the previous test is live too.
      expect(after.filter((key) => !key.includes('cli-prune-'))).toHaveLength(1);

      const again = await inProcess(['requests', 'prune']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toBe('deleted 0 request counters whose windows had all ended (tenant acme)\n');
      await database.db
        .insertInto('privacykit_requests_identity_limits')
        .values(counter('acme', 'ended-later', ago(24), null))
        .execute();
      const one = await inProcess(['requests', 'prune']);
      expect(one.stdout).toBe('deleted 1 request counter whose windows had all ended (tenant acme)\n');
      expect(await counters()).toEqual(expect.not.arrayContaining(['acme/cli-prune-ended-later']));
    });

    it('export writes the subject package with its consent and request history, and reports its digest', async () => {
      const result = await run([
        'export',
        '--subject',
        'ada@example.com',
        '--out',
        `${scratch}.zip`,
        '--json',
      ]);
      expect(result.code, result.stderr).toBe(0);
      const body = json<{
        file: string;
        bytes: number;
        sha256: string;
        consentSubjects: string[];
        consentEvents: number;
        requests: number;
      }>(result);
      const bytes = readFileSync(body.file);
      expect(bytes.length).toBe(body.bytes);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(body.sha256);
      expect(bytes.subarray(0, 2).toString()).toBe('PK');
      expect(bytes.includes('consent-records.json')).toBe(true);
      expect(bytes.includes('consent-history.json')).toBe(true);
      expect(bytes.includes('request-history.json')).toBe(true);
      expect(existsSync(`${scratch}.zip.partial`)).toBe(false);
      expect(body).toMatchObject({
        consentSubjects: ['email:ada@example.com'],
        consentEvents: 1,
        consentRecords: 1,
        requests: 1,
      });

      // The same package as one JSON document: the histories are the subject's own.
      const document = await inProcess([
        'export',
        '--subject',
        'ada@example.com',
        '--format',
        'json',
        '--out',
        `${scratch}.json`,
      ]);
      expect(document.code, document.stderr).toBe(0);
      const parsed = JSON.parse(readFileSync(`${scratch}.json`, 'utf8')) as {
        consentRecords: { subject: { id: string }; purpose: { id: string }; status: string }[];
        consentHistory: { purpose: string; state: string; kind: string }[];
        requestHistory: { requests: { id: string; right: string }[] }[];
      };
      expect(parsed.consentHistory).toEqual([
        expect.objectContaining({ kind: 'decision', purpose: 'newsletter', state: 'granted' }),
      ]);
      expect(parsed.consentRecords).toEqual([
        expect.objectContaining({
          subject: expect.objectContaining({ id: 'email:ada@example.com' }),
          purpose: expect.objectContaining({ id: 'newsletter' }),
          status: 'dpv:ConsentGiven',
        }),
      ]);
      expect(parsed.requestHistory[0]?.requests.map((request) => [request.id, request.right])).toEqual([
        [lateId, 'access'],
      ]);
      // The convention's address is normalised as the portal records it: any letter case finds Ada.
      const shouted = await inProcess([
        'export',
        '--subject',
        'Ada@EXAMPLE.com',
        '--format',
        'json',
        '--out',
        `${scratch}.json`,
        '--json',
      ]);
      expect(shouted.code, shouted.stderr).toBe(0);
      expect(json(shouted)).toMatchObject({
        consentSubjects: ['email:ada@example.com'],
        consentEvents: 1,
        consentRecords: 1,
      });
      // A ledger id given explicitly replaces the convention; --no-history leaves both out.
      const other = await inProcess([
        'export',
        '--subject',
        'ada@example.com',
        '--consent-subject',
        'ada',
        '--format',
        'json',
        '--out',
        `${scratch}.json`,
        '--json',
      ]);
      expect(json(other)).toMatchObject({ consentSubjects: ['ada'], consentEvents: 1 });
      // …and so does the config's consentSubject(identities) mapping.
      const mapped = await inProcess([
        '--config',
        'consent-subject.mjs',
        'export',
        '--subject',
        'bob@example.com',
        '--format',
        'json',
        '--out',
        `${scratch}.json`,
        '--json',
      ]);
      expect(json(mapped)).toMatchObject({ consentSubjects: ['bob'], consentEvents: 1, requests: 1 });
      const without = await inProcess([
        'export',
        '--subject',
        'ada@example.com',
        '--no-history',
        '--format',
        'json',
        '--out',
        `${scratch}.json`,
        '--json',
      ]);
      expect(json(without)).toMatchObject({ consentEvents: null, requests: null });
      expect(JSON.parse(readFileSync(`${scratch}.json`, 'utf8'))).not.toHaveProperty('consentHistory');
    });

    it('erase honours retention legal holds; --plan changes nothing; --execute erases, keeps the Art 17(3) remainder and verifies', async () => {
      const retention = retentionEngine();
      const hold = await retention.placeHold({
        scope: { table: 'logins', key: 22 },
        reason: 'case 2024-17: disputed login',
        placedBy: 'legal@acme.test',
      });
      const plan = await run([
        'erase',
        '--subject',
        'bob@example.com',
        '--plan',
        '--out',
        `${scratch}.plan.json`,
        '--json',
      ]);
      expect(plan.code, plan.stderr).toBe(0);
      const planned = json<{
        id: string;
        summary: { erase: number; retained: number };
        tables: {
          table: string;
          retained: {
            source: string;
            ground: string;
            article: string;
            reason: string;
            sampleKeys: string[];
          }[];
        }[];
      }>(plan);
      expect(planned.summary.erase).toBeGreaterThan(0);
      const logins = planned.tables.find((table) => table.table === 'logins');
      expect(logins?.retained).toEqual([
        expect.objectContaining({
          source: 'hold',
          ground: 'legal-claims',
          article: 'Art 17(3)(e)',
          reason: `legal hold ${hold.id}: case 2024-17: disputed login`,
          sampleKeys: ['22'],
        }),
      ]);
      const before = await database.db
        .selectFrom('logins')
        .select('id')
        .where('customer_id', '=', 2)
        .execute();
      expect(before.map((row) => Number(row.id))).toEqual([22, 24]);

      const executed = await run(['erase', '--execute', '--from-plan', `${scratch}.plan.json`, '--json']);
      expect(executed.code, executed.stderr).toBe(0);
      const report = json<{
        ok: boolean;
        plan: { id: string };
        verification: { ok: boolean };
        report: { retained: { table: string; rows: number; reason: string; article: string }[] };
      }>(executed);
      expect(report).toMatchObject({ ok: true, plan: { id: planned.id }, verification: { ok: true } });
      expect(report.report.retained).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            table: 'logins',
            rows: 1,
            article: 'Art 17(3)(e)',
            reason: expect.stringContaining(hold.id),
          }),
        ]),
      );
      const after = await database.db
        .selectFrom('logins')
        .select('id')
        .where('customer_id', '=', 2)
        .execute();
      expect(after.map((row) => Number(row.id))).toEqual([22]);
      const invoices = await database.db
        .selectFrom('invoices')
        .select('id')
        .where('customer_id', '=', 2)
        .execute();
      expect(invoices).toHaveLength(1);
    });

    it('erase --execute stops on a legal hold placed since planning, and --replan keeps the held row and erases the rest', async () => {
      const retention = retentionEngine();
      const adaLogins = async () =>
        (
          await database.db
            .selectFrom('logins')
            .select('id')
            .where('customer_id', '=', 1)
            .orderBy('id')
            .execute()
        ).map((row) => Number(row.id));
      const before = await adaLogins();
      expect(before).toContain(23);
      const planAda = (...extra: string[]) =>
        run(['erase', '--subject', 'ada@example.com', '--request', 'REQ-ADA', ...extra, '--plan', '--json']);
      const first = await planAda();
      expect(first.code, first.stderr).toBe(0);
      const old = json<{ id: string }>(first);

      // Placed after planning (while the plan waits for review): the old plan would delete row 23.
      const hold = await retention.placeHold({
        scope: { table: 'logins', key: 23 },
        reason: 'case 2024-31: chargeback',
        placedBy: 'legal@acme.test',
      });
      try {
        const refused = await run(['erase', '--execute', '--plan-id', old.id]);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toContain('erasure/held-since-planning');
        expect(refused.stderr).toContain('--request REQ-ADA --replan --plan');
        expect(await adaLogins()).toEqual(before);

        // Planning the request again without --replan gives the same plan; with it, a new one.
        const same = await planAda();
        expect(json<{ id: string }>(same).id).toBe(old.id);
        const again = await planAda('--replan');
        expect(again.code, again.stderr).toBe(0);
        const replaced = json<{
          id: string;
          tables: { table: string; retained: { sampleKeys: string[] }[] }[];
        }>(again);
        expect(replaced.id).not.toBe(old.id);
        expect(replaced.tables.find((table) => table.table === 'logins')?.retained).toEqual([
          expect.objectContaining({ sampleKeys: ['23'] }),
        ]);

        const stale = await run(['erase', '--execute', '--plan-id', old.id]);
        expect(stale.code).not.toBe(0);
        expect(stale.stderr).toContain('erasure/plan-superseded');
        expect(stale.stderr).toContain(`--plan-id ${replaced.id}`);
        expect(await adaLogins()).toEqual(before);

        const executed = await run(['erase', '--execute', '--plan-id', replaced.id, '--json']);
        expect(executed.code, executed.stderr).toBe(0);
        expect(json<{ ok: boolean }>(executed).ok).toBe(true);
        expect(await adaLogins()).toEqual([23]);
      } finally {
        await retention.releaseHold(hold.id, { by: 'legal@acme.test', reason: 'test over' });
      }
    });

    it("erase never hands one subject's plan to another's request, and --consent-subject crypto-shreds the ledger", async () => {
      // REQ-ADA was planned (and run) for Ada above: Bob's identities under it are refused, not
      // given Ada's plan (helper-92: executing it erased Ada for Bob's request).
      const bobLogins = async () =>
        (await database.db.selectFrom('logins').select('id').where('customer_id', '=', 2).execute()).length;
      const before = await bobLogins();
      const wrong = await run(['erase', '--subject', 'bob@example.com', '--request', 'REQ-ADA', '--execute']);
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toContain('erasure/invalid-input');
      expect(await bobLogins()).toBe(before);

      // The consent-ledger id given: its keys are shredded once the rows are gone (only stored before).
      const shredded = await run([
        'erase',
        '--subject',
        'ada@example.com',
        '--request',
        'REQ-ADA-LEDGER',
        '--consent-subject',
        'email:ada@example.com',
        '--execute',
        '--json',
      ]);
      expect(shredded.code, shredded.stderr).toBe(0);
      expect(
        json<{ report: { shredding: { subjectId: string; status: string } } }>(shredded).report.shredding,
      ).toMatchObject({
        subjectId: 'email:ada@example.com',
        status: 'shredded',
      });
      const entries = await database.db
        .selectFrom('privacykit_consent_ledger')
        .select('kind')
        .where('kind', '=', 'subject-shredded')
        .execute();
      expect(entries).toHaveLength(1);
    });

    it('requests redact strips the requests due by right and period, --dry-run counts them, and a rerun finds none', async () => {
      const secret = fixture.requests as { secret: string };
      // Closed 400 days ago: an access request (due after 1y) and an erasure request (kept).
      const old = createRequestService({
        db: database.db,
        policy,
        clock: fixedClock(new Date(Date.now() - 400 * 86_400_000)),
        ...secret,
      });
      const closed = async (right: 'access' | 'erasure', email: string) => {
        const { requestId } = await old.submit({ right, identities: [{ kind: 'email', value: email }] });
        await old.transition(requestId, { to: 'cancelled', by: 'staff:eve', reason: `asked by ${email}` });
        return requestId;
      };
      const access = await closed('access', 'cleo@example.com');
      const erasure = await closed('erasure', 'dora@example.com');
      const args = ['requests', 'redact', '--closed', '1y', '--right', 'erasure=keep', '--unverified', '30d'];

      const dry = await run([...args, '--dry-run', '--json']);
      expect(dry.code, dry.stderr).toBe(0);
      // `requests due` left one unverified request 40 days old (lateId) and a fresh one.
      expect(json(dry)).toMatchObject({ dryRun: true, redacted: 2, closed: 1, unverified: 1 });
      const service = createRequestService({ db: database.db, policy, ...secret });
      expect((await service.get(access)).redactedAt).toBeNull();

      const human = await inProcess([...args, '--batch-size', '1']);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toContain('redacted 2 requests: 1 closed, 1 never verified');
      expect(await service.get(access)).toMatchObject({ details: null, identities: [{ value: '' }] });
      expect((await service.get(lateId)).status).toBe('cancelled');
      expect((await service.get(erasure)).redactedAt).toBeNull();
      expect((await service.historyFor([{ kind: 'email', value: 'cleo@example.com' }])).requests).toEqual([]);

      const again = await run([...args, '--json']);
      expect(json(again)).toMatchObject({ dryRun: false, redacted: 0 });
    });

    it('requests redact refuses an unknown right or period, or no period at all, as a usage error', async () => {
      for (const bad of [
        ['--right', 'gossip=1y'],
        ['--right', 'access'],
        ['--closed', '1 year'],
        ['--unverified', '12m'],
        [],
      ]) {
        const result = await inProcess(['requests', 'redact', ...bad]);
        expect(result.code, `${bad.join(' ')}: ${result.stdout}`).toBe(2);
        expectOneLineError(result.stderr);
      }
    });

    it('a database it cannot reach is one line on stderr and a non-zero exit', async () => {
      const bad =
        engine.engine === 'sqlite'
          ? 'sqlite:/nonexistent-dir/x/y.db'
          : database.url.replace(/\/[^/]*$/, '/pk_no_such_db');
      const result = await runBin(['--db', bad, 'retention', 'backlog']);
      // A SQLite file that does not exist is the operator's path to fix (exit 2, nothing created);
      // a server that does not answer is an outage to alert on (exit 1).
      expect(result.code, result.stderr).toBe(engine.engine === 'sqlite' ? 2 : 1);
      expectOneLineError(result.stderr);
    });
  });
}
