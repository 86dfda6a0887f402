import type { Command } from 'commander';
import type { Clock } from '@privacykit/core';
import type { RetentionEngine, RetentionSchedule, SweepOptions } from '@privacykit/retention';
import { parseDuration } from '../duration.js';
import { cliError } from '../errors.js';
import { boundedIntegerOption, optionParser, positiveIntegerOption } from '../options.js';
import { formatTable } from '../output.js';
import { examples } from '../program.js';
import type { CommandScope, ProgramKit } from '../program.js';
import { settingsOf } from '../settings.js';

/** `--budget 5000` (rows) or `--budget 10m` (wall-clock time). */
export type Budget = { rows: number } | { milliseconds: number };

export const budgetOption = optionParser((text: string): Budget => {
  if (/^\d+$/.test(text.trim())) {
    const rows = Number(text);
    if (rows < 1) throw cliError('cli/usage', '--budget must be at least 1 row');
    return { rows };
  }
  return { milliseconds: parseDuration(text) };
});

/** `--at`: a civil date (`YYYY-MM-DD`, a day in the policy's zone) or an ISO 8601 instant. */
const instantOption = optionParser((text: string): string | Date => {
  const civil = /^\d{4}-\d{2}-\d{2}$/.test(text);
  // Only these two forms: V8's lenient parser read "1" as 2001-01-01 and "05/03/2030" as 3 May.
  const instant = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i.test(text);
  const date = new Date(civil ? `${text}T12:00:00Z` : text);
  const year = Number(text.slice(0, 4));
  if (
    (!civil && !instant) ||
    Number.isNaN(date.getTime()) ||
    // 2030-02-30 rolled over into March (in an instant too); a year before 1000 was read as 19xx.
    new Date(`${text.slice(0, 10)}T12:00:00Z`).toISOString().slice(0, 10) !== text.slice(0, 10) ||
    year < 1000
  ) {
    throw cliError(
      'cli/usage',
      `"${text}" is not a calendar date (YYYY-MM-DD) or an ISO 8601 instant with its offset (2030-05-03T09:00:00Z)`,
    );
  }
  return civil ? text : date;
});

/**
 * The instant `--at` names: a civil date is its noon in the policy's zone. Noon UTC was already
 * the next day at UTC+12 and later (New Zealand, Tonga): the preview showed a day too late.
 */
export async function instantOf(at: string | Date, zone: string): Promise<Date> {
  if (at instanceof Date) return at;
  const { startOfCivilDay } = await import('@privacykit/retention');
  return new Date(startOfCivilDay(at, zone).getTime() + 12 * 60 * 60 * 1000);
}

async function scheduleOf(scope: CommandScope): Promise<RetentionSchedule> {
  const config = await scope.config();
  if (config.schedule === undefined) {
    throw cliError(
      'cli/config-invalid',
      `${config.path} exports no schedule: bind the policy's retention rules to tables (see @privacykit/retention defineSchedule)`,
    );
  }
  const { defineSchedule } = await import('@privacykit/retention');
  return defineSchedule(config.schedule as Parameters<typeof defineSchedule>[0], {
    policy: config.policy,
    dataMap: config.dataMap,
  });
}

