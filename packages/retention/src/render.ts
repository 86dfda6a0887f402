import { describeRetentionRule } from '@privacykit/core';
import type { Policy, RetentionDescription, RetentionRule } from '@privacykit/core';

export interface RenderedSchedule {
  rules: RetentionDescription[];
  /** One line per rule, for the notice (Art 13(2)(a)). */
  text: string;
}

/**
 * The retention schedule in plain words, one entry per rule, generated from the very rules the
 * engine enforces (Art 13(2)(a)): the notice and the sweeps cannot drift apart.
 */
export function renderSchedule(
  source: Pick<Policy, 'retention'> | readonly RetentionRule[],
): RenderedSchedule {
  const rules = (
    Array.isArray(source) ? source : (source as Pick<Policy, 'retention'>).retention
  ) as readonly RetentionRule[];
  const described = rules.map(describeRetentionRule);
  return { rules: described, text: described.map((rule) => `- ${rule.text}`).join('\n') };
}
