import type { Clock } from '@privacykit/core';

/**
 * The wall clock, for callers that pass no `Clock`. Core's `systemClock` is the same object, but
 * importing a value from core's root would pull zod into browser bundles of this package.
 */
export const systemClock: Clock = { now: () => new Date() };
