// Load bench for the reference portal: consent recording through HTTP on loopback, driven by
// autocannon at 50 connections. Each POST /cookies is a full banner choice: CSRF and Origin
// checks, session lookup, two ledger decisions (one per consent purpose, Merkle-logged, written in one ledger transaction), the
// pk_consent cookie and a redirect. Baseline in the same run: GET /healthz (the same Express
// stack and one database round trip, no ledger). Run: npx tsx bench/portal/run.ts
// (DATABASE_URL=postgres://… or mysql://… to bench another engine; SQLite temp file by default).
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { openDatabase } from '@privacykit/core/db';
import { createApp } from '../../examples/portal/src/app.js';
import { seedPolicy } from '../../examples/portal/src/policy.js';
import { migratePortal } from '../../examples/portal/src/setup.js';

const file = join(tmpdir(), `pk-portal-bench-${process.pid}.db`);
const url = process.env.DATABASE_URL ?? `sqlite:${file}`;
const db = await openDatabase(url);
await migratePortal(db);
const app = createApp({
  db,
  policy: seedPolicy,
  sessionSecret: 'bench',
  // One IP drives every connection: lift the per-IP consent limit (600/min by default) for the load test.
  rateLimits: { consent: 1_000_000_000 },
  logError: (error) => console.error(error),
  logRefusal: () => {},
});
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

// One browser session: its cookie and CSRF token, as a visitor who loaded a page first.
const first = await fetch(`${base}/privacy`);
const sessionCookie = first.headers.getSetCookie()[0]!.split(';')[0]!;
const csrf = /name="_csrf" value="([^"]+)"/.exec(await first.text())![1]!;

const duration = Number(process.env.DURATION ?? 10);

async function load(title: string, options: autocannon.Options) {
  const result = await autocannon({ connections: 50, duration, ...options });
  const ok = result['2xx'] + result['3xx'];
  console.log(
    `${title.padEnd(34)} ${result.requests.average.toFixed(0).padStart(6)} req/s  p50 ${String(result.latency.p50).padStart(4)} ms  p99 ${String(result.latency.p99).padStart(4)} ms  ok ${ok}  errors ${result.errors + result.non2xx - result['3xx']}`,
  );
  return result;
}

console.log(
  `portal on ${url.startsWith('sqlite') ? 'SQLite (WAL, temp file)' : url.split(':')[0]}, 50 connections, ${duration} s each`,
);
const baseline = await load('GET /healthz (baseline)', { url: `${base}/healthz` });
const consent = await load('POST /cookies (accept-all)', {
  url: `${base}/cookies`,
  method: 'POST',
  headers: {
    'content-type': 'application/x-www-form-urlencoded',
    origin: base,
    cookie: sessionCookie,
  },
  body: `_csrf=${encodeURIComponent(csrf)}&choice=accept-all&return=%2Fprivacy`,
});
const decisions = await db
  .selectFrom('privacykit_consent_ledger')
  .select((eb) => eb.fn.countAll().as('n'))
  .executeTakeFirst()
  .catch(() => undefined);
console.log(
  `consent/baseline throughput ratio: ${(consent.requests.average / baseline.requests.average).toFixed(3)}; ledger entries written: ${decisions ? String(decisions.n) : 'n/a'}`,
);

server.close();
await db.destroy();
if (!process.env.DATABASE_URL)
  for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
