import { createHash } from 'node:crypto';
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Option } from 'commander';
import type { Command } from 'commander';
import { cliError } from '../errors.js';
import { examples } from '../program.js';
import type { ProgramKit } from '../program.js';
import { collect, subjectIdentities } from '../subject.js';

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
      .option('-o, --out <file>', 'where to write the package (default: subject-export.<zip|json>)'),
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
      const stream = exportSubject({
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
        { file: target, format: options.format, bytes, sha256, identities: Object.keys(identities) },
        () => `wrote ${target} (${options.format}, ${bytes} bytes, sha256 ${sha256})`,
      );
      return 0;
    }),
  );
}
