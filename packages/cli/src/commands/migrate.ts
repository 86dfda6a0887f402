import type { Command } from 'commander';
import { migrationsOf } from '../packages.js';
import { examples } from '../program.js';
import type { ProgramKit } from '../program.js';

function packageList(text: string): string[] {
  return text
    .split(',')
    .map((name) => name.trim().replace(/^@privacykit\//, ''))
    .filter(Boolean);
}

export function registerMigrate(program: Command, kit: ProgramKit): void {
  examples(
    program
      .command('migrate')
      .description(
        "create or upgrade the tables of the PrivacyKit packages in use (each package's own prefixed tables and migration table)",
      )
      .option(
        '-p, --packages <names>',
        'comma-separated packages to migrate (default: the config\'s "packages", else all)',
        packageList,
      ),
    [
      'privacykit migrate --db sqlite:privacy.db',
      'DATABASE_URL=postgres://app@db/app privacykit migrate --packages consent,retention',
    ],
  ).action(
    kit.action(async (scope) => {
      const options = scope.options<{ packages?: string[] }>();
      let names = options.packages;
      if (!names) {
        const config = await scope.optionalConfig();
        const configured = config?.values.packages;
        if (Array.isArray(configured)) names = configured.map(String);
      }
      const packages = await migrationsOf(names);
      const db = await scope.database({ create: true });
      const { migrate } = await import('@privacykit/core/db');
      const results = await migrate(db, packages);
      scope.out.result({ packages: results }, () =>
        results.length === 0
          ? 'no package migrations to apply'
          : results.map((result) =>
              result.applied.length === 0
                ? `${result.name}: up to date`
                : `${result.name}: applied ${result.applied.join(', ')}`,
            ),
      );
      return 0;
    }),
  );
}
