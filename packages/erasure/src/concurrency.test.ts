import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import { describe, expect, it } from 'vitest';
import { seedHost } from './testing-fixtures.js';

/**
 * A worker in its own process (`node --import tsx <script> <args…>`): `ready` once it is
 * connected, then it works after `go` on stdin and prints one JSON line of outcomes.
 */
export function startWorker(script: string, args: readonly string[]) {
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL(`../test/${script}`, import.meta.url)), ...args],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.startsWith('ready\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`${script} exited ${code} before ready: ${err}`)));
  });
  const outcomes = new Promise<string[]>((resolve, reject) => {
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${script} exited ${code}: ${err}`));
      resolve(JSON.parse(out.slice('ready\n'.length)) as string[]);
    });
  });
  return { ready, go: () => child.stdin.end('go\n'), outcomes };
}

describe.each(testEngines())('workers in separate processes on $engine', (engine) => {
  it('plan the same request at once: one plan is stored per request and every worker gets that plan', async () => {
    const t = await createTestDatabase(engine);
    try {
      await seedHost(t.db, { adaLogs: 3 });
      const requests = ['req-a', 'req-b', 'req-c', 'req-d'];
      const workers = [0, 1, 2].map(() => startWorker('planner.ts', [t.url, ...requests]));
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.go();
      const outcomes = await Promise.all(workers.map((w) => w.outcomes));

      const plans = await t.db
        .selectFrom('privacykit_erasure_plans')
        .select(['id', 'request_id'])
        .orderBy('request_id')
        .execute();
      // Two plans of one request would be executed as two erasures, each under its own lease,
      // with different pseudonyms and a second set of Art 19 notifications.
      expect(plans.map((plan) => plan.request_id)).toEqual(requests);
      for (const [index, request] of requests.entries()) {
        const stored = plans.find((plan) => plan.request_id === request)!.id;
        expect(
          outcomes.map((got) => got[index]),
          request,
        ).toEqual([stored, stored, stored]);
      }
    } finally {
      await t.destroy();
    }
  }, 120_000);
});