/** The retention engine of the config's schedule; `clock` defaults to the system clock. */
async function engineOf(scope: CommandScope, clock?: Clock): Promise<RetentionEngine> {
  const config = await scope.config();
  const schedule = await scheduleOf(scope);
  const { systemClock } = await import('@privacykit/core');
  const { createRetentionEngine } = await import('@privacykit/retention');
  const settings = settingsOf(config, 'retention');
  const pseudonymKey =
    (typeof settings.pseudonymKey === 'string' ? settings.pseudonymKey : undefined) ??
    scope.io.env.PRIVACYKIT_PSEUDONYM_KEY;
  return createRetentionEngine({
    db: await scope.database(),
    schedule,
    dataMap: config.dataMap,
    policy: config.policy,
    clock: clock ?? systemClock,
    ...(pseudonymKey ? { pseudonymKey } : {}),
  });
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

export function registerRetention(program: Command, kit: ProgramKit): void {
  const retention = program
    .command('retention')
    .description('retention schedule: plan, dry run, sweep and backlog (Art 5(1)(e), Art 13(2)(a))');

  examples(
    retention
      .command('plan')
      .description('show the schedule: which rule applies to which table, and when each phase falls due'),
    ['privacykit retention plan', 'privacykit retention plan --json'],
  ).action(
    kit.action(async (scope) => {
      const schedule = await scheduleOf(scope);
      const { describeDue } = await import('@privacykit/core');
      const entries = schedule.entries.map((entry) => ({
        rule: entry.rule.id,
        title: entry.rule.title,
        table: entry.table,
        zone: entry.zone,
        phases: entry.rule.phases.map((phase, index) => ({
          phase: index,
          action: phase.action,
          due: describeDue(phase.due, entry.rule),
        })),
      }));
      scope.out.result({ entries }, () =>
        formatTable(
          entries.flatMap((entry) => entry.phases.map((phase) => ({ ...entry, ...phase }))),
          [
            { label: 'RULE', value: (row) => row.rule },
            { label: 'TABLE', value: (row) => row.table },
            { label: 'PHASE', value: (row) => row.phase, align: 'right' },
            { label: 'ACTION', value: (row) => row.action },
            { label: 'DUE', value: (row) => row.due },
            { label: 'ZONE', value: (row) => row.zone },
          ],
        ),
      );
      return 0;
    }),
  );

  examples(
    retention
      .command('dry-run')
      .description('count what a sweep would do now, with the very queries the sweep runs; changes nothing')
      .option('--at <date>', 'as if today were this date (YYYY-MM-DD or ISO instant)', instantOption)
      .option('--sample <n>', 'keys to show per phase', positiveIntegerOption, 5),
    ['privacykit retention dry-run', 'privacykit retention dry-run --at 2030-01-01 --json'],
  ).action(
    kit.action(async (scope) => {
      const options = scope.options<{ at?: string | Date; sample: number }>();
      const { fixedClock } = await import('@privacykit/core');
      const at = options.at && (await instantOf(options.at, (await scope.config()).policy.zone));
      const engine = await engineOf(scope, at ? fixedClock(at) : undefined);
      const phases = await engine.dryRun({ sample: options.sample });
      const due = phases.reduce((sum, phase) => sum + phase.due, 0);
      const held = phases.reduce((sum, phase) => sum + phase.held, 0);
      scope.out.result({ tenant: engine.tenant, due, held, phases }, () => [
        formatTable(phases, [
          { label: 'RULE', value: (row) => row.rule },
          { label: 'TABLE', value: (row) => row.table },
          { label: 'PHASE', value: (row) => row.phase, align: 'right' },
          { label: 'ACTION', value: (row) => row.action },
          { label: 'TODAY', value: (row) => row.today },
          { label: 'DUE', value: (row) => row.due, align: 'right' },
          { label: 'HELD', value: (row) => row.held, align: 'right' },
          { label: 'SAMPLE', value: (row) => row.sampleKeys.join(',') },
        ]),
        `${plural(due, 'row')} due, ${held} held by legal holds`,
      ]);
      return 0;
    }),
  );

  examples(
    retention
      .command('sweep')
      .description(
        'apply every due phase in bounded batches (one transaction each), recording a disposition per row and a run certificate; exit 1 when rows remain due',
      )
      .option(
        '--batch-size <n>',
        'rows per batch and transaction (1–10000)',
        boundedIntegerOption(10_000),
        1000,
      )
      .option(
        '--budget <rows|duration>',
        'stop after this many rows (500) or this long (10m); the next sweep resumes',
        budgetOption,
      )
      .option('--allow-incomplete', 'exit 0 even when the budget ran out with rows still due'),
    [
      'privacykit retention sweep',
      'privacykit retention sweep --batch-size 500 --budget 10m --json > certificate.json',
      '# cron: 15 3 * * * privacykit retention sweep --quiet || alert "retention sweep failed"',
    ],
  ).action(
    kit.action(async (scope) => {
      const options = scope.options<{ batchSize: number; budget?: Budget; allowIncomplete?: boolean }>();
      const engine = await engineOf(scope);
      let total: number | undefined;
      if (!scope.out.quiet) {
        const phases = await engine.dryRun({ sample: 0 });
        total = phases.reduce((sum, phase) => sum + phase.due, 0);
        if (options.budget && 'rows' in options.budget) total = Math.min(total, options.budget.rows);
      }
      const progress = scope.out.progress('sweep', total);
      // `onProgress` is honoured by retention versions that report batches; older ones ignore it.
      const sweepOptions: SweepOptions & {
        onProgress?: (event: { handled?: number; records?: number; rule?: string; table?: string }) => void;
      } = {
        batchSize: options.batchSize,
        ...(options.budget ? { budget: options.budget } : {}),
        onProgress: (event) =>
          progress.update(event.handled ?? event.records ?? 0, {
            detail: event.rule ? `${event.rule} → ${event.table ?? ''}` : '',
          }),
      };
      let result: Awaited<ReturnType<RetentionEngine['sweep']>>;
      try {
        result = await engine.sweep(sweepOptions);
        progress.update(result.records, { detail: result.complete ? 'done' : 'budget reached' });
      } finally {
        progress.stop();
      }
      scope.out.result(result, () => [
        `run ${result.runId}: ${plural(result.records, 'disposition')}${result.complete ? '' : ' (budget reached, rows remain due)'}`,
        ...(result.counts.length > 0
          ? [
              formatTable(result.counts, [
                { label: 'RULE', value: (row) => row.rule },
                { label: 'TABLE', value: (row) => row.table },
                { label: 'PHASE', value: (row) => row.phase, align: 'right' },
                { label: 'ACTION', value: (row) => row.action },
                { label: 'OUTCOME', value: (row) => row.outcome },
                { label: 'ROWS', value: (row) => row.count, align: 'right' },
              ]),
            ]
          : []),
        `certificate sha256 ${result.hash}`,
      ]);
      return result.complete || options.allowIncomplete ? 0 : 1;
    }),
  );

  examples(
    retention
      .command('backlog')
      .description(
        'due rows not yet handled, per rule and phase, and rows whose dates cannot be read; exit 1 when any is older than --grace, or unreadable',
      )
      .option('--grace <duration>', 'how late a due row may be before it counts as overdue', '1d'),
    ['privacykit retention backlog', 'privacykit retention backlog --grace 3d --json'],
  ).action(
    kit.action(async (scope) => {
      const options = scope.options<{ grace: string }>();
      const grace = parseDuration(options.grace);
      const config = await scope.config();
      const engine = await engineOf(scope);
      const { civilDateOf } = await import('@privacykit/retention');
      const { systemClock } = await import('@privacykit/core');
      const entries = await engine.backlog();
      const limit = civilDateOf(new Date(systemClock.now().getTime() - grace), config.policy.zone);
      const overdue = entries.filter(
        (entry) => entry.count > 0 && entry.oldestDue !== null && entry.oldestDue < limit,
      );
      const rows = entries.reduce((sum, entry) => sum + entry.count, 0);
      // Rows whose dates the planner cannot read are never handled until someone repairs them.
      const invalid = entries.reduce((sum, entry) => sum + (entry.invalid ?? 0), 0);
      scope.out.result(
        { tenant: engine.tenant, rows, overdue: overdue.length > 0, overdueBefore: limit, invalid, entries },
        () =>
          rows === 0 && invalid === 0
            ? 'no backlog'
            : [
                formatTable(
                  entries.filter((entry) => entry.count > 0 || (entry.invalid ?? 0) > 0),
                  [
                    { label: 'RULE', value: (row) => row.rule },
                    { label: 'TABLE', value: (row) => row.table },
                    { label: 'PHASE', value: (row) => row.phase, align: 'right' },
                    { label: 'ACTION', value: (row) => row.action },
                    { label: 'ROWS', value: (row) => row.count, align: 'right' },
                    { label: 'OLDEST DUE', value: (row) => row.oldestDue },
                    { label: 'UNREADABLE', value: (row) => row.invalid ?? 0, align: 'right' },
                  ],
                ),
                `${plural(rows, 'row')} due${overdue.length > 0 ? `; overdue: due before ${limit} and not yet handled` : ''}`,
                ...entries
                  .filter((entry) => (entry.invalid ?? 0) > 0)
                  .map(
                    (entry) =>
                      `${plural(entry.invalid, 'row')} of ${entry.table} with a date that cannot be read, never handled until repaired (keys ${(entry.invalidKeys ?? []).join(', ')})`,
                  ),
              ],
      );
      return overdue.length > 0 || invalid > 0 ? 1 : 0;
    }),
  );
}
