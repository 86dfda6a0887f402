import { describe, expect, it } from 'vitest';
import { assertTransition, canTransition, requestStatusSchema, transitions } from './state-machine.js';

describe('request state machine', () => {
  const statuses = requestStatusSchema.options;

  it('follows received → identity-pending → verified → in-progress → completed', () => {
    expect(canTransition('received', 'identity-pending')).toBe(true);
    expect(canTransition('identity-pending', 'verified')).toBe(true);
    expect(canTransition('verified', 'in-progress')).toBe(true);
    expect(canTransition('in-progress', 'completed')).toBe(true);
  });

  it('enters waiting-on-subject only from in-progress and returns there', () => {
    for (const from of statuses) {
      expect(canTransition(from, 'waiting-on-subject')).toBe(from === 'in-progress');
    }
    expect(transitions['waiting-on-subject']).toContain('in-progress');
    expect(transitions['waiting-on-subject']).not.toContain('completed');
  });

  it('never skips verification and never leaves a final state', () => {
    expect(canTransition('received', 'in-progress')).toBe(false);
    expect(canTransition('identity-pending', 'in-progress')).toBe(false);
    expect(canTransition('received', 'completed')).toBe(false);
    for (const final of ['completed', 'denied', 'cancelled'] as const) {
      for (const to of statuses) expect(canTransition(final, to)).toBe(false);
    }
  });

  it('throws requests/illegal-transition for a move not in the table', () => {
    expect(() => assertTransition('completed', 'in-progress')).toThrow(
      expect.objectContaining({ code: 'requests/illegal-transition' }),
    );
    expect(() => assertTransition('in-progress', 'completed')).not.toThrow();
  });
});
