import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import { describe, expect, it } from 'vitest';
import { requestMigrations } from './migrations.js';
import type { SubmitResult } from './request-service.js';

const submitter = fileURLToPath(new URL('../test/submitter.ts', import.meta.url));

type Answer = SubmitResult | { error: string };

/** A requester process: resolves `ready` once connected, and its answers after `go`. */
function startSubmitter(url: string, order: 'ab' | 'ba', subjects: readonly string[]) {
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(
    process.execPath,
    ['--import', 'tsx', submitter, url, order, ...subjects],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.startsWith('ready\n')) onReady();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const answers = new Promise<Answer[]>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`submitter exited ${code}: ${err}`));
      resolve(JSON.parse(out.slice('ready\n'.length)) as Answer[]);
    });
  });
  // A process that dies before `ready` must fail the test, not hang it.
  const readyOrExit = Promise.race([ready, answers.then(() => undefined)]);
  return { ready: readyOrExit, go: () => child.stdin.end('go\n'), answers };
}

describe.each(testEngines())('identical submissions at the same instant on $engine', (engine) => {
  it('create one request per subject; every other requester gets the duplicate answer', async () => {
    const database = await createTestDatabase(engine);
    try {
      await migrate(database.db, [requestMigrations]);
      const subjects = ['ana', 'ben', 'chloe', 'dev', 'eli', 'fay'];
      // Four processes, each with its own connections, submit the same requests; half of them list
      // the two identities the other way round (still the same request).
      const processes = (['ab', 'ba', 'ab', 'ba'] as const).map((order) =>
        startSubmitter(database.url, order, subjects),
      );
      await Promise.all(processes.map((p) => p.ready));
      for (const p of processes) p.go();
      const answers = await Promise.all(processes.map((p) => p.answers));

      const requests = await database.db
        .selectFrom('privacykit_requests_requests')
        .select(['id', 'status'])
        .execute();
      expect(requests).toHaveLength(subjects.length);

      for (const [index, subject] of subjects.entries()) {
        const forSubject = answers.map((answer) => answer[index] as Answer);
        expect(forSubject.filter((answer) => 'error' in answer)).toEqual([]);
        const results = forSubject as SubmitResult[];
        const created = results.filter((result) => result.duplicateOf === null);
        expect(created, subject).toHaveLength(1);
        const requestId = created[0]!.requestId;
        // What a sequential duplicate gets: the open request, its status, marked as a duplicate.
        const duplicate = { requestId, status: 'identity-pending', duplicateOf: requestId, excessive: false };
        expect(results.filter((result) => result.duplicateOf !== null)).toEqual([
          duplicate,
          duplicate,
          duplicate,
        ]);
        const actions = (
          await database.db
            .selectFrom('privacykit_requests_audit')
            .select('action')
            .where('request_id', '=', requestId)
            .execute()
        ).map((row) => row.action);
        expect(actions.filter((action) => action === 'submitted')).toHaveLength(1);
        expect(actions.filter((action) => action === 'duplicate-submission')).toHaveLength(3);
        // One challenge per identity of the one request: the subject is mailed once, not four times.
        const challenges = await database.db
          .selectFrom('privacykit_requests_challenges')
          .select('id')
          .where('request_id', '=', requestId)
          .execute();
        expect(challenges).toHaveLength(2);
      }
    } finally {
      await database.destroy();
    }
  }, 120_000);
});
