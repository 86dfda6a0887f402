import type { DataCategory } from './categories.js';
import { legalBasisArticle, legalBasisLabel } from './legal-basis.js';
import type { LegalBasis } from './legal-basis.js';
import { describePeriod } from './period.js';
import type { DueExpression, RetentionCondition, RetentionPhase, RetentionRule } from './retention-rule.js';
import { rightArticle, rightLabel } from './rights.js';
import type { Right } from './rights.js';
import type { AddressedParty, Policy, Recipient, Transfer, TransferSafeguard } from './policy.js';

export const transferSafeguardLabel: Readonly<Record<TransferSafeguard, string>> = {
  'adequacy-decision': 'an adequacy decision of the European Commission (Art. 45)',
  'standard-contractual-clauses':
    'standard data protection clauses adopted by the European Commission (Art. 46(2)(c))',
  'binding-corporate-rules': 'binding corporate rules (Art. 47)',
  'code-of-conduct': 'an approved code of conduct (Art. 46(2)(e))',
  certification: 'an approved certification mechanism (Art. 46(2)(f))',
  derogation: 'a derogation for a specific situation (Art. 49)',
};

export interface NoticeLegalBasis {
  basis: LegalBasis;
  article: string;
  label: string;
  description?: string;
  legitimateInterest?: string;
}

export interface NoticePurpose {
  id: string;
  name: string;
  description: string;
  activities: string[];
  legalBases: NoticeLegalBasis[];
  categories: DataCategory[];
  recipients: Recipient[];
  retention: RetentionDescription[];
  provision?: { required: boolean; consequences?: string };
  automatedDecisions?: string;
}

export interface RetentionDescription {
  id: string;
  title: string;
  summary?: string;
  /** Generated plain words, one sentence per phase, from the rule as enforced. */
  text: string;
  phases: { action: RetentionPhase['action']; text: string }[];
}

export interface NoticeTransfer extends Transfer {
  recipientNames: string[];
  safeguardLabel: string;
}

/** The information Art 13 requires at collection, structured for rendering. */
export interface PrivacyNotice {
  tenant: string;
  version: string;
  effectiveDate: string;
  language: string;
  controller: AddressedParty;
  representative?: AddressedParty;
  dpo: Policy['dpo'];
  processorRole?: string;
  purposes: NoticePurpose[];
  categories: DataCategory[];
  recipients: Recipient[];
  transfers: NoticeTransfer[];
  retention: RetentionDescription[];
  rights: { right: Right; article: string; label: string }[];
  channels: Policy['rights']['channels'];
  afterDeath?: string;
  withdrawal: string;
  complaint: { authority: AddressedParty; text: string };
  sources: string[];
  cookies: Policy['cookies'];
}

const actionWords: Readonly<Record<RetentionPhase['action'], string>> = {
  restrict: 'archived (kept for storage only, no longer used)',
  anonymise: 'anonymised',
  delete: 'deleted',
  archive: 'moved to the archive',
  review: 'reviewed to decide whether to keep them',
};

function describeCondition(condition: RetentionCondition, rule: RetentionRule): string {
  if ('fact' in condition) {
    const label = rule.facts[condition.fact]?.label ?? condition.fact;
    if ('equals' in condition)
      return condition.equals === true ? `there is ${label}` : `${label} is ${String(condition.equals)}`;
    if ('in' in condition) return `${label} is ${condition.in.map(String).join(' or ')}`;
    return condition.present ? `${label} is known` : `${label} is unknown`;
  }
  if ('all' in condition) return condition.all.map((c) => describeCondition(c, rule)).join(' and ');
  if ('any' in condition) return condition.any.map((c) => describeCondition(c, rule)).join(' or ');
  const inner = condition.not;
  if ('fact' in inner && 'equals' in inner && inner.equals === true) {
    return `there is no ${(rule.facts[inner.fact]?.label ?? inner.fact).replace(/^(a|an|the) /, '')}`;
  }
  return `it is not the case that ${describeCondition(inner, rule)}`;
}

/** Plain words for when a due expression falls due: "5 years after the end of the contract". */
export function describeDue(expression: DueExpression, rule: RetentionRule): string {
  if ('from' in expression) {
    const label = rule.facts[expression.from]?.label ?? expression.from;
    const anchor = expression.endOfMonth ? `the end of the month of ${label}` : label;
    return expression.after ? `${describePeriod(expression.after)} after ${anchor}` : `at ${anchor}`;
  }
  if ('earliest' in expression || 'latest' in expression) {
    const key = 'earliest' in expression ? 'earliest' : 'latest';
    const members: readonly DueExpression[] =
      'earliest' in expression ? expression.earliest : expression.latest;
    // A conditional among the dates is told branch by branch, each with the other dates: joined
    // as they were, "when deferred, 15 months after the debit; otherwise 13 months after it, or
    // at the card's expiry, whichever comes first" read as if the expiry capped one branch only.
    const at = members.findIndex((member) => 'when' in member);
    const branching = members[at];
    if (branching && 'when' in branching) {
      const rest = members.filter((_, i) => i !== at);
      const withRest = (then: DueExpression) => ({ [key]: [then, ...rest] }) as unknown as DueExpression;
      const otherwise = branching.otherwise
        ? withRest(branching.otherwise)
        : rest.length === 1
          ? rest[0]
          : rest.length > 1
            ? ({ [key]: rest } as unknown as DueExpression)
            : undefined;
      return describeDue(
        {
          when: branching.when.map((branch) => ({ if: branch.if, then: withRest(branch.then) })),
          ...(otherwise ? { otherwise } : {}),
        } as DueExpression,
        rule,
      );
    }
    const joined = members.map((e) => describeDue(e, rule)).join(', or ');
    return `${joined}, whichever comes ${key === 'earliest' ? 'first' : 'last'}`;
  }
  const cases = expression.when.map(
    (branch) => `when ${describeCondition(branch.if, rule)}, ${describeDue(branch.then, rule)}`,
  );
  if (expression.otherwise) cases.push(`otherwise ${describeDue(expression.otherwise, rule)}`);
  return cases.join('; ');
}

