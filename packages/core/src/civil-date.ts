/**
 * A civil date `YYYY-MM-DD`: a day on the calendar, in no time zone. Legal periods (retention,
 * Art 12(3) deadlines) are counted on civil dates, never on instants.
 */
export type CivilDate = string;

const civilPattern = /^(\d{4})-(\d{2})-(\d{2})$/;

/**
 * A `Date` whose "local" calendar is UTC, for date-fns. Plain dates make date-fns follow the
 * process time zone, and even `TZDate('UTC')` leans on the process zone's history (Kiritimati
 * skipped 1994-12-31, Samoa 2011-12-30: a date there became "invalid" and month ends moved).
 * date-fns builds results through the `constructDateFrom` symbol, so every result stays a
 * CivilDay and `addMonths`, `endOfMonth`, `differenceInCalendarDays`… are exact on any machine.
 */
export class CivilDay extends Date {
  override getFullYear() {
    return this.getUTCFullYear();
  }
  override getMonth() {
    return this.getUTCMonth();
  }
  override getDate() {
    return this.getUTCDate();
  }
  override getDay() {
    return this.getUTCDay();
  }
  override getHours() {
    return this.getUTCHours();
  }
  override getMinutes() {
    return this.getUTCMinutes();
  }
  override getSeconds() {
    return this.getUTCSeconds();
  }
  override getMilliseconds() {
    return this.getUTCMilliseconds();
  }
  override getTimezoneOffset() {
    return 0;
  }
  override setFullYear(year: number, month?: number, date?: number) {
    return month === undefined
      ? this.setUTCFullYear(year)
      : date === undefined
        ? this.setUTCFullYear(year, month)
        : this.setUTCFullYear(year, month, date);
  }
  override setMonth(month: number, date?: number) {
    return date === undefined ? this.setUTCMonth(month) : this.setUTCMonth(month, date);
  }
  override setDate(date: number) {
    return this.setUTCDate(date);
  }
  override setHours(hours: number, minutes?: number, seconds?: number, ms?: number) {
    return this.setUTCHours(
      hours,
      minutes ?? this.getUTCMinutes(),
      seconds ?? this.getUTCSeconds(),
      ms ?? this.getUTCMilliseconds(),
    );
  }
  override setMinutes(minutes: number, seconds?: number, ms?: number) {
    return this.setUTCMinutes(minutes, seconds ?? this.getUTCSeconds(), ms ?? this.getUTCMilliseconds());
  }
  override setSeconds(seconds: number, ms?: number) {
    return this.setUTCSeconds(seconds, ms ?? this.getUTCMilliseconds());
  }
  override setMilliseconds(ms: number) {
    return this.setUTCMilliseconds(ms);
  }
  [Symbol.for('constructDateFrom')](value: Date | number | string): CivilDay {
    return new CivilDay(new Date(value).getTime());
  }
}

/** The CivilDay of `YYYY-MM-DD`, or undefined when the text is not a real calendar date (Feb 30). */
export function parseCivilDate(text: string): CivilDay | undefined {
  const match = civilPattern.exec(text);
  if (!match) return undefined;
  const [, y, m, d] = match;
  const day = new CivilDay(0);
  day.setUTCFullYear(Number(y), Number(m) - 1, Number(d)); // not Date.UTC: years 0–99 stay themselves
  if (day.getMonth() !== Number(m) - 1 || day.getDate() !== Number(d)) return undefined;
  return day;
}

/** `YYYY-MM-DD` of a date's calendar fields (UTC fields for a CivilDay). */
export function formatCivilDate(date: Date): CivilDate {
  const y = String(date.getFullYear()).padStart(4, '0');
  const m = String(date.getMonth() + 1).padStart(2, '0');
  const d = String(date.getDate()).padStart(2, '0');
  return `${y}-${m}-${d}`;
}

/** True for a real calendar date `YYYY-MM-DD`. */
export function isCivilDate(text: string): boolean {
  return parseCivilDate(text) !== undefined;
}
