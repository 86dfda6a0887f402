import { hmacSha256Hex } from '@privacykit/core/crypto';
import { z } from 'zod';

/**
 * What happens to one column of a row that is kept: `keep` leaves it, `set-null` empties it,
 * `hmac` replaces it with a keyed pseudonym (same input, same pseudonym within one erasure
 * request, so joins survive), `redact` writes a fixed replacement, `generalise` coarsens it
 * (date → first day of its year, number → lower bound of its range, email → `@domain`), `random`
 * writes a value of the same type drawn deterministically from the request's seed.
 */
export const columnStrategyNameSchema = z.enum([
  'keep',
  'set-null',
  'hmac',
  'redact',
  'generalise',
  'random',
]);
export type ColumnStrategyName = z.infer<typeof columnStrategyNameSchema>;

export const columnStrategySchema = z.union([
  columnStrategyNameSchema,
  z
    .object({
      strategy: z.literal('hmac'),
      /** Hex characters of a text pseudonym (default 16 = 64 bits). */
      length: z.number().int().min(8).max(64).optional(),
    })
    .strict(),
  z
    .object({
      strategy: z.literal('redact'),
      replacement: z.union([z.string(), z.number(), z.boolean(), z.null()]),
    })
    .strict(),
  z
    .object({
      strategy: z.literal('generalise'),
      /** Width of a number's range (default 10): 37 → 30. */
      bucket: z.number().positive().optional(),
    })
    .strict(),
]);
export type ColumnStrategyInput = z.input<typeof columnStrategySchema>;

/** A column strategy in its one stored form. */
export interface ColumnStrategy {
  strategy: ColumnStrategyName;
  length?: number;
  replacement?: string | number | boolean | null;
  bucket?: number;
}

/**
 * Per-table configuration: `'delete-row'` (the default for every table) or a map of column →
 * strategy, which keeps the rows and masks those columns (the others stay as they are).
 */
export const tableStrategySchema = z.union([
  z.literal('delete-row'),
  z.record(z.string(), columnStrategySchema),
]);
export const strategiesSchema = z.record(z.string(), tableStrategySchema);
export type StrategiesInput = z.input<typeof strategiesSchema>;

export function normaliseStrategy(input: ColumnStrategyInput): ColumnStrategy {
  return typeof input === 'string' ? { strategy: input } : { ...input };
}

/** The per-request secrets that make pseudonyms and random values repeatable on a retry. */
export interface ErasureSecrets {
  hmacKey: string;
  seed: string;
}

/** Where a value sits, for deterministic random values. */
export interface MaskContext {
  secrets: ErasureSecrets;
  table: string;
  column: string;
  key: string;
}

const DEFAULT_REPLACEMENT = '[erased]';
const isoDate = /^(\d{4})-(\d{2})-(\d{2})/;
const integerText = /^-?\d+$/;
const decimalText = /^-?\d+\.\d+$/;
const email = /^[^@\s]*@([^@\s]+)$/;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** A date string with its date part replaced and its time part (if any) zeroed, same format. */
function withDate(original: string, y: number, m: number, d: number): string {
  return `${pad(y, 4)}-${pad(m)}-${pad(d)}${original.slice(10).replace(/\d/g, '0')}`;
}

/** 0 ≤ n < 2^31 from hex digits, fitting every engine's integer column. */
function derivedInteger(hex: string): number {
  return Number.parseInt(hex.slice(0, 8), 16) & 0x7fffffff;
}

