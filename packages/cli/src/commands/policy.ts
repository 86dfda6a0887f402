import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option } from 'commander';
import type { Command } from 'commander';
import { isPrivacyKitError } from '@privacykit/core/errors';
import type { ConfigCheck } from '../config.js';
import { examples } from '../program.js';
import type { ProgramKit } from '../program.js';

const prefixOfCode = (code: string): string =>
  code.startsWith('data-map/') ? 'dataMap' : code.startsWith('policy/') ? 'policy' : 'module';

/** Imports a policy module and checks it; an error thrown while importing becomes issues too. */
async function checkModule(path: string, cwd: string): Promise<ConfigCheck> {
  const { checkConfigValues, configValues, importModule } = await import('../config.js');
  try {
    const values = configValues(await importModule(path, cwd));
    const check = checkConfigValues(values);
    if (values.schedule !== undefined && check.policy) await checkSchedule(values.schedule, check);
    return check;
  } catch (error) {
    if (!isPrivacyKitError(error) || error.code.startsWith('cli/')) throw error;
    const prefix = prefixOfCode(error.code);
    const issues = error.issues.length > 0 ? error.issues : [{ path: '', message: error.message }];
    return {
      issues: issues.map((issue) => ({
        code: error.code,
        path: issue.path ? `${prefix}.${issue.path}` : prefix,
        message: issue.message,
      })),
    };
  }
}

/** The retention schedule is bound to the policy's rules and the data map's tables: check it too. */
async function checkSchedule(schedule: unknown, check: ConfigCheck): Promise<void> {
  const { defineSchedule } = await import('@privacykit/retention');
  try {
    defineSchedule(schedule as Parameters<typeof defineSchedule>[0], {
      ...(check.policy ? { policy: check.policy } : {}),
      ...(check.dataMap ? { dataMap: check.dataMap } : {}),
    });
  } catch (error) {
    if (!isPrivacyKitError(error)) throw error;
    const issues = error.issues.length > 0 ? error.issues : [{ path: '', message: error.message }];
    for (const issue of issues) {
      check.issues.push({
        code: error.code,
        path: issue.path ? `schedule${issue.path.startsWith('[') ? '' : '.'}${issue.path}` : 'schedule',
        message: issue.message,
      });
    }
  }
}

export function registerPolicy(program: Command, kit: ProgramKit): void {
  const policy = program
    .command('policy')
    .description('validate the policy and data map; render the Art 13 notice or Art 30 record');

  examples(
    policy
      .command('check')
      .description(
        'validate a policy module (policy + data map): every error with where it is; exit 1 when any',
      )
      .argument('[module]', 'the module exporting policy and dataMap (default: the config file)'),
    ['privacykit policy check privacykit.config.mjs', 'privacykit policy check --json | jq .issues'],
  ).action(
    kit.action(async (scope) => {
      const [module] = scope.command.processedArgs as [string | undefined];
      const { findConfigFile } = await import('../config.js');
      const path = findConfigFile(scope.io.cwd, module ?? scope.globals.config);
      const check = await checkModule(path, scope.io.cwd);
      const ok = check.issues.length === 0;
      scope.out.result(
        {
          ok,
          module: path,
          issues: check.issues,
          summary: check.policy
            ? {
                tenant: check.policy.tenant,
                version: check.policy.version,
                purposes: check.policy.purposes.length,
                recipients: check.policy.recipients.length,
                retentionRules: check.policy.retention.length,
                cookies: check.policy.cookies.length,
                tables: check.dataMap ? check.dataMap.order.length : 0,
              }
            : null,
        },
        () => {
          if (ok) {
            const p = check.policy;
            return `${path}: ok — policy ${p?.version} (${p?.purposes.length} purposes, ${p?.retention.length} retention rules)${check.dataMap ? `, data map of ${check.dataMap.order.length} tables` : ', no data map'}`;
          }
          return [
            ...check.issues.map((issue) => `${path}: ${issue.path}: ${issue.message} (${issue.code})`),
            `${check.issues.length} problem${check.issues.length === 1 ? '' : 's'} found`,
          ];
        },
      );
      return ok ? 0 : 1;
    }),
  );

  examples(
    policy
      .command('render')
      .description('render the Art 13 privacy notice, or with --record the Art 30 record, from the policy')
      .addOption(
        new Option('-f, --format <format>', 'output format')
          .choices(['markdown', 'html'])
          .default('markdown'),
      )
      .option('--record', 'render the Art 30(1) record of processing activities instead of the notice')
      .option('-o, --out <file>', 'write to a file instead of stdout'),
    [
      'privacykit policy render > PRIVACY.md',
      'privacykit policy render --format html --out public/privacy.html',
      'privacykit policy render --record --format html --out art30.html',
      'privacykit policy render --json   # the structured notice',
    ],
  ).action(
    kit.action(async (scope) => {
      const options = scope.options<{ format: 'markdown' | 'html'; record?: boolean; out?: string }>();
      const { policy: loaded } = await scope.config();
      const { privacyNotice, recordOfProcessing } = await import('@privacykit/core');
      if (scope.out.json) {
        const document = options.record ? recordOfProcessing(loaded) : privacyNotice(loaded);
        if (options.out) {
          // As the other formats: the file, and a note of it (it went to stdout, no file written).
          const target = resolve(scope.io.cwd, options.out);
          writeFileSync(target, `${JSON.stringify(document, null, 2)}\n`);
          scope.out.result({ wrote: target }, () => `wrote ${target}`);
          return 0;
        }
        scope.out.result(document, () => '');
        return 0;
      }
      const { noticeBlocks, recordBlocks } = await import('../render/notice.js');
      const { renderHtml, renderMarkdown } = await import('../render/document.js');
      const blocks = options.record ? recordBlocks(loaded) : noticeBlocks(loaded);
      const title = options.record
        ? `Record of processing activities — ${loaded.controller.name}`
        : `Privacy notice — ${loaded.controller.name}`;
      const text =
        options.format === 'html'
          ? renderHtml(blocks, { title, lang: loaded.language })
          : renderMarkdown(blocks);
      if (options.out) {
        const target = resolve(scope.io.cwd, options.out);
        writeFileSync(target, text);
        scope.out.note(`wrote ${target}`);
      } else {
        scope.io.stdout.write(text);
      }
      return 0;
    }),
  );
}
