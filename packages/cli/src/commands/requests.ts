import type { Command } from 'commander';
import type { RequestRecord, RequestServiceOptions } from '@privacykit/requests';
import { durationOption } from '../options.js';
import { formatTable } from '../output.js';
import { examples } from '../program.js';
import type { ProgramKit } from '../program.js';
import { settingsOf } from '../settings.js';

const DAY = 86_400_000;

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
      const config = await scope.config();
      const { calendarDaysBetween, civilDateIn, createRequestService } = await import('@privacykit/requests');
      const settings = settingsOf(config, 'requests') as Partial<RequestServiceOptions>;
      const service = createRequestService({
        ...settings,
        db: await scope.database(),
        policy: config.policy,
        dataMap: config.dataMap,
      });
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
}
