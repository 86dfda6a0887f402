import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectOneLineError, fixtures, json, runBin, runInProcess } from './helpers.js';

// Commands that need no database. What a script relies on (exit code, --json document, one-line
// errors) is checked on the built binary; variants and usage checks run in-process.
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
    const human = await runInProcess(['policy', 'check', 'broken-policy.mjs']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(
      /broken-policy\.mjs: policy\.purposes\[0\]\.categories\[1\]: unknown category "made\.up-category"/,
    );
    expect(human.stdout).toContain('4 problems found');
  });

  it('policy check also checks the retention schedule against the policy and the data map', async () => {
    const result = await runInProcess(['policy', 'check', 'bad-schedule.mjs', '--json']);
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
    const record = await runInProcess(['policy', 'render', '--record', '--format', 'html']);
    expect(record.stdout).toMatch(/^<!doctype html>/);
    expect(record.stdout).toContain('<th scope="col">Item</th>');
    expect(record.stdout).toContain('Time limits for erasure (Art. 30(1)(f))');
    const structured = await runInProcess(['policy', 'render', '--json']);
    expect(json<{ controller: { name: string } }>(structured).controller.name).toBe('Acme SAS');
  });

  it('retention plan shows each rule bound to its table, in words', async () => {
    const result = await runBin(['retention', 'plan']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/logs\s+logins\s+0\s+delete\s+1 year after the login/);
    const structured = await runInProcess(['retention', 'plan', '--json']);
    expect(json<{ entries: { rule: string; table: string }[] }>(structured).entries).toEqual([
      expect.objectContaining({ rule: 'logs', table: 'logins' }),
      expect.objectContaining({ rule: 'invoices', table: 'invoices' }),
    ]);
  });

  it('the binary turns a usage error into exit 2 and one line; --debug adds the stack', async () => {
    const noDb = await runBin(['retention', 'backlog']);
    expect(noDb.code).toBe(2);
    expectOneLineError(noDb.stderr);
    expect(noDb.stderr).toContain('no database: pass --db <url> or set DATABASE_URL');
    const debug = await runBin(['--debug', '--db', 'nonsense://x', 'retention', 'backlog']);
    expect(debug.code).toBe(2);
    expect(debug.stderr.split('\n')[0]).toMatch(/^privacykit: cannot tell the database engine/);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('usage errors exit 2 with one line and no stack trace', async () => {
    const cases: { args: string[]; cwd?: string; message?: string }[] = [
      { args: ['requests', 'due', '--within', 'soon'], message: '"soon" is not a duration' },
      {
        args: ['requests', 'prune', '--batch-size', '0'],
        message: '--batch-size expects a positive whole number, got "0"',
      },
      { args: ['requests', 'prune', '--batch-size', '1.5'], message: 'got "1.5"' },
      { args: ['requests', 'prune', '--batch-size', 'all'], message: 'got "all"' },
      { args: ['requests', 'prune', '--batch-size', '5001'], message: '--batch-size is at most 5000' },
      { args: ['retention', 'sweep', '--fast'], message: "unknown option '--fast'" },
      { args: ['retention', 'sweep', '--budget', '0'], message: '--budget must be at least 1 row' },
      { args: ['policy', 'check'], cwd: tmpdir(), message: 'no privacykit.config.mjs' },
      { args: ['erase', '--subject', 'ada@example.com'], message: '--plan (preview) or --execute' },
      {
        args: ['erase', '--plan', '--execute', '--subject', 'a@b.c'],
        message: '--plan (preview) or --execute',
      },
      { args: ['erase', '--plan', '--from-plan', 'x.json'], message: '--from-plan goes with --execute' },
      { args: ['export'], message: "required option '-s, --subject <identity>' not specified" },
      { args: ['export', '--subject', 'ada@example.com', '--format', 'pdf'], message: 'pdf' },
      { args: ['consent', 'receipt', 'verify', 'r.json'], message: "required option '--key <pem>'" },
      { args: ['nonsense'], message: "unknown command 'nonsense' (Did you mean" },
      {
        args: ['migrate', '--packages', 'nope', '--db', 'sqlite::memory:'],
        message: 'unknown package "nope"',
      },
      // Bounds the libraries enforce, refused as options (exit 1 from the library before).
      {
        args: ['requests', 'redact', '--closed', '1y', '--batch-size', '100000'],
        message: 'this option is at most 5000',
      },
      { args: ['retention', 'sweep', '--batch-size', '20000'], message: 'this option is at most 10000' },
      {
        args: ['retention', 'backlog', '--grace', '99999999999999999999d'],
        message: 'longer than a hundred years',
      },
      { args: ['requests', 'redact', '--closed', '99999999999y'], message: 'longer than a thousand years' },
      {
        args: ['--db', 'sqlite::memory:', 'requests', 'redact', '--right', 'access=1y=5y', '--dry-run'],
        message: 'got "access=1y=5y"',
      },
      // The plan names its subject: a --subject beside it was ignored and the plan's erased.
      {
        args: ['erase', '--subject', 'eve@example.com', '--plan-id', 'p-1', '--execute'],
        message: 'not both',
      },
      // A config named and missing: migrate migrated every package and exited 0.
      {
        args: ['--config', 'nope.mjs', '--db', 'sqlite::memory:', 'migrate'],
        message: 'nope.mjs does not exist',
      },
      // A schedule the config gets wrong is a configuration error, not lateness.
      {
        args: ['--config', 'bad-schedule.mjs', '--db', 'sqlite::memory:', 'retention', 'backlog'],
        message: 'retention/invalid-schedule',
      },
      // --at read leniently previewed another day: "1" as 2001-01-01, "05/03/2030" as 3 May,
      // "0050-06-01" as 1950; "2030-02-30" was a retention error (exit 1).
      // A mistyped SQLite path: an empty file was created there and the command exited 1 on
      // "no such table" (read as tampering by `consent verify || alert`).
      ...[
        ['consent', 'verify'],
        ['requests', 'due'],
      ].map((command) => ({
        args: ['--db', `sqlite:${join(tmpdir(), `pk-typo-${process.pid}.db`)}`, ...command],
        message: 'does not exist',
      })),
      ...['1', '05/03/2030', '0050-06-01', '2030-02-30', '2030-05-03T09:00', '2030-02-30T09:00:00Z'].map(
        (at) => ({
          args: ['--db', 'sqlite::memory:', 'retention', 'dry-run', '--at', at],
          message: `"${at}" is not a calendar date`,
        }),
      ),
    ];
    for (const { args, cwd, message } of cases) {
      const result = await runInProcess(args, cwd ? { cwd } : {});
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expectOneLineError(result.stderr);
      if (message) expect(result.stderr, args.join(' ')).toContain(message);
    }
    expect(existsSync(join(tmpdir(), `pk-typo-${process.pid}.db`))).toBe(false);
  });

  it('a file that is no key, no tree head or no HAR exits 2: not "TAMPERED", not a clean audit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'privacykit-cli-files-'));
    try {
      const junk = join(dir, 'junk.pem');
      const head = join(dir, 'head.json');
      const har = join(dir, 'cut.har');
      writeFileSync(junk, 'garbage\n');
      writeFileSync(head, '{"x":1}\n');
      writeFileSync(har, '{"log":{"version":"1.2","entries":[{"request":{"url":"https://shop.exa');
      const nullPlan = join(dir, 'null.json');
      const arrayPlan = join(dir, 'array.json');
      writeFileSync(nullPlan, 'null\n');
      writeFileSync(arrayPlan, '[]\n');
      const cases: { args: string[]; message: string }[] = [
        {
          args: ['--db', 'sqlite::memory:', 'consent', 'verify', '--public-key', junk],
          message: 'is not a PEM public key',
        },
        {
          args: ['--db', 'sqlite::memory:', 'consent', 'verify', '--head', head],
          message: 'is not a signed tree head',
        },
        { args: ['cookies', 'audit', har, '--site', 'https://shop.example'], message: 'not a HAR' },
        // A key file that is no key: a valid receipt was declared "INVALID — … altered" (exit 1).
        {
          args: ['consent', 'receipt', 'verify', head, '--key', junk],
          message: 'is not a PEM public key',
        },
        // JSON that is no plan: a TypeError, or "no erasure plan undefined" (exit 1).
        ...[nullPlan, arrayPlan].map((file) => ({
          args: ['--db', 'sqlite::memory:', 'erase', '--execute', '--from-plan', file],
          message: 'is not an erasure plan',
        })),
        // An --out that is a directory, or in a folder that does not exist: EISDIR/ENOENT after
        // the whole export (exit 1).
        {
          args: ['--db', 'sqlite::memory:', 'export', '--subject', 'ada@example.com', '--out', dir],
          message: 'is a directory',
        },
        {
          args: [
            '--db',
            'sqlite::memory:',
            'export',
            '--subject',
            'ada@example.com',
            '--out',
            join(dir, 'nope', 'x.zip'),
          ],
          message: 'does not exist',
        },
      ];
      for (const { args, message } of cases) {
        const result = await runInProcess(args);
        expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2);
        expect(result.stderr).toContain(message);
      }
      // policy render --json --out writes the file (it went to stdout, and no file was written).
      const out = join(dir, 'record.json');
      const rendered = await runInProcess(['policy', 'render', '--record', '--json', '--out', out]);
      expect(rendered.code, rendered.stderr).toBe(0);
      expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ controller: { name: 'Acme SAS' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a configuration error exits 2, not the exit 1 that `requests due || alert` reads as overdue', async () => {
    const due = ['--db', 'sqlite::memory:', 'requests', 'due'];
    const settings = await runBin(['--config', 'bad-requests-settings.mjs', ...due]);
    expect(settings.code, settings.stderr).toBe(2);
    expectOneLineError(settings.stderr);
    expect(settings.stderr).toContain('codeDigits must be 6, 7 or 8 (requests/invalid-options)');

    const cases: { config: string; code: string }[] = [
      { config: 'bad-zone.mjs', code: 'cli/config-invalid' },
      // The module calls definePolicy itself, so the policy's own error escapes the import.
      { config: 'bad-zone-defined.mjs', code: 'policy/invalid' },
    ];
    for (const { config, code } of cases) {
      const result = await runInProcess(['--config', config, ...due]);
      expect(result.code, `${config}: ${result.stderr}`).toBe(2);
      expectOneLineError(result.stderr);
      expect(result.stderr, config).toContain('unknown time zone "Europe/Pariss"');
      expect(result.stderr, config).toContain(`(${code})`);
    }
  });

  it('policy check reports an unknown time zone as a problem of the policy, and exits 1', async () => {
    for (const module of ['bad-zone.mjs', 'bad-zone-defined.mjs']) {
      const result = await runInProcess(['policy', 'check', module, '--json']);
      expect(result.code, `${module}: ${result.stderr}`).toBe(1);
      expect(json<{ ok: boolean; issues: { path: string; message: string }[] }>(result)).toMatchObject({
        ok: false,
        issues: [
          { path: 'policy.zone', message: expect.stringContaining('unknown time zone "Europe/Pariss"') },
        ],
      });
    }
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
      ['requests', 'prune'],
      ['requests', 'redact'],
      ['cookies', 'classify'],
      ['cookies', 'scan'],
      ['cookies', 'audit'],
      ['export'],
      ['erase'],
    ];
    const results = await Promise.all(commands.map((command) => runInProcess([...command, '--help'])));
    results.forEach((result, index) => {
      const name = commands[index]!.join(' ');
      expect(result.code, name).toBe(0);
      expect(result.stdout, name).toMatch(/Examples:\n\s+\$ privacykit/);
    });
    // The binary prints the same help and exits 0.
    const bin = await runBin(['export', '--help']);
    expect(bin.code).toBe(0);
    expect(bin.stdout).toBe(results[commands.findIndex((command) => command[0] === 'export')]!.stdout);
  });
});
