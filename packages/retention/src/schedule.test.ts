import { isPrivacyKitError, retentionRuleSchema } from '@privacykit/core';
import { describe, expect, it } from 'vitest';
import { worldSchedule } from './fixtures/world.js';
import { defineSchedule } from './schedule.js';
import type { ScheduleEntryInput } from './schedule.js';

const leads = retentionRuleSchema.parse({
  id: 'leads',
  title: 'Leads',
  zone: 'Europe/Paris',
  facts: { collectedAt: { label: 'collected' }, source: { label: 'source', type: 'value' } },
  phases: [
    { action: 'anonymise', due: { from: 'collectedAt', after: 'P1Y' } },
    {
      action: 'delete',
      due: {
        when: [{ if: { fact: 'source', equals: 'fair' }, then: { from: 'collectedAt', after: 'P3Y' } }],
        otherwise: { from: 'collectedAt', after: 'P5Y' },
      },
    },
  ],
});

const entry = (anonymise: ScheduleEntryInput['anonymise']): ScheduleEntryInput => ({
  rule: leads,
  table: 'leads',
  key: 'id',
  facts: { collectedAt: 'created_at', source: 'source' },
  anonymise,
});

function scheduleError(input: ScheduleEntryInput[]): unknown {
  try {
    defineSchedule(input);
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('defineSchedule', () => {
  it('refuses an anonymisation that rewrites a column a later phase is dated from', () => {
    // 'year' writes '2023': the delete phase would then select the row and fail to date it;
    // 'null' would make it never due; 'month' would date it from the 1st (deleted early).
    for (const strategy of ['year', 'null', 'month', 'pseudonym'] as const) {
      const error = scheduleError([entry({ email: 'null', created_at: strategy })]);
      expect(isPrivacyKitError(error, 'retention/invalid-schedule'), strategy).toBe(true);
      expect((error as Error).message).toContain(
        'phase 0 anonymises "created_at", which holds fact "collectedAt" that phase 1 (delete) is due from',
      );
    }
    // A fact a later phase's condition reads counts too.
    const error = scheduleError([entry({ source: { value: 'unknown' } })]);
    expect(isPrivacyKitError(error, 'retention/invalid-schedule')).toBe(true);
    expect((error as Error).message).toContain('fact "source"');
  });

  it('accepts anonymising other columns, or a trigger no later phase reads', () => {
    expect(defineSchedule([entry({ email: 'null', name: 'pseudonym' })]).entries).toHaveLength(1);
    // The traffic-data rule generalises its own trigger in its last phase: nothing reads it later.
    expect(defineSchedule(worldSchedule).entries).toHaveLength(4);
  });
});