/**
 * A retention rule in plain words for the notice (Art 13(2)(a)), generated from the very rule
 * that `@privacykit/retention` enforces, so the text and the behaviour cannot drift.
 */
export function describeRetentionRule(rule: RetentionRule): RetentionDescription {
  const phases = rule.phases.map((phase) => {
    const scope =
      phase.action === 'restrict' && phase.purposes?.length ? ` for ${phase.purposes.join(', ')}` : '';
    const why = phase.reason ? ` ${phase.reason}` : '';
    return {
      action: phase.action,
      text: `${actionWords[phase.action]}${scope} ${describeDue(phase.due, rule)}${why}`,
    };
  });
  const text = `${rule.title}: ${phases.map((phase) => phase.text).join('; then ')}.`;
  return { id: rule.id, title: rule.title, summary: rule.summary, text, phases };
}

function byIds<T extends { id: string }>(items: readonly T[], ids: readonly string[]): T[] {
  return ids.flatMap((id) => items.filter((item) => item.id === id));
}

/**
 * The information Art 13(1)–(2) requires, derived from the policy: controller and DPO,
 * purposes with legal bases (and legitimate interests), recipients, transfers and safeguards,
 * retention periods in words, the rights, withdrawal, the right to complain, provision and
 * automated decision-making. The portal renders it; nothing re-derives it.
 */
export function privacyNotice(policy: Policy): PrivacyNotice {
  const retention = policy.retention.map(describeRetentionRule);
  const usedCategories = new Set(policy.purposes.flatMap((purpose) => purpose.categories));
  return {
    tenant: policy.tenant,
    version: policy.version,
    effectiveDate: policy.effectiveDate,
    language: policy.language,
    controller: policy.controller,
    representative: policy.representative,
    dpo: policy.dpo,
    processorRole: policy.processorRole,
    purposes: policy.purposes.map((purpose) => ({
      id: purpose.id,
      name: purpose.name,
      description: purpose.description,
      activities: purpose.activities,
      legalBases: purpose.legalBases.map((entry) => ({
        basis: entry.basis,
        article: legalBasisArticle[entry.basis],
        label: legalBasisLabel[entry.basis],
        description: entry.description,
        legitimateInterest: entry.legitimateInterest,
      })),
      categories: purpose.categories.flatMap((id) => policy.categoryIndex.get(id) ?? []),
      recipients: byIds(policy.recipients, purpose.recipients),
      // Linked from either side: the purpose's `retention`, or the rule's `purposes` (a rule
      // naming its purposes left them with no period in the notice, Art 15 and Art 30 record).
      retention: retention.filter(
        (rule, r) =>
          purpose.retention.includes(rule.id) || policy.retention[r]?.purposes.includes(purpose.id),
      ),
      provision: purpose.provision,
      automatedDecisions: purpose.automatedDecisions,
    })),
    categories: [...usedCategories].flatMap((id) => policy.categoryIndex.get(id) ?? []),
    recipients: policy.recipients,
    transfers: policy.transfers.map((transfer) => ({
      ...transfer,
      recipientNames: byIds(policy.recipients, transfer.recipients).map((recipient) => recipient.name),
      safeguardLabel: transferSafeguardLabel[transfer.safeguard],
    })),
    retention,
    rights: policy.rights.offered.map((right) => ({
      right,
      article: rightArticle[right],
      label: rightLabel[right],
    })),
    channels: policy.rights.channels,
    afterDeath: policy.rights.afterDeath,
    withdrawal:
      'Where processing rests on your consent you may withdraw it at any time, as easily as you gave it; withdrawal does not affect processing carried out before it.',
    complaint: {
      authority: policy.supervisoryAuthority,
      text: `You have the right to lodge a complaint with a supervisory authority, in particular ${policy.supervisoryAuthority.name}.`,
    },
    sources: policy.sources,
    cookies: policy.cookies,
  };
}

