import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedClock } from '@privacykit/core';
import { createConsentLedger } from '@privacykit/consent';
import { createRequestService } from '@privacykit/requests';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePolicy } from '@privacykit/core';
import * as fixture from './fixtures/privacykit.config.mjs';
import { createHostTables, fixtures, json, runBin } from './helpers.js';

const policy = definePolicy(fixture.policy as Parameters<typeof definePolicy>[0]);

function expectOneLineError(stderr: string): void {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^privacykit: /);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe.each(testEngines())('privacykit on $engine', (engine) => {
  let database: TestDatabase;
  let run: (args: string[], env?: Record<string, string | undefined>) => ReturnType<typeof runBin>;
  const scratch = join(tmpdir(), `privacykit-cli-${engine.engine}-${process.pid}`);

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    await createHostTables(database.db);
    run = (args, env) => runBin(['--db', database.url, ...args], { env });
  });
  afterAll(async () => {
    await database?.destroy();
    for (const suffix of ['.zip', '.plan.json', '.receipt.json', '.pub.pem', '.head.json']) {
      rmSync(scratch + suffix, { force: true });
    }
  });

  it('migrate creates every package table, then has nothing left to apply', async () => {
    const first = await run(['migrate', '--json']);
    expect(first.code).toBe(0);
    const applied = json<{ packages: { name: string; applied: string[] }[] }>(first).packages;
    expect(applied.map((pkg) => pkg.name)).toEqual([
      'consent',
      'retention',
      'requests',
      'subject-access',
      'erasure',
    ]);
    expect(applied.every((pkg) => pkg.applied.length > 0)).toBe(true);
    const second = await run(['migrate', '--json']);
    expect(
      json<{ packages: { applied: string[] }[] }>(second).packages.every((pkg) => pkg.applied.length === 0),
    ).toBe(true);
    const human = await run(['migrate']);
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
    const body = json<{ rows: number; overdue: boolean }>(result);
    expect(body).toMatchObject({ rows: 21, overdue: true });
  });

  it('retention sweep with a row budget stops early and exits 1 unless --allow-incomplete', async () => {
    const partial = await run(['retention', 'sweep', '--budget', '5', '--batch-size', '2', '--json']);
    expect(partial.code, partial.stderr).toBe(1);
    expect(json<{ complete: boolean; records: number }>(partial)).toMatchObject({
      complete: false,
      records: 5,
    });
    const allowed = await run(['retention', 'sweep', '--budget', '3', '--allow-incomplete', '--json']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(json<{ complete: boolean }>(allowed).complete).toBe(false);
  });

  it('retention sweep finishes the rest: JSON certificate on stdout, progress only on stderr', async () => {
    const result = await run(['retention', 'sweep', '--batch-size', '4', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const certificate = json<{
      complete: boolean;
      records: number;
      hash: string;
      counts: { rule: string }[];
    }>(result);
    expect(certificate.complete).toBe(true);
    expect(certificate.records).toBe(13);
    expect(certificate.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(result.stderr).toMatch(/^sweep: \d+/m);
    const left = await database.db.selectFrom('logins').select('id').orderBy('id').execute();
    expect(left.map((row) => row.id)).toEqual([21, 22, 23, 24, 25]);
    const backlog = await run(['retention', 'backlog']);
    expect(backlog.code).toBe(0);
    expect(backlog.stdout).toContain('no backlog');
  });

  it('retention plan shows each rule bound to its table, in words', async () => {
    const result = await run(['retention', 'plan']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/logs\s+logins\s+0\s+delete\s+1 year after the login/);
  });

  it('consent verify passes on an intact ledger and names the first bad entry after tampering', async () => {
    const ledger = createConsentLedger({
      db: database.db,
      policy,
      ...(fixture.consent as { secret: string; signEvery: { appends: number } }),
    });
    const decisions = [];
    for (const subject of ['ada', 'bob', 'cy']) {
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
    expect(json<{ ok: boolean; size: number }>(ok)).toMatchObject({ ok: true });

    // Receipts: valid with the ledger's key, invalid once altered.
    const receipt = await ledger.receipt(decisions[1]!.eventId);
    writeFileSync(`${scratch}.receipt.json`, JSON.stringify(receipt));
    writeFileSync(`${scratch}.pub.pem`, await ledger.publicKey());
    const valid = await runBin([
      'consent',
      'receipt',
      'verify',
      `${scratch}.receipt.json`,
      '--key',
      `${scratch}.pub.pem`,
      '--json',
    ]);
    expect(valid.code).toBe(0);
    expect(json(valid)).toMatchObject({ valid: true, purpose: 'newsletter' });
    writeFileSync(`${scratch}.receipt.json`, JSON.stringify({ ...receipt, state: 'withdrawn' }));
    const forged = await runBin([
      'consent',
      'receipt',
      'verify',
      `${scratch}.receipt.json`,
      '--key',
      `${scratch}.pub.pem`,
    ]);
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
    const body = json<{ ok: boolean; firstBadEntry: number; reason: string }>(tampered);
    expect(body.ok).toBe(false);
    expect(body.firstBadEntry).toBeLessThanOrEqual(Number(row.seq));
    expect(tampered.stderr).toContain(`first bad entry ${body.firstBadEntry}`);
    const human = await run(['consent', 'verify']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/TAMPERED — first bad entry \d+/);
  });

  it('requests due lists overdue and soon-due requests and exits 1 when one is overdue', async () => {
    const old = createRequestService({
      db: database.db,
      policy,
      clock: fixedClock(new Date(Date.now() - 40 * 86_400_000)),
      ...(fixture.requests as { secret: string }),
    });
    const late = await old.submit({
      right: 'access',
      identities: [{ kind: 'email', value: 'ada@example.com' }],
    });
    const fresh = createRequestService({
      db: database.db,
      policy,
      ...(fixture.requests as { secret: string }),
    });
    const recent = await fresh.submit({
      right: 'erasure',
      identities: [{ kind: 'email', value: 'bob@example.com' }],
    });
    const lateId = (late as { requestId?: string; id?: string }).requestId ?? (late as { id?: string }).id;
    const recentId =
      (recent as { requestId?: string; id?: string }).requestId ?? (recent as { id?: string }).id;

    const week = await run(['requests', 'due', '--within', '7d', '--json']);
    expect(week.code, week.stderr).toBe(1);
    const body = json<{ overdue: number; requests: { id: string; overdue: boolean }[] }>(week);
    expect(body.overdue).toBe(1);
    expect(body.requests.map((request) => request.id)).toEqual([lateId]);

    const quarter = await run(['requests', 'due', '--within', '5w', '--json']);
    const ids = json<{ requests: { id: string }[] }>(quarter).requests.map((request) => request.id);
    expect(ids).toEqual([lateId, recentId]);
    const table = await run(['requests', 'due', '--within', '5w']);
    expect(table.stdout).toMatch(/OVERDUE \d+d/);
  });

  it('export writes the subject package and reports its digest', async () => {
    const result = await run(['export', '--subject', 'ada@example.com', '--out', `${scratch}.zip`, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const body = json<{ file: string; bytes: number; sha256: string }>(result);
    const bytes = readFileSync(body.file);
    expect(bytes.length).toBe(body.bytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(body.sha256);
    expect(bytes.subarray(0, 2).toString()).toBe('PK');
    expect(existsSync(`${scratch}.zip.partial`)).toBe(false);
  });

  it('erase --plan changes nothing; --execute erases, keeps the Art 17(3) remainder and verifies', async () => {
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
    const planned = json<{ id: string; summary: { erase: number; retained: number } }>(plan);
    expect(planned.summary.erase).toBeGreaterThan(0);
    expect(planned.summary.retained).toBeGreaterThan(0);
    const before = await database.db.selectFrom('logins').select('id').where('customer_id', '=', 2).execute();
    expect(before.length).toBeGreaterThan(0);

    const executed = await run(['erase', '--execute', '--from-plan', `${scratch}.plan.json`, '--json']);
    expect(executed.code, executed.stderr).toBe(0);
    const report = json<{ ok: boolean; plan: { id: string }; verification: { ok: boolean } }>(executed);
    expect(report).toMatchObject({ ok: true, plan: { id: planned.id }, verification: { ok: true } });
    const after = await database.db.selectFrom('logins').select('id').where('customer_id', '=', 2).execute();
    expect(after).toHaveLength(0);
    const invoices = await database.db
      .selectFrom('invoices')
      .select('id')
      .where('customer_id', '=', 2)
      .execute();
    expect(invoices).toHaveLength(1);
  });

  it('a database it cannot reach is one line on stderr and a non-zero exit', async () => {
    const bad =
      engine.engine === 'sqlite'
        ? 'sqlite:/nonexistent-dir/x/y.db'
        : database.url.replace(/\/[^/]*$/, '/pk_no_such_db');
    const result = await runBin(['--db', bad, 'retention', 'backlog']);
    expect(result.code, result.stderr).toBe(1);
    expectOneLineError(result.stderr);
  });
});

describe('privacykit without a database', () => {
  it('policy check accepts the fixture', async () => {
    const result = await runBin(['policy', 'check', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(json(result)).toMatchObject({ ok: true, issues: [], summary: { purposes: 2, tables: 3 } });
  });

  it('policy check prints every error with where it is, and exits 1', async () => {
    const result = await runBin(['policy', 'check', 'broken-policy.mjs', '--json']);
    expect(result.code, result.stderr).toBe(1);
    const paths = json<{ issues: { path: string }[] }>(result).issues.map((issue) => issue.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'policy.purposes[0].categories[1]',
        'policy.purposes[0].recipients[0]',
        'policy.purposes[0].legalBases[0].legitimateInterest',
        'dataMap.tables.orphans',
      ]),
    );
    const human = await runBin(['policy', 'check', 'broken-policy.mjs']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(
      /broken-policy\.mjs: policy\.purposes\[0\]\.categories\[1\]: unknown category "made\.up-category"/,
    );
    expect(human.stdout).toContain('4 problems found');
  });

  it('policy check also checks the retention schedule against the policy and the data map', async () => {
    const result = await runBin(['policy', 'check', 'bad-schedule.mjs', '--json']);
    expect(result.code).toBe(1);
    const issues = json<{ issues: { path: string; message: string }[] }>(result).issues;
    expect(issues.map((issue) => issue.path)).toEqual(
      expect.arrayContaining(['schedule[0].facts.loggedAt', 'schedule[0].facts']),
    );
  });

  it('loads a privacykit.config.ts through tsx', async () => {
    const result = await runBin(['policy', 'check', '--json'], { cwd: `${fixtures}ts-config` });
    expect(result.code, result.stderr).toBe(0);
    expect(json(result)).toMatchObject({ ok: true, summary: { version: 'from-typescript' } });
  });

  it('policy render writes the Art 13 notice as Markdown and the Art 30 record as HTML', async () => {
    const notice = await runBin(['policy', 'render']);
    expect(notice.code).toBe(0);
    expect(notice.stdout).toMatch(/^# Privacy notice — Acme SAS/);
    expect(notice.stdout).toContain('Mailer Inc → US: standard data protection clauses');
    const record = await runBin(['policy', 'render', '--record', '--format', 'html']);
    expect(record.stdout).toMatch(/^<!doctype html>/);
    expect(record.stdout).toContain('<th scope="col">Item</th>');
    expect(record.stdout).toContain('Time limits for erasure (Art. 30(1)(f))');
    const structured = await runBin(['policy', 'render', '--json']);
    expect(json<{ controller: { name: string } }>(structured).controller.name).toBe('Acme SAS');
  });

  it('usage errors exit 2 with one line and no stack trace; --debug adds the stack', async () => {
    const noDb = await runBin(['retention', 'backlog']);
    expect(noDb.code).toBe(2);
    expectOneLineError(noDb.stderr);
    expect(noDb.stderr).toContain('no database: pass --db <url> or set DATABASE_URL');
    const badOption = await runBin(['requests', 'due', '--within', 'soon']);
    expect(badOption.code).toBe(2);
    expectOneLineError(badOption.stderr);
    expect(badOption.stderr).toContain('"soon" is not a duration');
    const unknown = await runBin(['retention', 'sweep', '--fast']);
    expect(unknown.code).toBe(2);
    expectOneLineError(unknown.stderr);
    const noConfig = await runBin(['policy', 'check'], { cwd: tmpdir() });
    expect(noConfig.code).toBe(2);
    expectOneLineError(noConfig.stderr);
    const debug = await runBin(['--debug', '--db', 'nonsense://x', 'retention', 'backlog']);
    expect(debug.code).toBe(2);
    expect(debug.stderr.split('\n')[0]).toMatch(/^privacykit: cannot tell the database engine/);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('--help of every command shows an example', async () => {
    const commands = [
      [],
      ['migrate'],
      ['policy', 'check'],
      ['policy', 'render'],
      ['retention', 'plan'],
      ['retention', 'dry-run'],
      ['retention', 'sweep'],
      ['retention', 'backlog'],
      ['consent', 'verify'],
      ['consent', 'head'],
      ['consent', 'receipt', 'verify'],
      ['requests', 'due'],
      ['cookies', 'classify'],
      ['cookies', 'scan'],
      ['cookies', 'audit'],
      ['export'],
      ['erase'],
    ];
    for (const command of commands) {
      const result = await runBin([...command, '--help']);
      expect(result.code, command.join(' ')).toBe(0);
      expect(result.stdout, command.join(' ')).toMatch(/Examples:\n\s+\$ privacykit/);
    }
  });
});
