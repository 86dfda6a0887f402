import { beforeAll, describe, expect, it } from 'vitest';
// The release script of the repository root: the same checks `npm run release:dry-run` makes.
import {
  isAllowedTarballFile,
  packDryRunAsync,
  publicPackages,
  tarballProblems,
} from '../../../scripts/release-dry-run.mjs';

const packages = publicPackages() as { name: string; path: string }[];
type Tarball = { files: { path: string; size: number }[] };
const tarballs = new Map<string, Tarball>();

describe('npm pack --dry-run of every public package', () => {
  // One pack per package, all at once.
  beforeAll(async () => {
    const packed = await Promise.all(packages.map((pkg) => packDryRunAsync(pkg.path) as Promise<Tarball>));
    packages.forEach((pkg, index) => tarballs.set(pkg.name, packed[index]!));
  });

  it('finds the public packages', () => {
    expect(packages.map((pkg) => pkg.name)).toContain('@privacykit/cli');
    expect(packages.length).toBeGreaterThanOrEqual(7);
  });

  it.each(packages)('$name ships only dist/, README, LICENSE, CHANGELOG and package.json', ({ name }) => {
    const paths = tarballs.get(name)!.files.map((file) => file.path);
    expect(paths.filter((file) => !isAllowedTarballFile(file))).toEqual([]);
    expect(paths).toContain('package.json');
    expect(paths).toContain('LICENSE');
    expect(paths).toContain('README.md');
    expect(paths.some((file) => file.startsWith('dist/'))).toBe(true);
    expect(tarballProblems(tarballs.get(name)!.files)).toEqual([]);
  });

  it('the release script flags a tarball with sources or without its README', () => {
    expect(
      tarballProblems([{ path: 'package.json' }, { path: 'LICENSE' }, { path: 'src/index.ts' }]),
    ).toEqual([
      'unexpected file src/index.ts',
      'no dist/ files: build the package first',
      'missing README.md',
    ]);
  });
});