/** A civil date between 1970 and 2069 from hex digits. */
function derivedDate(hex: string): [number, number, number] {
  const day = derivedInteger(hex) % 36_500;
  const date = new Date(Date.UTC(1970, 0, 1) + day * 86_400_000);
  return [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
}

function pseudonym(hex: string, value: unknown, length: number): unknown {
  if (typeof value === 'number')
    return Number.isInteger(value) ? derivedInteger(hex) : derivedInteger(hex) / 100;
  if (typeof value === 'bigint') return BigInt(derivedInteger(hex));
  if (typeof value === 'boolean') return Number.parseInt(hex.slice(0, 1), 16) % 2 === 0;
  if (value instanceof Date) {
    const [y, m, d] = derivedDate(hex);
    return new Date(y, m - 1, d);
  }
  if (value instanceof Uint8Array) return Buffer.from(hex.slice(0, length), 'hex');
  const text = String(value);
  if (integerText.test(text)) return String(derivedInteger(hex));
  if (decimalText.test(text)) return (derivedInteger(hex) / 100).toFixed(2);
  if (isoDate.test(text)) return withDate(text, ...derivedDate(hex));
  return hex.slice(0, length);
}

function redacted(value: unknown, replacement: ColumnStrategy['replacement']): unknown {
  if (replacement !== undefined) return replacement;
  if (typeof value === 'number') return 0;
  if (typeof value === 'bigint') return 0n;
  if (typeof value === 'boolean') return false;
  if (value instanceof Date) return new Date(1970, 0, 1);
  if (value instanceof Uint8Array) return Buffer.alloc(0);
  const text = String(value);
  if (integerText.test(text)) return '0';
  if (decimalText.test(text)) return '0.00';
  if (isoDate.test(text)) return withDate(text, 1970, 1, 1);
  return DEFAULT_REPLACEMENT;
}

function generalised(value: unknown, bucket: number): unknown {
  if (typeof value === 'number') return Math.floor(value / bucket) * bucket;
  if (typeof value === 'bigint') return (value / BigInt(bucket)) * BigInt(bucket);
  if (value instanceof Date) return new Date(value.getFullYear(), 0, 1);
  if (typeof value === 'boolean' || value instanceof Uint8Array) return redacted(value, undefined);
  const text = String(value);
  if (integerText.test(text) || decimalText.test(text)) {
    const lower = Math.floor(Number(text) / bucket) * bucket;
    return decimalText.test(text) ? lower.toFixed(text.split('.')[1]!.length) : String(lower);
  }
  const date = isoDate.exec(text);
  if (date) return withDate(text, Number(date[1]), 1, 1);
  const address = email.exec(text);
  if (address) return `@${address[1]}`;
  return DEFAULT_REPLACEMENT;
}

/**
 * The masked form of `value` under `strategy`, of the same type as the value (text stays text,
 * numbers stay numbers, dates stay dates; numeric and date text keeps its shape). `null` stays
 * `null`. Deterministic: the same secrets, place and value give the same result.
 */
export function maskValue(value: unknown, strategy: ColumnStrategy, context: MaskContext): unknown {
  if (value === null || value === undefined) return null;
  switch (strategy.strategy) {
    case 'keep':
      return value;
    case 'set-null':
      return null;
    case 'redact':
      return redacted(value, strategy.replacement);
    case 'generalise':
      return generalised(value, strategy.bucket ?? 10);
    case 'hmac': {
      const input =
        value instanceof Date
          ? value.toISOString()
          : value instanceof Uint8Array
            ? Buffer.from(value).toString('hex')
            : String(value);
      return pseudonym(hmacSha256Hex(context.secrets.hmacKey, input), value, strategy.length ?? 16);
    }
    case 'random': {
      const hex = hmacSha256Hex(
        context.secrets.seed,
        `${context.table}\u0000${context.column}\u0000${context.key}`,
      );
      return pseudonym(hex, value, 16);
    }
    default: {
      const unreachable: never = strategy.strategy;
      throw new TypeError(`unknown strategy ${String(unreachable)}`);
    }
  }
}

export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  // Engines hand numbers back as text (pg numeric, MySQL bigint) or booleans as 0/1.
  if (typeof a === 'boolean' || typeof b === 'boolean') return Number(a) === Number(b);
  return String(a) === String(b);
}

/**
 * Whether a value still in the database is what the strategy leaves behind. Every strategy but
 * `hmac` is a fixed point of itself (masking a masked value changes nothing), so this re-applies
 * it; a pseudonym must have a pseudonym's shape and must not be one of the subject's identities.
 */
export function looksMasked(
  value: unknown,
  strategy: ColumnStrategy,
  context: MaskContext & { identities: ReadonlySet<string> },
): boolean {
  if (value === null || value === undefined) return true;
  if (strategy.strategy === 'keep') return true;
  if (strategy.strategy !== 'hmac') return sameValue(maskValue(value, strategy, context), value);
  if (typeof value === 'string') {
    if (context.identities.has(value.trim().toLowerCase())) return false;
    if (integerText.test(value) || isoDate.test(value) || decimalText.test(value)) return true;
    return new RegExp(`^[0-9a-f]{${strategy.length ?? 16}}$`).test(value);
  }
  if (typeof value === 'number') return Number.isInteger(value * 100) && value >= 0 && value < 2 ** 31;
  return true;
}
