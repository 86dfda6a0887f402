import type { Kysely } from 'kysely';
import { newId } from '@privacykit/core';
import type { Clock } from '@privacykit/core';
import { HttpError } from './http-error.js';
import type { StaffDirectory, StaffMember } from './staff.js';

const TABLE = 'privacykit_portal_approvals';

/** Actions that need a second staff member (four eyes, ASVS 2.3.5). */
export type ApprovalAction = 'erasure.execute' | 'export.release';

export interface Approval {
  id: string;
  action: ApprovalAction;
  /** The erasure plan id, or the export id. */
  target: string;
  requestedBy: string;
  requestedAt: string;
  approvedBy?: string;
  approvedAt?: string;
}

/**
 * The four-eyes rule for irreversible or disclosing actions: one staff member asks, a different
 * one approves. Stored with who and when; the approval is a single conditional update, so two
 * approvers racing, or the requester approving their own request, cannot both succeed.
 */
export interface Approvals {
  /**
   * Asks for approval; asking again while one is pending returns the pending one. 409 when no
   * account that exists now could ever approve what `by` asks (see `assertApprovable`).
   */
  request(input: { action: ApprovalAction; target: string; by: string }): Promise<Approval>;
  /**
   * 409 unless some other account that exists now could approve what `by` asks for: not `by`,
   * neither made by `by` nor among those who made `by`'s account (directly or not). For the
   * first administrator, who made every other account, none can. Check before doing work whose
   * result then waits for approval.
   */
  assertApprovable(by: string): Promise<void>;
  /** The latest approval asked for this action and target, approved or not. */
  latest(action: ApprovalAction, target: string): Promise<Approval | undefined>;
  /**
   * Approves the pending request as `approver` (`by` is their actor name). 409 when nothing is
   * pending; 403 when `by` asked for it, when the approver's account was created after the
   * approval was asked for, or when either account made the other, directly or through accounts
   * it made: an admin could otherwise create a second account, whose password they chose, and
   * approve their own request with it — or ask with that account and approve as themselves.
   */
  approve(input: {
    action: ApprovalAction;
    target: string;
    by: string;
    approver: StaffMember;
  }): Promise<Approval>;
}

type Row = {
  id: string;
  action: string;
  target: string;
  requested_by: string;
  requested_at: string;
  approved_by: string | null;
  approved_at: string | null;
};

function fromRow(row: Row): Approval {
  return {
    id: row.id,
    action: row.action as ApprovalAction,
    target: row.target,
    requestedBy: row.requested_by,
    requestedAt: row.requested_at,
    ...(row.approved_by ? { approvedBy: row.approved_by } : {}),
    ...(row.approved_at ? { approvedAt: row.approved_at } : {}),
  };
}

export const sameApproverMessage =
  'Four-eyes rule: you asked for this approval yourself, so a different staff member must approve it.';

export const newApproverMessage =
  'Four-eyes rule: your account was created after this approval was asked for, so a staff member whose account existed then must approve it.';

export const madeByRequesterMessage =
  'Four-eyes rule: your account was created by the staff member who asked for this approval (or by an account they created), so someone else must approve it.';

export const madeRequesterMessage =
  'Four-eyes rule: the staff member who asked for this approval has an account you created (or one created by an account you created), so someone else must approve it.';

export function createApprovals(options: {
  db: Kysely<any>;
  tenant: string;
  clock: Clock;
  staff: Pick<StaffDirectory, 'creators' | 'findByEmail' | 'list'>;
}): Approvals {
  const { db, tenant, clock } = options;

  async function latest(action: ApprovalAction, target: string): Promise<Approval | undefined> {
    const row = (await db
      .selectFrom(TABLE)
      .selectAll()
      .where('tenant', '=', tenant)
      .where('action', '=', action)
      .where('target', '=', target)
      .orderBy('requested_at', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst()) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /**
   * Refuses to ask when no account that exists now could ever give the approval (accounts
   * created later cannot): the first administrator made every other account, so what they asked
   * for waited for nobody — an export could then not even be run again until it expired.
   */
  async function assertSomeoneCanApprove(by: string): Promise<void> {
    if (!by.startsWith('staff:')) return;
    const requester = await options.staff.findByEmail(by.slice('staff:'.length));
    if (!requester) return;
    const made = new Set((await options.staff.creators(requester.id)).map((creator) => creator.id));
    for (const member of await options.staff.list()) {
      if (member.id === requester.id || made.has(member.id)) continue;
      const creators = await options.staff.creators(member.id);
      if (!creators.some((creator) => creator.id === requester.id)) return;
    }
    throw new HttpError(
      409,
      'Four-eyes rule: no other staff account can approve what you ask for (you created every one of them, or they created yours). Ask a staff member who did not create your account, and whose account you did not create, to do this.',
    );
  }

  return {
    latest,
    assertApprovable: assertSomeoneCanApprove,
    async request({ action, target, by }) {
      const existing = await latest(action, target);
      if (existing && !existing.approvedAt) return existing;
      await assertSomeoneCanApprove(by);
      const now = clock.now();
      const row: Row = {
        id: newId(now),
        action,
        target,
        requested_by: by,
        requested_at: now.toISOString(),
        approved_by: null,
        approved_at: null,
      };
      await db
        .insertInto(TABLE)
        .values({ ...row, tenant })
        .execute();
      return fromRow(row);
    },
    async approve({ action, target, by, approver }) {
      const pending = await latest(action, target);
      if (!pending || pending.approvedAt) {
        throw new HttpError(409, 'Nothing is waiting for approval here: ask for approval first.');
      }
      if (pending.requestedBy === by) throw new HttpError(403, sameApproverMessage);
      if (approver.createdAt > pending.requestedAt) throw new HttpError(403, newApproverMessage);
      const creators = await options.staff.creators(approver.id);
      if (creators.some((creator) => `staff:${creator.email}` === pending.requestedBy)) {
        throw new HttpError(403, madeByRequesterMessage);
      }
      // The other way round: the approver made the requester's account (and chose its first
      // password, so may have asked in its name).
      const requester = pending.requestedBy.startsWith('staff:')
        ? await options.staff.findByEmail(pending.requestedBy.slice('staff:'.length))
        : undefined;
      if (requester && (await options.staff.creators(requester.id)).some((c) => c.id === approver.id)) {
        throw new HttpError(403, madeRequesterMessage);
      }
      const at = clock.now().toISOString();
      const result = await db
        .updateTable(TABLE)
        .set({ approved_by: by, approved_at: at })
        .where('tenant', '=', tenant)
        .where('id', '=', pending.id)
        .where('approved_at', 'is', null)
        .where('requested_by', '<>', by)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) {
        throw new HttpError(409, 'This was approved by someone else a moment ago.');
      }
      return { ...pending, approvedBy: by, approvedAt: at };
    },
  };
}
