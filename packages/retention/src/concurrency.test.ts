import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { fixedClock } from '@privacykit/core';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import { describe, expect, it } from 'vitest';
import { createRetentionEngine } from './engine.js';
import { CRASH_TODAY, crashSchedules } from './fixtures/crash-world.js';
import { worldDataMap } from './fixtures/world.js';
import { retentionMigrations } from './migrations.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

/**
 * A worker in its own process (`node --import tsx src/fixtures/<script> <args…>`): `ready` once
 * connected, then it works after `go` on stdin and prints one JSON line of outcomes.
 */
function startWorker(script: string, args: readonly string[]) {
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL(`./fixtures/${script}`, import.meta.url)), ...args],
    { cwd: packageDir, stdio: ['pipe', 'pipe', 'pipe'] },
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

describe.each(testEngines())('legal holds worked from two processes at once on $engine', (engine) => {
  it('releasing one hold twice at once: one release is recorded, the other gets retention/hold-already-released', async () => {
    const database = await createTestDatabase(engine);
    try {
      await migrate(database.db, [retentionMigrations]);
      const retention = createRetentionEngine({
        db: database.db,
        schedule: crashSchedules.children,
        dataMap: worldDataMap,
        clock: fixedClock(CRASH_TODAY),
      });
      const ids: string[] = [];
      for (let key = 1; key <= 30; key++) {
        const hold = await retention.placeHold({
          scope: { table: 'prospects', key },
          reason: 'claim',
          placedBy: 'legal',
        });
        ids.push(hold.id);
      }
      const workers = ['ann', 'bob'].map((label) =>
        startWorker('hold-releaser.ts', [database.url, label, ...ids]),
      );
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.go();
      const [ann, bob] = await Promise.all(workers.map((w) => w.outcomes));

      const stored = new Map((await retention.holds()).map((hold) => [hold.id, hold]));
      for (const [index, id] of ids.entries()) {
        const answers = [ann![index], bob![index]];
        // Both "released" would mean one release overwrote the other's record (who, why).
        expect(
          answers.filter((answer) => answer === 'ok'),
          id,
        ).toHaveLength(1);
        expect(
          answers.filter((answer) => answer !== 'ok'),
          id,
        ).toEqual(['retention/hold-already-released']);
        const winner = ann![index] === 'ok' ? 'ann' : 'bob';
        expect(stored.get(id)).toMatchObject({
          releasedBy: `legal:${winner}`,
          releaseReason: `${winner} closed the case`,
        });
      }
    } finally {
      await database.destroy();
    }
  }, 120_000);
});
