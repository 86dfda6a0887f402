import { describe, expect, it } from 'vitest';
// The release script of the repository root: the same checks `npm run release:dry-run` makes.
import { isAllowedTarballFile, packDryRun, publicPackages } from '../../../scripts/release-dry-run.mjs';

const packages = publicPackages() as { name: string; path: string }[];

describe('npm pack --dry-run of every public package', () => {
  it('finds the public packages', () => {
    expect(packages.map((pkg) => pkg.name)).toContain('@privacykit/cli');
    expect(packages.length).toBeGreaterThanOrEqual(7);
  });

  it.each(packages)('$name ships only dist/, README, LICENSE, CHANGELOG and package.json', ({ path }) => {
    const { files } = packDryRun(path) as { files: { path: string }[] };
    const paths = files.map((file) => file.path);
    expect(paths.filter((file) => !isAllowedTarballFile(file))).toEqual([]);
    expect(paths).toContain('package.json');
    expect(paths).toContain('LICENSE');
    expect(paths.some((file) => file.startsWith('dist/'))).toBe(true);
  });

  it.each(packages)('$name ships its README', ({ path }) => {
    const { files } = packDryRun(path) as { files: { path: string }[] };
    expect(files.map((file) => file.path)).toContain('README.md');
  });
});
