/** Where "now" comes from. Logic takes a `Clock` so tests and replays control time. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that stays where it is put; `advance` and `set` move it. For tests and replays. */
export interface FixedClock extends Clock {
  set(instant: Date | string): void;
  advance(milliseconds: number): void;
}

export function fixedClock(start: Date | string): FixedClock {
  let current = new Date(start).getTime();
  if (Number.isNaN(current)) throw new RangeError(`fixedClock: invalid start ${String(start)}`);
  return {
    now: () => new Date(current),
    set(instant) {
      current = new Date(instant).getTime();
    },
    advance(milliseconds) {
      current += milliseconds;
    },
  };
}

/** ISO 8601 UTC text of an instant, the storage form of every timestamp (sorts as text). */
export function toInstant(date: Date): string {
  return date.toISOString();
}
