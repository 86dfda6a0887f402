/** One clean-up the portal runs on its timer; returns how many rows (or packages) it deleted. */
export interface HousekeepingTask {
  name: string;
  run(): Promise<number>;
}

/**
 * Deletes what the portal keeps only for a while — expired sessions, spent return codes, old
 * development mail, export packages past their retention (Art 5(1)(e)) — on a timer that
 * `createApp`'s `listen` starts with the server and stops when it closes. Without it those tables
 * only ever grew: nothing called the purges.
 */
export interface Housekeeping {
  /** Runs every task now (and first, when the timer starts); resolves with what each deleted. */
  runOnce(): Promise<Record<string, number>>;
  /** Starts the timer (unref'd: it never keeps the process alive). Idempotent. */
  start(): void;
  /** Stops the timer and waits for a run in progress, so the database can be closed after it. */
  stop(): Promise<void>;
  readonly running: boolean;
}

export function createHousekeeping(options: {
  tasks: readonly HousekeepingTask[];
  intervalMs: number;
  logError: (error: unknown) => void;
}): Housekeeping {
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<Record<string, number>> | undefined;

  async function runAll(): Promise<Record<string, number>> {
    const done: Record<string, number> = {};
    // One failing task (a table locked, a package store down) does not stop the others.
    for (const task of options.tasks) {
      try {
        done[task.name] = await task.run();
      } catch (error) {
        options.logError(error);
      }
    }
    return done;
  }

  const housekeeping: Housekeeping = {
    runOnce() {
      // Never two runs at once: a slow run is not stacked on by the next tick.
      inFlight ??= runAll().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    },
    start() {
      if (timer) return;
      const tick = () => void housekeeping.runOnce();
      timer = setInterval(tick, options.intervalMs);
      timer.unref();
      // A portal restarted after a long stop cleans up at once, not one interval later.
      setImmediate(() => {
        if (timer) tick();
      });
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await inFlight?.catch(() => undefined);
    },
    get running() {
      return timer !== undefined;
    },
  };
  return housekeeping;
}
