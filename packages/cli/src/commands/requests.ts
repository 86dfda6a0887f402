import type { Command } from 'commander';
import type { RequestRecord, RequestServiceOptions } from '@privacykit/requests';
import { calendarPeriodOption, parseCalendarPeriod } from '../calendar-period.js';
import { parsePositiveInteger } from '../duration.js';
import { cliError } from '../errors.js';
import { boundedIntegerOption, durationOption, optionParser } from '../options.js';
import { formatTable } from '../output.js';
import { examples } from '../program.js';
import type { CommandScope, ProgramKit } from '../program.js';
import { settingsOf } from '../settings.js';
import { collect } from '../subject.js';

const DAY = 86_400_000;

/** The most counter rows `pruneThrottles` deletes in one statement. */
const MAX_PRUNE_BATCH = 5_000;

const batchSizeOption = optionParser((text: string): number => {
  const size = parsePositiveInteger(text, '--batch-size');
  if (size > MAX_PRUNE_BATCH) {
    throw cliError('cli/usage', `--batch-size is at most ${MAX_PRUNE_BATCH}, got ${size}`);
  }
  return size;
});

/** The request service of the config's policy, with its `requests` settings, on the database. */
async function requestServiceOf(scope: CommandScope) {
  const config = await scope.config();
  const { createRequestService } = await import('@privacykit/requests');
  const settings = settingsOf(config, 'requests') as Partial<RequestServiceOptions>;
  const service = createRequestService({
    ...settings,
    db: await scope.database(),
    policy: config.policy,
    dataMap: config.dataMap,
  });
  return { config, service };
}

export function registerRequests(program: Command, kit: ProgramKit): void {
  const requests = program
    .command('requests')
    .description('data subject rights requests and their Art 12(3) deadlines');

  examples(
    requests
      .command('due')
      .description('open requests due within the window, and every overdue one; exit 1 when any is overdue')
      .option('--within <duration>', 'window ahead of today: 7d, 2w, 36h', durationOption, 7 * DAY),
    [
      'privacykit requests due --within 7d',
      'privacykit requests due --within 2w --json | jq ".requests[].id"',
    ],
  ).action(
    kit.action(async (scope) => {
      const { within } = scope.options<{ within: number }>();
      const { config, service } = await requestServiceOf(scope);
      const { calendarDaysBetween, civilDateIn } = await import('@privacykit/requests');
      const days = Math.max(0, Math.ceil(within / DAY));
      const [overdue, soon] = await Promise.all([service.list({ overdue: true }), service.dueSoon({ days })]);
      const today = civilDateIn(new Date(), config.policy.zone);
      const seen = new Set<string>();
      const rows = [...overdue, ...soon]
        .filter((request) => {
          if (seen.has(request.id)) return false;
          seen.add(request.id);
          return true;
        })
        .map((request: RequestRecord) => {
          const daysLeft = calendarDaysBetween(today, request.effectiveDeadline);
          return {
            id: request.id,
            right: request.right,
            status: request.status,
            receivedDate: request.receivedDate,
            deadline: request.effectiveDeadline,
            extended: request.extension.months > 0,
            daysLeft,
            overdue: daysLeft < 0,
            assignee: request.assignee,
          };
        })
        .sort((a, b) => a.deadline.localeCompare(b.deadline) || a.id.localeCompare(b.id));
      const overdueCount = rows.filter((row) => row.overdue).length;
      scope.out.result(
        { tenant: config.policy.tenant, today, withinDays: days, overdue: overdueCount, requests: rows },
        () =>
          rows.length === 0
            ? `no open request due within ${days} days`
            : [
                formatTable(rows, [
                  { label: 'ID', value: (row) => row.id },
                  { label: 'RIGHT', value: (row) => row.right },
                  { label: 'STATUS', value: (row) => row.status },
                  { label: 'RECEIVED', value: (row) => row.receivedDate },
                  { label: 'DEADLINE', value: (row) => `${row.deadline}${row.extended ? ' (ext)' : ''}` },
                  {
                    label: 'DAYS LEFT',
                    value: (row) => (row.overdue ? `OVERDUE ${-row.daysLeft}d` : row.daysLeft),
                    align: 'right',
                  },
                  { label: 'ASSIGNEE', value: (row) => row.assignee },
                ]),
                `${rows.length} request${rows.length === 1 ? '' : 's'}, ${overdueCount} overdue`,
              ],
      );
      return overdueCount > 0 ? 1 : 0;
    }),
  );

  examples(
    requests
      .command('prune')
      .description(
        'delete the per-identity counters of the mail throttle and the code-guess limit whose windows have all ended (Art 5(1)(e)); for cron',
      )
      .option(
        '--batch-size <n>',
        `counter rows per delete statement (1–${MAX_PRUNE_BATCH}, default 500)`,
        batchSizeOption,
      ),
    [
      'privacykit requests prune',
      'privacykit requests prune --batch-size 1000 --json',
      '# cron: */15 * * * * privacykit requests prune --quiet || alert "requests prune failed"',
    ],
  ).action(
    kit.action(async (scope) => {
      const { batchSize } = scope.options<{ batchSize?: number }>();
      const { config, service } = await requestServiceOf(scope);
      // The windows are the config's `mailThrottle` and `codeGuessLimit`, as the service's: a
      // counter is deleted only once every window the application counts in has ended.
      const deleted = await service.pruneThrottles(batchSize === undefined ? {} : { batchSize });
      scope.out.result(
        { tenant: config.policy.tenant, deleted },
        () =>
          `deleted ${deleted} request counter${deleted === 1 ? '' : 's'} whose windows had all ended (tenant ${config.policy.tenant})`,
      );
      return 0;
    }),
  );
}

