// A worker that dies mid-execution, holding the plan's lease:
// `node --import tsx test/crashing-executor.ts <url> <planId> <clock start> <leaseMs>`.
// It commits the first batch, then kills itself (SIGKILL: no `finally`, no lease release).
import { fixedClock } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { executeErasure } from '../src/execute.js';
import { getErasureRecord } from '../src/plan.js';

const [url, planId, start, leaseMs] = process.argv.slice(2);
const db = await openDatabase(url as string);
const { plan } = await getErasureRecord({ db, planId: planId as string });
await executeErasure(plan, {
  db,
  clock: fixedClock(start as string),
  leaseMs: Number(leaseMs),
  batchSize: 2,
  setBasedBatchSize: 2,
  // Never returns: the process dies once the parent has been told a batch is committed.
  onBatch: () =>
    new Promise<void>(() => {
      process.stdout.write('batch\n', () => process.kill(process.pid, 'SIGKILL'));
    }),
});
process.stdout.write('finished\n');
