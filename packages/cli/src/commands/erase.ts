import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { PrivacyKitError, isPrivacyKitError } from '@privacykit/core/errors';
import type {
  ErasurePlan,
  ErasureVerification,
  HoldLookup,
  HoldSource,
  PlanErasureOptions,
} from '@privacykit/erasure';
import { cliError } from '../errors.js';
import { readJsonFile } from '../files.js';
import { formatTable } from '../output.js';
import { examples } from '../program.js';
import type { CommandScope, ProgramKit } from '../program.js';
import { settingsOf } from '../settings.js';
import { ledgerOf } from './consent.js';
import { collect, subjectIdentities } from '../subject.js';

/**
 * The retention package's legal holds, when the project uses retention (a `schedule` or a
 * `retention` section in the config): held rows are kept under Art 17(3)(e).
 */
async function holdsOf(scope: CommandScope): Promise<HoldSource | undefined> {
  const config = await scope.config();
  if (config.schedule === undefined && config.values.retention === undefined) return undefined;
  if (!config.dataMap) return undefined;
  const { systemClock } = await import('@privacykit/core');
  const { createRetentionEngine } = await import('@privacykit/retention');
  // The engine answers by row, table, category and subject hold, naming every hold on a row.
  return createRetentionEngine({
    db: await scope.database(),
    schedule: (config.schedule ?? []) as Parameters<typeof createRetentionEngine>[0]['schedule'],
    dataMap: config.dataMap,
    policy: config.policy,
    clock: systemClock,
  });
}

function planLines(plan: ErasurePlan): string[] {
  return [
    `erasure plan ${plan.id} (tenant ${plan.tenant}, policy ${plan.policyVersion})`,
    formatTable(plan.tables, [
      { label: 'TABLE', value: (row) => row.table },
      { label: 'ACTION', value: (row) => row.action },
      {
        label: 'STATUS',
        value: (row) => (row.status === 'blocked' ? `BLOCKED: ${row.blockedReason ?? ''}` : row.status),
      },
      { label: 'ROWS', value: (row) => row.rows, align: 'right' },
      { label: 'ERASE', value: (row) => row.erase, align: 'right' },
      {
        label: 'RETAINED',
        value: (row) =>
          row.retained
            .map(
              (group) =>
                `${group.rows} ${group.article}${group.retainUntil.latest ? ` until ${group.retainUntil.latest}` : ''}`,
            )
            .join('; '),
      },
    ]),
    ...(plan.recipients.length > 0
      ? [`recipients to notify (Art 19): ${plan.recipients.map((recipient) => recipient.name).join(', ')}`]
      : []),
    `${plan.summary.rows} rows found: ${plan.summary.erase} to erase, ${plan.summary.retained} retained${plan.summary.blocked.length > 0 ? `; BLOCKED tables: ${plan.summary.blocked.join(', ')}` : ''}`,
    `execute it with: privacykit erase --execute --plan-id ${plan.id}`,
  ];
}

/**
 * The library's refusal when another worker holds the plan (executing or verifying it), took it
 * over from this run, a legal hold placed since planning covers it, or a newer plan replaced it,
 * with what the operator does next. Other errors pass through unchanged.
 */
function withNextStep(error: unknown, plan: ErasurePlan): unknown {
  const planId = plan.id;
  if (isPrivacyKitError(error, 'erasure/held-since-planning')) {
    const again = plan.requestId
      ? `privacykit erase --subject <identity> --request ${plan.requestId} --replan --plan`
      : 'privacykit erase --subject <identity> --plan';
    return new PrivacyKitError(
      error.code,
      `${error.message}. Plan it again (\`${again}\`), then execute the new plan: it keeps the held rows under Art 17(3)(e) and erases the rest`,
      { cause: error, details: error.details },
    );
  }
  if (isPrivacyKitError(error, 'erasure/plan-superseded')) {
    const next = error.details.supersededBy;
    return new PrivacyKitError(
      error.code,
      typeof next === 'string'
        ? `${error.message}. Execute the plan that replaced it: \`privacykit erase --execute --plan-id ${next}\``
        : error.message,
      { cause: error, details: error.details },
    );
  }
  if (isPrivacyKitError(error, 'erasure/plan-locked')) {
    return new PrivacyKitError(
      error.code,
      `${error.message}. Run \`privacykit erase --execute --plan-id ${planId}\` again once it is done: it resumes the plan, or changes nothing if it is complete, and verifies it`,
      { cause: error, details: error.details },
    );
  }
  if (isPrivacyKitError(error, 'erasure/lease-lost')) {
    return new PrivacyKitError(
      error.code,
      `${error.message}. The worker that took the plan over finishes it; check with \`privacykit erase --execute --plan-id ${planId}\` once it is done`,
      { cause: error, details: error.details },
    );
  }
  return error;
}

