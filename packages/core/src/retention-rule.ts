import { z } from 'zod';
import { categoryIdSchema } from './categories.js';
import { periodSchema } from './period.js';
import { timeZoneSchema } from './time-zone.js';

/**
 * A fact of a record that a retention rule reads: a civil date (`2025-03-31`), a month
 * (`2026-12`, e.g. a card expiry) or a value a condition tests (`deferred`, `true`).
 */
export type FactValue = string | number | boolean | null | undefined;

/** A condition on a record's facts, for rules that depend on them (deferred vs immediate debit). */
export type RetentionCondition =
  | { fact: string; equals: string | number | boolean }
  | { fact: string; in: (string | number)[] }
  | { fact: string; present: boolean }
  | { all: RetentionCondition[] }
  | { any: RetentionCondition[] }
  | { not: RetentionCondition };

export const retentionConditionSchema: z.ZodType<RetentionCondition> = z.lazy(() =>
  z.union([
    z.object({ fact: z.string().min(1), equals: z.union([z.string(), z.number(), z.boolean()]) }).strict(),
    z.object({ fact: z.string().min(1), in: z.array(z.union([z.string(), z.number()])).min(1) }).strict(),
    z.object({ fact: z.string().min(1), present: z.boolean() }).strict(),
    z.object({ all: z.array(retentionConditionSchema).min(1) }).strict(),
    z.object({ any: z.array(retentionConditionSchema).min(1) }).strict(),
    z.object({ not: retentionConditionSchema }).strict(),
  ]),
);

/**
 * When a phase falls due, as an expression over a record's facts. Every period is counted from a
 * trigger fact, never from another phase (periods are not chained). A missing trigger means
 * "not due"; `earliest`/`latest` ignore missing members and are not due only when all are.
 *
 * - `{ from: 'contractEnd', after: 'P5Y' }` — five years after the end of the contract;
 * - `{ from: 'cardExpiry', endOfMonth: true }` — the end of the card's expiry month;
 * - `{ earliest: [...] }` / `{ latest: [...] }` — the sooner / later of several dates;
 * - `{ when: [{ if, then }], otherwise }` — the first case whose condition holds.
 */
export type DueExpression =
  | { from: string; after?: string; endOfMonth?: boolean }
  | { earliest: DueExpression[] }
  | { latest: DueExpression[] }
  | { when: { if: RetentionCondition; then: DueExpression }[]; otherwise?: DueExpression };

export const dueExpressionSchema: z.ZodType<DueExpression> = z.lazy(() =>
  z.union([
    z
      .object({ from: z.string().min(1), after: periodSchema.optional(), endOfMonth: z.boolean().optional() })
      .strict(),
    z.object({ earliest: z.array(dueExpressionSchema).min(1) }).strict(),
    z.object({ latest: z.array(dueExpressionSchema).min(1) }).strict(),
    z
      .object({
        when: z.array(z.object({ if: retentionConditionSchema, then: dueExpressionSchema }).strict()).min(1),
        otherwise: dueExpressionSchema.optional(),
      })
      .strict(),
  ]),
);

/**
 * What happens to a record when a phase falls due: `restrict` (storage only, Art 18 — the
 * seed's "archived"), `anonymise`, `delete`, `archive` (moved to an archive table), `review`
 * (queued for a person).
 */
export const retentionActionSchema = z.enum(['restrict', 'anonymise', 'delete', 'archive', 'review']);
export type RetentionAction = z.infer<typeof retentionActionSchema>;

export const retentionPhaseSchema = z
  .object({
    action: retentionActionSchema,
    due: dueExpressionSchema,
    /** For `restrict`: the purposes the record may no longer serve; omitted = every purpose. */
    purposes: z.array(z.string().min(1)).optional(),
    /** Why this phase exists, in plain words ("for evidentiary purposes"). */
    reason: z.string().optional(),
  })
  .strict();
export type RetentionPhase = z.infer<typeof retentionPhaseSchema>;

/** A fact a rule reads, with the words a notice uses for it ("the end of the contract"). */
export const retentionFactSchema = z
  .object({
    label: z.string().min(1),
    type: z.enum(['date', 'month', 'value']).default('date'),
  })
  .strict();

export const retentionRuleSchema = z
  .object({
    id: z.string().min(1),
    /** What the rule covers, as the notice names it ("Customer relationship data"). */
    title: z.string().min(1),
    /** The policy's own words for the rule, shown beside the generated description. */
    summary: z.string().optional(),
    categories: z.array(categoryIdSchema).default([]),
    purposes: z.array(z.string().min(1)).default([]),
    facts: z.record(z.string(), retentionFactSchema),
    phases: z.array(retentionPhaseSchema).min(1),
    /** IANA time zone in which civil due dates are computed; the policy's zone when omitted. */
    zone: timeZoneSchema.optional(),
    /** Art 17(3) ground that keeps these records through an erasure request, if any. */
    keepDespiteErasure: z
      .enum(['legal-obligation', 'legal-claims', 'public-interest', 'freedom-of-expression', 'archiving'])
      .optional(),
  })
  .strict();
export type RetentionRuleInput = z.input<typeof retentionRuleSchema>;
export type RetentionRule = z.infer<typeof retentionRuleSchema>;
