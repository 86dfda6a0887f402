import { definePolicy } from '@privacykit/core';
import type { PolicyInput } from '@privacykit/core';
import { describe, expect, it } from 'vitest';
import { purposeNoticeContent, purposeNoticeHash } from './notice-content.js';
import { policyInput, testPolicy } from './test-fixtures.js';

const withInput = (change: (input: PolicyInput) => PolicyInput) =>
  definePolicy(change(structuredClone(policyInput)));
const hashes = (policy = testPolicy) =>
  Object.fromEntries(
    ['newsletter', 'audience-measurement', 'targeted-advertising'].map((id) => [
      id,
      purposeNoticeHash(policy, policy.purposes.find((purpose) => purpose.id === id) as never),
    ]),
  );
/** The purposes whose notice hash differs between the test policy and `policy`. */
const changedBy = (policy: ReturnType<typeof definePolicy>) => {
  const before = hashes();
  const after = hashes(policy);
  return Object.keys(before).filter((id) => before[id] !== after[id]);
};
const trackingToUs = {
  id: 'tracking-us',
  recipients: ['tracking'],
  destination: 'US',
  safeguard: 'standard-contractual-clauses' as const,
};
const withTransfers = (...transfers: NonNullable<PolicyInput['transfers']>) =>
  withInput((input) => ({ ...input, transfers }));

describe('consent notice content (C04, C07)', () => {
  it('a transfer of a recipient’s data outside the EEA changes the notice of exactly the purposes that use the recipient', () => {
    expect(changedBy(withTransfers(trackingToUs))).toEqual(['audience-measurement', 'targeted-advertising']);
    const content = purposeNoticeContent(
      withTransfers(trackingToUs),
      withTransfers(trackingToUs).purposes.find((purpose) => purpose.id === 'audience-measurement') as never,
    ) as { transfers: unknown };
    expect(content.transfers).toEqual([
      {
        id: 'tracking-us',
        destination: 'US',
        safeguard: 'standard-contractual-clauses',
        recipients: ['tracking'],
      },
    ]);
  });

  it('a new safeguard or destination for the same transfer is a new notice; reordering the transfers is not', () => {
    const scc = withTransfers(trackingToUs);
    const bcr = withTransfers({ ...trackingToUs, safeguard: 'binding-corporate-rules' });
    const india = withTransfers({ ...trackingToUs, destination: 'IN' });
    expect(hashes(bcr)['audience-measurement']).not.toBe(hashes(scc)['audience-measurement']);
    expect(hashes(india)['audience-measurement']).not.toBe(hashes(scc)['audience-measurement']);
    const mailer = {
      id: 'emailing-ca',
      recipients: ['emailing'],
      destination: 'CA',
      safeguard: 'adequacy-decision' as const,
    };
    expect(hashes(withTransfers(trackingToUs, mailer))).toEqual(hashes(withTransfers(mailer, trackingToUs)));
    // Only the transfer's recipients that the purpose uses are part of its notice.
    const shared = withTransfers({ ...trackingToUs, recipients: ['tracking', 'emailing'] });
    const newsletter = purposeNoticeContent(
      shared,
      shared.purposes.find((purpose) => purpose.id === 'newsletter') as never,
    ) as { transfers: { recipients: string[] }[] };
    expect(newsletter.transfers[0]?.recipients).toEqual(['emailing']);
  });

  it('the Art 9(2) condition and the Art 13(2)(e) provision statement are part of the notice', () => {
    const explicit = withInput((input) => ({
      ...input,
      purposes: input.purposes?.map((purpose) =>
        purpose.id === 'newsletter' ? { ...purpose, specialCondition: 'explicit-consent' as const } : purpose,
      ),
    }));
    expect(changedBy(explicit)).toEqual(['newsletter']);
    const optional = withInput((input) => ({
      ...input,
      purposes: input.purposes?.map((purpose) =>
        purpose.id === 'targeted-advertising'
          ? { ...purpose, provision: { required: false, consequences: 'Ads are not personalised.' } }
          : purpose,
      ),
    }));
    expect(changedBy(optional)).toEqual(['targeted-advertising']);
  });

  it('a purpose without transfers, special categories or a provision statement hashes as before they were covered', () => {
    const content = purposeNoticeContent(
      testPolicy,
      testPolicy.purposes.find((purpose) => purpose.id === 'newsletter') as never,
    ) as Record<string, unknown>;
    expect(Object.keys(content).sort()).toEqual([
      'activities',
      'categories',
      'controller',
      'description',
      'legalBases',
      'name',
      'purpose',
      'recipients',
      'retention',
    ]);
    // Pinned: a deployed ledger's grants carry this hash, and a change to how the content is
    // written would ask every subject to consent again.
    expect(
      purposeNoticeHash(
        testPolicy,
        testPolicy.purposes.find((purpose) => purpose.id === 'newsletter') as never,
      ),
    ).toBe('30de417e918bbc8e5f97baf1f669d1c4d849a8fe74b0ba40666ab6fa2b4465a3');
    // A transfer touches only the purposes that use its recipients: none for a recipient no consent purpose uses.
    expect(changedBy(withTransfers({ ...trackingToUs, recipients: ['staff'] }))).toEqual(['newsletter']);
    expect(
      changedBy(
        withInput((input) => ({
          ...input,
          recipients: [
            ...(input.recipients ?? []),
            { id: 'auditor', name: 'Auditor', kind: 'processor' as const },
          ],
          transfers: [{ ...trackingToUs, recipients: ['auditor'] }],
        })),
      ),
    ).toEqual([]);
  });
});
