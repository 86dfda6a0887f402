import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliverPending, executeErasure, getErasureRecord } from '@privacykit/erasure';
import type { ErasurePlan, ErasureReport } from '@privacykit/erasure';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostTables, expectOneLineError, json, runBin, runInProcess } from './helpers.js';

/** Every host row of the fixture tables, to compare database states. */
async function hostRows(db: Kysely<any>): Promise<unknown[][]> {
  return Promise.all(
    ['customers', 'invoices', 'logins'].map((table) =>
      db.selectFrom(table).selectAll().orderBy('id').execute(),
    ),
  );
}

describe('erase: usage of --purge, --plan-id and --replan', () => {
  it('refuses an ambiguous or incomplete command with one line and exit 2', async () => {
    const cases: { args: string[]; message: string }[] = [
      { args: ['erase', '--purge'], message: '--purge needs the plan: --plan-id <id> or --from-plan <file>' },
      {
        args: ['erase', '--purge', '--subject', 'ada@example.com'],
        message: '--purge needs the plan',
      },
      {
        args: ['erase', '--purge', '--plan-id', 'p1', '--subject', 'ada@example.com'],
        message: '--purge takes the plan (--plan-id or --from-plan), not --subject',
      },
      { args: ['erase', '--purge', '--execute', '--plan-id', 'p1'], message: 'say what to do, one of' },
      { args: ['erase', '--plan', '--plan-id', 'p1'], message: '--plan-id goes with --execute or --purge' },
      {
        args: ['erase', '--execute', '--plan-id', 'p1', '--from-plan', 'x.json'],
        message: 'give the plan once: --plan-id or --from-plan',
      },
      {
        args: ['erase', '--subject', 'ada@example.com', '--replan', '--plan'],
        message: '--replan needs the request whose plan it replaces: --request <id>',
      },
      {
        args: ['erase', '--execute', '--plan-id', 'p1', '--request', 'r1', '--replan'],
        message: '--replan makes a new plan: give --subject and --request, not a plan',
      },
    ];
    for (const { args, message } of cases) {
      const result = await runInProcess(args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expectOneLineError(result.stderr);
      expect(result.stderr, args.join(' ')).toContain(message);
    }
  });
});

describe.each(testEngines())(
  'erase while another worker holds the plan, and --purge, on $engine',
  (engine) => {
    let database: TestDatabase;
    let run: (args: string[]) => ReturnType<typeof runBin>;
    const scratch = join(tmpdir(), `privacykit-cli-erase-${engine.engine}-${process.pid}.plan.json`);

    beforeAll(async () => {
      database = await createTestDatabase(engine);
      await createHostTables(database.db);
      run = (args) => runBin(['--db', database.url, ...args]);
      const migrated = await run(['migrate']);
      expect(migrated.code, migrated.stderr).toBe(0);
    });
    afterAll(async () => {
      await database?.destroy();
      rmSync(scratch, { force: true });
    });

    it('--execute of a plan another worker is executing: exit 1, one line naming the lock and what to do, nothing changed', async () => {
      const planned = await run([
        'erase',
        '--subject',
        'ada@example.com',
        '--plan',
        '--out',
        scratch,
        '--json',
      ]);
      expect(planned.code, planned.stderr).toBe(0);
      const plan = json<ErasurePlan>(planned);

      // Another worker (this test process, its own connections) executes the plan and parks
      // after its first batch, holding the lease.
      let parked!: () => void;
      const isParked = new Promise<void>((resolve) => {
        parked = resolve;
      });
      let go!: () => void;
      const gate = new Promise<void>((resolve) => {
        go = resolve;
      });
      let batches = 0;
      const worker: Promise<ErasureReport> = executeErasure(plan, {
        db: database.db,
        batchSize: 1,
        setBasedBatchSize: 1,
        onBatch: async () => {
          if (++batches > 1) return;
          parked();
          await gate;
        },
      });
      try {
        await isParked;
        const before = await hostRows(database.db);

        for (const args of [
          ['erase', '--execute', '--from-plan', scratch, '--json'],
          ['erase', '--execute', '--plan-id', plan.id],
        ]) {
          const locked = await run(args);
          expect(locked.code, locked.stderr).toBe(1);
          expectOneLineError(locked.stderr);
          expect(locked.stderr).toContain(`erasure plan ${plan.id} is being executed by another worker`);
          expect(locked.stderr).toContain(`privacykit erase --execute --plan-id ${plan.id}`);
          expect(locked.stderr).toMatch(/\(erasure\/plan-locked\)\n$/);
          expect(locked.stdout).toBe('');
        }
        expect(await hostRows(database.db)).toEqual(before);
        expect(
          (await getErasureRecord({ db: database.db, planId: plan.id, tenant: plan.tenant })).status,
        ).toBe('executing');
      } finally {
        go();
      }
      expect((await worker).status).toBe('partial');

      // Once the other worker is done, the same command finishes the job: nothing left to change, verified.
      const again = await run(['erase', '--execute', '--plan-id', plan.id, '--json']);
      expect(again.code, again.stderr).toBe(0);
      expect(json(again)).toMatchObject({ ok: true, report: { changes: 0 }, verification: { ok: true } });
    });

    it('--purge is refused (exit 1, one line) until every Art 19 notice is delivered, then forgets the identities and secrets; the plan cannot run again', async () => {
      const plan = json<ErasurePlan>(
        await run(['erase', '--subject', 'bob@example.com', '--plan', '--json']),
      );
      const planId = plan.id;
      const before = await run(['erase', '--purge', '--plan-id', planId]);
      expect(before.code, before.stderr).toBe(1);
      expectOneLineError(before.stderr);
      expect(before.stderr).toMatch(
        /is planned: execute it to completion and verify it.*\(erasure\/not-verified\)/,
      );

      const executed = await run(['erase', '--execute', '--plan-id', planId]);
      expect(executed.code, executed.stderr).toBe(0);
      expect(executed.stdout).toContain(`privacykit erase --purge --plan-id ${planId}`);
      const pending = await run(['erase', '--purge', '--plan-id', planId, '--json']);
      expect(pending.code, pending.stderr).toBe(1);
      expectOneLineError(pending.stderr);
      expect(pending.stderr).toContain('(erasure/notifications-pending)');
      expect(pending.stdout).toBe('');
      const stored = () =>
        database.db
          .selectFrom('privacykit_erasure_plans')
          .select(['plan', 'hmac_key', 'seed', 'identities_purged_at'])
          .where('id', '=', planId)
          .executeTakeFirstOrThrow();
      expect((await stored()).identities_purged_at).toBeNull();

      // The application's outbox worker delivers the notices to the recipients.
      await deliverPending({ db: database.db, tenant: plan.tenant, send: async () => ({ received: true }) });
      const purged = await run(['erase', '--purge', '--plan-id', planId, '--json']);
      expect(purged.code, purged.stderr).toBe(0);
      expect(json(purged)).toMatchObject({
        planId,
        // Bob's invoice of this year is kept under Art 17(3)(b), restricted.
        status: 'partial',
        identitiesPurgedAt: expect.any(String),
        verification: { ok: true },
      });
      const row = await stored();
      expect(JSON.parse(String(row.plan)).identities).toEqual({});
      expect(row).toMatchObject({ hmac_key: '', seed: '' });
      expect(JSON.stringify(row)).not.toContain('bob@example.com');

      const human = await runInProcess(['--db', database.url, 'erase', '--purge', '--plan-id', planId]);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toContain(`erasure ${planId}: identities and secrets purged at`);

      const rerun = await run(['erase', '--execute', '--plan-id', planId]);
      expect(rerun.code, rerun.stderr).toBe(1);
      expectOneLineError(rerun.stderr);
      expect(rerun.stderr).toContain('(erasure/identities-purged)');
    });
  },
);
