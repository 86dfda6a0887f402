import { z } from 'zod';
import { requestsError } from './errors.js';

/**
 * The lifecycle of every rights request, whatever the right. `waiting-on-subject` is entered from
 * `in-progress` (a question to the subject) and returns there; `completed`, `denied` and
 * `cancelled` are final.
 */
export const requestStatusSchema = z.enum([
  'received',
  'identity-pending',
  'verified',
  'in-progress',
  'waiting-on-subject',
  'completed',
  'denied',
  'cancelled',
]);
export type RequestStatus = z.infer<typeof requestStatusSchema>;

/**
 * Every allowed move, as data: the back office can render the buttons from it and nothing else is
 * accepted. Denial is possible from every open state (Art 12(4): with reasons and remedies);
 * cancellation too (the subject withdraws the request).
 */
export const transitions: Readonly<Record<RequestStatus, readonly RequestStatus[]>> = Object.freeze({
  received: ['identity-pending', 'denied', 'cancelled'],
  'identity-pending': ['verified', 'denied', 'cancelled'],
  verified: ['in-progress', 'denied', 'cancelled'],
  'in-progress': ['waiting-on-subject', 'completed', 'denied', 'cancelled'],
  'waiting-on-subject': ['in-progress', 'denied', 'cancelled'],
  completed: [],
  denied: [],
  cancelled: [],
});

/** Statuses after which nothing moves. */
export const finalStatuses: readonly RequestStatus[] = ['completed', 'denied', 'cancelled'];

export function isFinalStatus(status: RequestStatus): boolean {
  return finalStatuses.includes(status);
}

export function canTransition(from: RequestStatus, to: RequestStatus): boolean {
  return transitions[from].includes(to);
}

/** @throws PrivacyKitError `requests/illegal-transition` naming both states. */
export function assertTransition(from: RequestStatus, to: RequestStatus): void {
  if (!canTransition(from, to)) {
    const allowed = transitions[from];
    throw requestsError(
      'requests/illegal-transition',
      `a request cannot move from "${from}" to "${to}"${allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ' (it is final)'}`,
      { details: { from, to } },
    );
  }
}
