#!/usr/bin/env node
// `npm run release:dry-run`: what `npm run release` would publish, without publishing anything.
// - the pending releases from `changeset status` (package, current → next version, bump, changesets);
// - the tarball of every public workspace package (`npm pack --dry-run --json`), file by file;
// - fails (exit 1) when a tarball holds anything but dist/**, README.md, LICENSE, CHANGELOG.md and
//   package.json, or lacks its build output, README or LICENSE.
// `--json` prints one JSON document instead of the report. Run `npm run build` first.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Files a published tarball may contain: the build output and the package's documents. */
export function isAllowedTarballFile(path) {
  return (
    path.startsWith('dist/') ||
    path === 'README.md' ||
    path === 'LICENSE' ||
    path === 'CHANGELOG.md' ||
    path === 'package.json'
  );
}

/** The public (non-private) workspace packages under packages/, with their directories. */
export function publicPackages(base = root) {
  const dir = join(base, 'packages');
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, 'package.json')))
    .map((entry) => {
      const path = join(dir, entry.name);
      const manifest = JSON.parse(readFileSync(join(path, 'package.json'), 'utf8'));
      return { name: manifest.name, version: manifest.version, private: manifest.private === true, path };
    })
    .filter((pkg) => !pkg.private)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** `npm pack --dry-run --json` of one package directory: the files its tarball would hold. */
export function packDryRun(path) {
  const output = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: path,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return packResult(output);
}

/** {@link packDryRun} without blocking: packs of several packages can run side by side. */
export function packDryRunAsync(path) {
  return new Promise((resolvePack, reject) => {
    execFile(
      'npm',
      ['pack', '--dry-run', '--json', '--ignore-scripts'],
      { cwd: path, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout) => {
        if (error) reject(error);
        else resolvePack(packResult(stdout));
      },
    );
  });
}

function packResult(output) {
  const [result] = JSON.parse(output);
  return {
    filename: result.filename,
    size: result.size,
    unpackedSize: result.unpackedSize,
    files: result.files.map((file) => ({ path: file.path, size: file.size })),
  };
}

/** What is wrong with a tarball's file list (empty when it ships only what users need). */
export function tarballProblems(files) {
  const paths = files.map((file) => file.path);
  const problems = paths
    .filter((path) => !isAllowedTarballFile(path))
    .map((path) => `unexpected file ${path}`);
  if (!paths.some((path) => path.startsWith('dist/')))
    problems.push('no dist/ files: build the package first');
  for (const required of ['README.md', 'LICENSE', 'package.json']) {
    if (!paths.includes(required)) problems.push(`missing ${required}`);
  }
  return problems;
}

/** Pending releases according to `changeset status --output`. */
export function pendingReleases(base = root) {
  const dir = mkdtempSync(join(tmpdir(), 'privacykit-release-'));
  const output = join(dir, 'status.json');
  try {
    execFileSync('npx', ['changeset', 'status', '--output', output], {
      cwd: base,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const status = JSON.parse(readFileSync(output, 'utf8'));
    return status.releases.map((release) => ({
      name: release.name,
      type: release.type,
      oldVersion: release.oldVersion,
      newVersion: release.newVersion,
      changesets: release.changesets,
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function kilobytes(bytes) {
  return `${(bytes / 1024).toFixed(1)} kB`;
}

export function releaseDryRun(base = root) {
  const releases = pendingReleases(base);
  const packages = publicPackages(base).map((pkg) => {
    const tarball = packDryRun(pkg.path);
    const release = releases.find((candidate) => candidate.name === pkg.name);
    return {
      name: pkg.name,
      version: pkg.version,
      nextVersion: release && release.type !== 'none' ? release.newVersion : null,
      bump: release?.type ?? null,
      tarball,
      problems: tarballProblems(tarball.files),
    };
  });
  return { ok: packages.every((pkg) => pkg.problems.length === 0), releases, packages };
}

function main() {
  const json = process.argv.includes('--json');
  const result = releaseDryRun();
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    process.exitCode = result.ok ? 0 : 1;
    return;
  }
  const lines = ['Release dry run — nothing is published.', ''];
  const planned = result.releases.filter((release) => release.type !== 'none');
  lines.push(
    planned.length === 0
      ? 'No pending changesets: `changeset publish` would only publish versions not yet on the registry.'
      : 'Pending releases (npm run version-packages, then npm run release):',
  );
  for (const release of planned) {
    lines.push(
      `  ${release.name.padEnd(28)} ${release.oldVersion} → ${release.newVersion}  ${release.type.padEnd(5)}  (${release.changesets.length > 0 ? release.changesets.join(', ') : 'dependency update'})`,
    );
  }
  const unreleased = result.packages.filter((pkg) => !pkg.nextVersion).map((pkg) => pkg.name);
  if (unreleased.length > 0) lines.push(`  no changeset: ${unreleased.join(', ')}`);
  lines.push('', 'Tarballs (npm pack --dry-run):');
  for (const pkg of result.packages) {
    const { tarball } = pkg;
    lines.push(
      '',
      `${pkg.problems.length === 0 ? '✓' : '✗'} ${pkg.name}@${pkg.nextVersion ?? pkg.version}  ${tarball.filename}  ${kilobytes(tarball.size)} packed, ${kilobytes(tarball.unpackedSize)} unpacked, ${tarball.files.length} files`,
    );
    for (const file of tarball.files) lines.push(`    ${file.path}  ${kilobytes(file.size)}`);
    for (const problem of pkg.problems) lines.push(`  ✗ ${problem}`);
  }
  const failed = result.packages.filter((pkg) => pkg.problems.length > 0);
  lines.push(
    '',
    failed.length === 0
      ? `OK: ${result.packages.length} packages ship only dist/, README.md, LICENSE, CHANGELOG.md and package.json.`
      : `FAILED: ${failed.map((pkg) => pkg.name).join(', ')} would publish files users do not need, or lack their build.`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  process.exitCode = failed.length === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    main();
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    process.stderr.write(`release:dry-run: ${message}\n`);
    process.exitCode = 1;
  }
}