/** The stored plan with this id (`--plan-id`), in the config's tenant. */
async function storedPlan(scope: CommandScope, planId: string): Promise<ErasurePlan> {
  const config = await scope.config();
  const erasure = await import('@privacykit/erasure');
  const record = await erasure.getErasureRecord({
    db: await scope.database(),
    planId,
    tenant: config.policy.tenant,
  });
  return record.plan;
}

export function registerErase(program: Command, kit: ProgramKit): void {
  examples(
    program
      .command('erase')
      .description(
        "erase a data subject (Art 17): --plan previews what is deleted, masked and retained under Art 17(3); --execute does it, then verifies only the retained remainder is left; --purge then forgets the subject's identities and the plan's secrets, keeping the proof",
      )
      .option(
        '-s, --subject <identity>',
        'the verified identity: kind:value or a bare email (repeatable)',
        collect,
      )
      .option('--plan', 'compute and show the plan; change nothing in the host tables')
      .option(
        '--execute',
        'execute the plan (a new one, --from-plan or --plan-id) and verify it; again: resumes or re-verifies',
      )
      .option(
        '--purge',
        "once executed, verified and every Art 19 notice delivered: purge the plan's identities and secrets (--plan-id or --from-plan)",
      )
      .option('--from-plan <file>', 'the plan saved earlier with --plan --out')
      .option('--plan-id <id>', 'a stored plan, by the id --plan printed')
      .option('--request <id>', 'the rights request this erasure answers (same request, same plan)')
      .option(
        '--replan',
        "with --request: replace the request's plan if it never ran (say a legal hold placed since planning stopped it); the new plan keeps the held rows",
      )
      .option('--consent-subject <id>', "the subject's id in the consent ledger, to crypto-shred it")
      .option('-o, --out <file>', 'with --plan: save the plan as JSON for review and --from-plan'),
    [
      'privacykit erase --subject ada@example.com --plan',
      'privacykit erase --subject ada@example.com --plan --out plan.json && privacykit erase --execute --from-plan plan.json',
      'privacykit erase --subject ada@example.com --execute --json',
      'privacykit erase --purge --plan-id 01J9Z4…',
    ],
  ).action(
    kit.action(async (scope) => {
      const options = scope.options<{
        subject?: string[];
        plan?: boolean;
        execute?: boolean;
        purge?: boolean;
        fromPlan?: string;
        planId?: string;
        request?: string;
        replan?: boolean;
        consentSubject?: string;
        out?: string;
      }>();
      if ([options.plan, options.execute, options.purge].filter(Boolean).length !== 1) {
        throw cliError(
          'cli/usage',
          "say what to do, one of: --plan (preview) or --execute, or --purge (a verified plan's identities)",
        );
      }
      if (options.fromPlan && options.plan)
        throw cliError('cli/usage', '--from-plan goes with --execute or --purge');
      if (options.planId && options.plan)
        throw cliError('cli/usage', '--plan-id goes with --execute or --purge');
      if (options.planId && options.fromPlan)
        throw cliError('cli/usage', 'give the plan once: --plan-id or --from-plan');
      if (options.purge && !options.planId && !options.fromPlan)
        throw cliError('cli/usage', '--purge needs the plan: --plan-id <id> or --from-plan <file>');
      if (options.purge && options.subject?.length)
        throw cliError('cli/usage', '--purge takes the plan (--plan-id or --from-plan), not --subject');
      // The plan names its subject: a --subject beside it was ignored, and the plan's ran.
      if ((options.planId || options.fromPlan) && options.subject?.length)
        throw cliError(
          'cli/usage',
          'give the subject (--subject) or the plan (--plan-id or --from-plan), not both: the plan names its subject',
        );
      if (!options.fromPlan && !options.planId && !options.subject?.length)
        throw cliError('cli/usage', 'give the subject with --subject <identity>');
      if (options.replan && (options.fromPlan || options.planId || options.purge))
        throw cliError('cli/usage', '--replan makes a new plan: give --subject and --request, not a plan');
      if (options.replan && !options.request)
        throw cliError('cli/usage', '--replan needs the request whose plan it replaces: --request <id>');
      const config = await scope.config();
      const erasure = await import('@privacykit/erasure');
      const db = await scope.database();
      const settings = settingsOf(config, 'erasure') as Partial<PlanErasureOptions>;
      let holdSource: Promise<HoldSource | HoldLookup | undefined> | undefined;
      const holds = () => {
        holdSource ??= settings.holds ? Promise.resolve(settings.holds) : holdsOf(scope);
        return holdSource;
      };
      let plan: ErasurePlan;
      if (options.fromPlan) {
        const parsed = readJsonFile(scope.io.cwd, options.fromPlan, 'erasure plan');
        // JSON that is no plan (null, [], another document): a TypeError or "no erasure plan
        // undefined" before; the stored plan it names is what runs.
        const { id, tenant } = (parsed ?? {}) as { id?: unknown; tenant?: unknown };
        if (
          typeof parsed !== 'object' ||
          parsed === null ||
          Array.isArray(parsed) ||
          typeof id !== 'string' ||
          typeof tenant !== 'string'
        ) {
          throw cliError(
            'cli/invalid-file',
            `${options.fromPlan} is not an erasure plan (a JSON object with its id and tenant, as erase --plan --out writes)`,
          );
        }
        plan = parsed as ErasurePlan;
      } else if (options.planId) {
        plan = await storedPlan(scope, options.planId);
      } else {
        if (!config.dataMap) {
          throw cliError(
            'cli/config-invalid',
            `${config.path} exports no dataMap: erasure needs to know where data lives`,
          );
        }
        const held = await holds();
        plan = await erasure.planErasure({
          ...(held ? { holds: held } : {}),
          ...(settings.strategies ? { strategies: settings.strategies } : {}),
          ...(settings.facts ? { facts: settings.facts } : {}),
          db,
          dataMap: config.dataMap,
          policy: config.policy,
          identities: subjectIdentities(options.subject ?? [], config.dataMap),
          ...(options.request ? { requestId: options.request } : {}),
          ...(options.replan ? { replace: true } : {}),
          ...(options.consentSubject ? { subjectId: options.consentSubject } : {}),
        });
      }
      if (options.plan) {
        if (options.out) {
          const target = resolve(scope.io.cwd, options.out);
          writeFileSync(target, `${JSON.stringify(plan, null, 2)}\n`, { mode: 0o600 });
          scope.out.note(`saved plan to ${target}`);
        }
        scope.out.result(plan, () => planLines(plan));
        return plan.summary.blocked.length > 0 ? 1 : 0;
      }
      if (options.purge) {
        const record = await erasure
          .purgeErasureIdentities({ db, planId: plan.id, tenant: plan.tenant })
          .catch((error: unknown) => {
            throw withNextStep(error, plan);
          });
        const verification = record.verification as ErasureVerification | undefined;
        scope.out.result(
          {
            planId: plan.id,
            requestId: record.plan.requestId ?? null,
            status: record.status,
            identitiesPurgedAt: record.identitiesPurgedAt,
            verification: verification ? { ok: verification.ok, checkedAt: verification.checkedAt } : null,
          },
          () => [
            `erasure ${plan.id}: identities and secrets purged at ${record.identitiesPurgedAt}`,
            `kept as proof: status ${record.status}, the report, the verification of ${verification?.checkedAt ?? '?'} and ${record.plan.summary.retained} restricted rows' keys`,
          ],
        );
        return 0;
      }
      const progress = scope.out.progress('erase (rows changed)');
      let changed = 0;
      let report: Awaited<ReturnType<typeof erasure.executeErasure>>;
      // Asked again before anything changes: a hold placed since planning stops the erasure.
      const held = await holds();
      // The plan names the subject's consent-ledger id (--consent-subject): the ledger shreds its
      // keys once the rows are gone. Without it the id was stored and nothing was shredded.
      const ledger = plan.subjectId ? await ledgerOf(scope) : undefined;
      const keyShredder = ledger && {
        shredSubject: async (subjectId: string) => {
          await ledger.shredSubject(subjectId);
        },
      };
      try {
        report = await erasure.executeErasure(plan, {
          db,
          ...(held ? { holds: held } : {}),
          ...(keyShredder ? { keyShredder } : {}),
          onBatch: (batch) => {
            changed += batch.deleted + batch.updated + batch.restricted;
            progress.update(changed, { detail: batch.table });
          },
        });
      } catch (error) {
        throw withNextStep(error, plan);
      } finally {
        progress.stop();
      }
      const verification = await erasure.verifyErasure({ db, plan }).catch((error: unknown) => {
        throw withNextStep(error, plan);
      });
      // `partial` means an Art 17(3) remainder was kept as planned; only failures and leftovers alert.
      const ok = report.status !== 'failed' && verification.ok;
      scope.out.result({ ok, plan: { id: plan.id, summary: plan.summary }, report, verification }, () => [
        `erasure ${plan.id}: ${report.status}, ${report.changes} rows changed`,
        formatTable(report.tables, [
          { label: 'TABLE', value: (row) => row.table },
          { label: 'STATUS', value: (row) => (row.reason ? `${row.status}: ${row.reason}` : row.status) },
          { label: 'DELETED', value: (row) => row.deleted, align: 'right' },
          { label: 'MASKED', value: (row) => row.updated, align: 'right' },
          { label: 'RESTRICTED', value: (row) => row.restricted, align: 'right' },
        ]),
        ...report.retained.map(
          (group) =>
            `retained: ${group.rows} rows of ${group.table} under ${group.article} (${group.reason})`,
        ),
        verification.ok
          ? 'verified: only the retained remainder is left'
          : `VERIFICATION FAILED: ${verification.leftoverCount} rows should not be there`,
        ...(report.notifications > 0 ? [`${report.notifications} Art 19 notifications queued`] : []),
        ...(ok
          ? [
              `once every Art 19 notice is delivered, forget the subject: privacykit erase --purge --plan-id ${plan.id}`,
            ]
          : []),
      ]);
      return ok ? 0 : 1;
    }),
  );
}
