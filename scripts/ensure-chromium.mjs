// The browser tests drive Debian's Chromium through playwright-core (never a downloaded browser).
// On a fresh machine this installs it when we may (root with apt-get); otherwise it says how.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (existsSync(path)) process.exit(0);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (isRoot && existsSync('/usr/bin/apt-get')) {
  console.log('Installing Chromium for the browser tests (apt-get install chromium)…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'inherit', env });
  process.exit(0);
}
if (process.env.CI) {
  console.error(
    `Chromium not found at ${path}, and CI runs every test: install it (apt-get install chromium) or set CHROMIUM_PATH.`,
  );
  process.exit(1);
}
console.warn(
  `Chromium not found at ${path}: browser tests will be skipped. Install it (apt-get install chromium) or set CHROMIUM_PATH.`,
);
