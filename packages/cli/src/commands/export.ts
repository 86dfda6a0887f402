import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Option } from 'commander';
import type { Command } from 'commander';
import type { ConsentHistoryEntry, ConsentLedgerOptions, ConsentRecord } from '@privacykit/consent';
import type { RequestHistory, RequestServiceOptions } from '@privacykit/requests';
import { cliError } from '../errors.js';
import { examples } from '../program.js';
import type { CommandScope, ProgramKit } from '../program.js';
import { settingsOf } from '../settings.js';
import { collect, subjectIdentities } from '../subject.js';

interface Histories {
  consentSubjects: string[];
  consentHistory?: ConsentHistoryEntry[];
  /** One record per subject id and purpose, with its status now. */
  consentRecords?: ConsentRecord[];
  requestHistory?: RequestHistory;
}

/**
 * The ledger ids of a subject: `--consent-subject`, else the config's
 * `consentSubject(identities)`, else `email:<address>` for each email, the address normalised as
 * the data map does (the portal's convention).
 */
async function consentSubjectsOf(
  scope: CommandScope,
  identities: Record<string, string[]>,
  explicit: readonly string[] | undefined,
): Promise<string[]> {
  if (explicit?.length) return [...explicit];
  const config = await scope.config();
  const mapping = config.values.consentSubject;
  if (typeof mapping === 'function') {
    const mapped = (await (mapping as (ids: Record<string, string[]>) => unknown)(identities)) as
      | string
      | readonly string[]
      | undefined
      | null;
    if (mapped === undefined || mapped === null) return [];
    return (typeof mapped === 'string' ? [mapped] : [...mapped]).filter((id) => id.length > 0);
  }
  // The address as the data map normalises it (ASCII lowercase, trimmed), as the portal records it.
  const { dataMap } = config;
  // Loaded here, not at the top: the CLI starts on commander and core's errors alone.
  const { normaliseIdentity } = await import('@privacykit/core');
  return (identities.email ?? []).map(
    (email) =>
      `email:${
        dataMap && 'email' in dataMap.identities
          ? normaliseIdentity(dataMap, 'email', email)
          : email.trim().replace(/[A-Z]/g, (c) => c.toLowerCase())
      }`,
  );
}

/**
 * The subject's consent history (when the config configures the ledger: a `consent` section or a
 * `consentSubject` mapping) and request history (when it has a `requests` section), for Art 15.
 */
async function historiesOf(
  scope: CommandScope,
  identities: Record<string, string[]>,
  explicitConsentSubjects: readonly string[] | undefined,
  withRecords: boolean,
): Promise<Histories> {
  const config = await scope.config();
  const histories: Histories = { consentSubjects: [] };
  const db = await scope.database();
  if (
    config.values.consent !== undefined ||
    config.values.consentSubject !== undefined ||
    explicitConsentSubjects?.length
  ) {
    const subjects = [...new Set(await consentSubjectsOf(scope, identities, explicitConsentSubjects))];
    const { createConsentLedger } = await import('@privacykit/consent');
    const settings = settingsOf(config, 'consent') as Partial<ConsentLedgerOptions>;
    const ledger = createConsentLedger({ ...settings, db, policy: config.policy });
    const events = new Map<string, ConsentHistoryEntry>();
    const records: ConsentRecord[] = [];
    for (const subject of subjects) {
      for (const event of await ledger.history(subject)) events.set(event.eventId, event);
      // Not for a portability package (Art 20): it holds data the subject provided, not records about them.
      if (withRecords) records.push(...(await ledger.consentRecords(subject)));
    }
    histories.consentSubjects = subjects;
    histories.consentHistory = [...events.values()].sort((a, b) => a.seq - b.seq);
    if (withRecords) histories.consentRecords = records;
  }
  if (config.values.requests !== undefined) {
    const { createRequestService } = await import('@privacykit/requests');
    const settings = settingsOf(config, 'requests') as Partial<RequestServiceOptions>;
    const service = createRequestService({ ...settings, db, policy: config.policy, dataMap: config.dataMap });
    // Every kind a request can name (as the data map names it: `email`, `customerNumber`).
    const requestIdentities = Object.entries(identities)
      .filter(([kind]) => /^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(kind))
      .flatMap(([kind, values]) => values.map((value) => ({ kind, value })));
    histories.requestHistory =
      requestIdentities.length > 0
        ? await service.historyFor(requestIdentities)
        : { requests: [], audit: [] };
  }
  return histories;
}