/**
 * `requests redact`: the request log's own storage limitation (Art 5(1)(e)). Closed requests
 * lose their personal data a period after closure (per right where the policy says so),
 * never-verified ones a period after receipt; the skeleton stays as evidence (Art 5(2)).
 */
export function registerRequestsRedact(program: Command, kit: ProgramKit): void {
  const requests =
    program.commands.find((command) => command.name() === 'requests') ??
    program.command('requests').description('data subject rights requests and their Art 12(3) deadlines');

  examples(
    requests
      .command('redact')
      .description(
        'strip the personal data of requests closed longer ago than a period, and of requests never verified; keep the skeleton as evidence',
      )
      .option(
        '--closed <period>',
        'closed requests of every right, this long after closure: 1y, 18mo, 30d',
        calendarPeriodOption,
      )
      .option(
        '--right <right=period>',
        'closed requests of one right (repeatable), overriding --closed; "keep" keeps them: objection=3y, erasure=keep',
        collect,
      )
      .option(
        '--unverified <period>',
        'requests never verified, this long after receipt: 30d',
        calendarPeriodOption,
      )
      .option(
        '--batch-size <n>',
        'requests per batch and transaction (1–5000)',
        boundedIntegerOption(5000),
        500,
      )
      .option('--dry-run', 'count what is due, change nothing'),
    [
      'privacykit requests redact --closed 1y --right objection=3y --unverified 30d',
      'privacykit requests redact --right access=1y --right rectification=1y --dry-run --json',
    ],
  ).action(
    kit.action(async (scope) => {
      const options = scope.options<{
        closed?: string;
        right?: string[];
        unverified?: string;
        batchSize: number;
        dryRun?: boolean;
      }>();
      const { requestRightSchema } = await import('@privacykit/requests');
      const { addPeriod, civilDateOf, startOfCivilDay } = await import('@privacykit/retention');
      const perRight = new Map<string, string | null>();
      for (const entry of options.right ?? []) {
        const [right, period, ...extra] = entry.split('=');
        if (!right || !period || extra.length > 0 || !requestRightSchema.safeParse(right.trim()).success)
          throw cliError(
            'cli/usage',
            `--right expects <right>=<period|keep> with a right among ${requestRightSchema.options.join(', ')}; got "${entry}"`,
          );
        perRight.set(right.trim(), period.trim() === 'keep' ? null : parseCalendarPeriod(period));
      }
      if (options.closed === undefined && perRight.size === 0 && options.unverified === undefined)
        throw cliError('cli/usage', 'say what is due: --closed, --right or --unverified');
      const { config, service } = await requestServiceOf(scope);
      const zone = config.policy.zone;
      // "P after D" is due at 00:00 in the controller's zone on D + P, as retention counts.
      const after = (instant: Date, period: string) =>
        startOfCivilDay(addPeriod(civilDateOf(instant, zone), period), zone);
      const result = await service.redact({
        batchSize: options.batchSize,
        dryRun: options.dryRun === true,
        dueAt: (request) => {
          if (request.closedAt === null) {
            return options.unverified === undefined ? null : after(request.receivedAt, options.unverified);
          }
          const period = perRight.has(request.right) ? perRight.get(request.right) : options.closed;
          return period ? after(request.closedAt, period) : null;
        },
      });
      const dryRun = options.dryRun === true;
      scope.out.result({ tenant: config.policy.tenant, dryRun, ...result }, () =>
        result.redacted === 0
          ? 'no request is due for redaction'
          : `${dryRun ? 'would redact' : 'redacted'} ${result.redacted} request${result.redacted === 1 ? '' : 's'}: ${result.closed} closed, ${result.unverified} never verified`,
      );
      return 0;
    }),
  );
}