/** Art 15(1)(a)–(h) and 15(2): what every access export must tell the subject. */
export interface AccessInformation {
  /** (a) purposes, with their legal bases. */
  purposes: { id: string; name: string; legalBases: NoticeLegalBasis[] }[];
  /** (b) categories of personal data concerned. */
  categories: DataCategory[];
  /** (c) recipients by name (CJEU C-154/21), with where they process. */
  recipients: { id: string; name: string; kind: Recipient['kind']; locations: string[] }[];
  /** (d) retention periods, in words. */
  retention: RetentionDescription[];
  /** (e) rights to rectification, erasure, restriction and objection. */
  rights: { right: Right; article: string; label: string }[];
  /** (f) the right to complain. */
  complaint: { authority: AddressedParty; text: string };
  /** (g) where data not collected from the subject came from. */
  sources: string[];
  /** (h) automated decision-making, including profiling. */
  automatedDecisions: { purpose: string; description: string }[];
  /** 15(2) safeguards of transfers to third countries. */
  transfers: NoticeTransfer[];
  controller: AddressedParty;
  dpo: Policy['dpo'];
}

/**
 * The Art 15(1)–(2) information for an access export, limited to `categories` when given (the
 * categories actually found for the subject): purposes that use them, their recipients and
 * retention rules.
 */
export function accessInformation(
  policy: Policy,
  options: { categories?: readonly string[] } = {},
): AccessInformation {
  const notice = privacyNotice(policy);
  const found = options.categories;
  const relevant = found
    ? notice.purposes.filter((purpose) =>
        purpose.categories.some((category) =>
          found.some(
            (id) =>
              id === category.id || id.startsWith(`${category.id}.`) || category.id.startsWith(`${id}.`),
          ),
        ),
      )
    : notice.purposes;
  const recipientIds = new Set(
    relevant.flatMap((purpose) => purpose.recipients.map((recipient) => recipient.id)),
  );
  const ruleIds = new Set(relevant.flatMap((purpose) => purpose.retention.map((rule) => rule.id)));
  const categoryIds = new Set(
    found ?? relevant.flatMap((purpose) => purpose.categories.map((category) => category.id)),
  );
  return {
    purposes: relevant.map(({ id, name, legalBases }) => ({ id, name, legalBases })),
    categories: [...categoryIds].flatMap((id) => policy.categoryIndex.get(id) ?? []),
    recipients: policy.recipients
      .filter((recipient) => recipientIds.has(recipient.id))
      .map(({ id, name, kind, locations }) => ({ id, name, kind, locations })),
    retention: notice.retention.filter((rule) => ruleIds.has(rule.id)),
    rights: notice.rights.filter((entry) =>
      (
        ['rectification', 'erasure', 'restriction', 'objection', 'portability', 'withdraw-consent'] as Right[]
      ).includes(entry.right),
    ),
    complaint: notice.complaint,
    sources: notice.sources,
    automatedDecisions: relevant.flatMap((purpose) =>
      purpose.automatedDecisions ? [{ purpose: purpose.name, description: purpose.automatedDecisions }] : [],
    ),
    transfers: notice.transfers.filter((transfer) => transfer.recipients.some((id) => recipientIds.has(id))),
    controller: notice.controller,
    dpo: notice.dpo,
  };
}

/** One processing activity of the Art 30(1) record. */
export interface ProcessingActivity {
  purpose: string;
  name: string;
  legalBases: NoticeLegalBasis[];
  dataSubjects: string[];
  categories: DataCategory[];
  recipients: { name: string; kind: Recipient['kind']; locations: string[] }[];
  transfers: { destination: string; recipients: string[]; safeguard: string }[];
  retention: string[];
  securityMeasures: string;
}

/** Art 30(1): the record of processing activities the controller keeps and shows the authority. */
export interface RecordOfProcessing {
  controller: AddressedParty;
  representative?: AddressedParty;
  dpo: Policy['dpo'];
  version: string;
  activities: ProcessingActivity[];
}

export function recordOfProcessing(
  policy: Policy,
  options: { securityMeasures?: string } = {},
): RecordOfProcessing {
  const notice = privacyNotice(policy);
  return {
    controller: policy.controller,
    representative: policy.representative,
    dpo: policy.dpo,
    version: policy.version,
    activities: notice.purposes.map((purpose) => {
      const ids = new Set(purpose.recipients.map((recipient) => recipient.id));
      return {
        purpose: purpose.id,
        name: purpose.name,
        legalBases: purpose.legalBases,
        dataSubjects: (policy.purposes.find((p) => p.id === purpose.id)?.dataSubjects ?? []).map(
          (id) => policy.dataSubjects.find((subject) => subject.id === id)?.label ?? id,
        ),
        categories: purpose.categories,
        recipients: purpose.recipients.map(({ name, kind, locations }) => ({ name, kind, locations })),
        transfers: notice.transfers
          .filter((transfer) => transfer.recipients.some((id) => ids.has(id)))
          .map((transfer) => ({
            destination: transfer.destination,
            recipients: transfer.recipientNames,
            safeguard: transfer.safeguardLabel,
          })),
        retention: purpose.retention.map((rule) => rule.text),
        securityMeasures:
          options.securityMeasures ??
          'Access control with personal accounts, encryption in transit (HTTPS), logging of access, encryption of certain data.',
      };
    }),
  };
}