/** `--out` names a file in a folder that exists: checked before the export runs. */
function assertWritableTarget(target: string, given: string | undefined): void {
  if (existsSync(target) && statSync(target).isDirectory()) {
    throw cliError(
      'cli/usage',
      `--out ${given ?? target} is a directory: name the file to write, e.g. ${given ?? target}/export.zip`,
    );
  }
  const folder = dirname(target);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw cliError('cli/usage', `--out ${given ?? target}: the folder ${folder} does not exist`);
  }
}

export function registerExport(program: Command, kit: ProgramKit): void {
  examples(
    program
      .command('export')
      .description(
        "a data subject's access package (Art 15) or portability subset (Art 20): every row the data map reaches from the identities, with the Art 15 information",
      )
      .requiredOption(
        '-s, --subject <identity>',
        'the verified identity: kind:value or a bare email (repeatable)',
        collect,
      )
      .addOption(
        new Option('-f, --format <format>', 'zip (full package), json (one document), portability (Art 20)')
          .choices(['zip', 'json', 'portability'])
          .default('zip'),
      )
      .option('--categories <ids>', 'only these data categories (comma-separated)', (text: string) =>
        text
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean),
      )
      .option('-o, --out <file>', 'where to write the package (default: subject-export.<zip|json>)')
      .option(
        '--consent-subject <id>',
        "the subject's id in the consent ledger (repeatable; default: the config's consentSubject(identities), else email:<address>)",
        collect,
      )
      .option('--no-history', 'leave out the consent and request history'),
    [
      'privacykit export --subject ada@example.com --out ada.zip',
      'privacykit export --subject customerNumber:C-1 --format portability --out c1.zip --json',
    ],
  ).action(
    kit.action(async (scope) => {
      const options = scope.options<{
        subject: string[];
        format: 'zip' | 'json' | 'portability';
        categories?: string[];
        out?: string;
        consentSubject?: string[];
        history: boolean;
      }>();
      const config = await scope.config();
      if (!config.dataMap) {
        throw cliError(
          'cli/config-invalid',
          `${config.path} exports no dataMap: export needs to know where data lives`,
        );
      }
      const identities = subjectIdentities(options.subject, config.dataMap);
      const { exportSubject } = await import('@privacykit/subject-access');
      const target = resolve(
        scope.io.cwd,
        options.out ?? `subject-export.${options.format === 'json' ? 'json' : 'zip'}`,
      );
      const partial = `${target}.partial`;
      // Before any work: a directory, or a folder that does not exist, ended in EISDIR/ENOENT
      // after the whole export had run (exit 1, as if the export had failed).
      assertWritableTarget(target, options.out);
      const history = options.history
        ? await historiesOf(scope, identities, options.consentSubject, options.format !== 'portability')
        : { consentSubjects: [] };
      const stream = exportSubject({
        ...(history.consentRecords ? { consentRecords: history.consentRecords } : {}),
        ...(history.consentHistory ? { consentHistory: history.consentHistory } : {}),
        ...(history.requestHistory ? { requestHistory: [history.requestHistory] } : {}),
        db: await scope.database(),
        dataMap: config.dataMap,
        policy: config.policy,
        identities,
        format: options.format,
        ...(options.categories ? { categories: options.categories } : {}),
      });
      const hash = createHash('sha256');
      let bytes = 0;
      const progress = scope.out.progress('export (bytes)');
      const meter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          bytes += chunk.length;
          progress.update(bytes);
          done(null, chunk);
        },
      });
      try {
        // Written beside the target and renamed at the end: a failed export never leaves a
        // truncated package under the name the operator will send.
        await pipeline(stream, meter, createWriteStream(partial, { mode: 0o600 }));
        renameSync(partial, target);
      } catch (error) {
        rmSync(partial, { force: true });
        throw error;
      } finally {
        progress.stop();
      }
      const sha256 = hash.digest('hex');
      scope.out.result(
        {
          file: target,
          format: options.format,
          bytes,
          sha256,
          identities: Object.keys(identities),
          consentSubjects: history.consentSubjects,
          consentEvents: history.consentHistory?.length ?? null,
          consentRecords: history.consentRecords?.length ?? null,
          requests: history.requestHistory?.requests.length ?? null,
        },
        () => [
          `wrote ${target} (${options.format}, ${bytes} bytes, sha256 ${sha256})`,
          ...(history.consentHistory
            ? [
                `consent history: ${history.consentHistory.length} events, ${history.consentRecords?.length ?? 0} records (${history.consentSubjects.join(', ')})`,
              ]
            : []),
          ...(history.requestHistory
            ? [`request history: ${history.requestHistory.requests.length} requests`]
            : []),
        ],
      );
      return 0;
    }),
  );
}
