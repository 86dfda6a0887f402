import { privacyNotice, recordOfProcessing } from '@privacykit/core';
import type { AddressedParty, Policy } from '@privacykit/core';
import { heading, list, paragraph, table } from './document.js';
import type { Block } from './document.js';

function party(value: AddressedParty | Policy['dpo'] | undefined): string {
  if (!value) return '';
  return [value.name, value.address, value.email, value.phone, value.website].filter(Boolean).join(', ');
}

/** The Art 13 information notice of a policy as document blocks. */
export function noticeBlocks(policy: Policy): Block[] {
  const notice = privacyNotice(policy);
  const blocks: Block[] = [
    heading(1, `Privacy notice — ${notice.controller.name}`),
    paragraph(`Version ${notice.version}, effective ${notice.effectiveDate}.`),
    heading(2, 'Who is responsible (Art. 13(1)(a)–(b))'),
    list(
      [
        `Controller: ${party(notice.controller)}`,
        notice.representative ? `Representative in the EU: ${party(notice.representative)}` : '',
        `Data protection officer: ${party(notice.dpo)}`,
      ].filter(Boolean),
    ),
  ];
  if (notice.processorRole) blocks.push(paragraph(notice.processorRole));
  blocks.push(heading(2, 'Why we process your data and on what basis (Art. 13(1)(c)–(d))'));
  for (const purpose of notice.purposes) {
    blocks.push(heading(3, purpose.name), paragraph(purpose.description));
    if (purpose.activities.length > 0) blocks.push(list(purpose.activities));
    blocks.push(
      list([
        `Legal basis: ${purpose.legalBases
          .map(
            (basis) =>
              `${basis.label} (${basis.article})${basis.legitimateInterest ? ` — our legitimate interest: ${basis.legitimateInterest}` : ''}`,
          )
          .join('; ')}`,
        `Data: ${purpose.categories.map((category) => category.label).join(', ')}`,
        ...(purpose.recipients.length > 0
          ? [`Recipients: ${purpose.recipients.map((recipient) => recipient.name).join(', ')}`]
          : []),
        ...purpose.retention.map((rule) => `Kept: ${rule.text}`),
        ...(purpose.provision
          ? [
              `Providing the data is ${purpose.provision.required ? 'required' : 'optional'}${purpose.provision.consequences ? `: ${purpose.provision.consequences}` : ''}`,
            ]
          : []),
        ...(purpose.automatedDecisions ? [`Automated decisions: ${purpose.automatedDecisions}`] : []),
      ]),
    );
  }
  if (notice.recipients.length > 0) {
    blocks.push(
      heading(2, 'Recipients (Art. 13(1)(e))'),
      table(
        ['Recipient', 'Role', 'Where'],
        notice.recipients.map((recipient) => [
          recipient.name,
          recipient.kind,
          recipient.locations.join(', '),
        ]),
      ),
    );
  }
  if (notice.transfers.length > 0) {
    blocks.push(
      heading(2, 'Transfers outside the EEA (Art. 13(1)(f))'),
      list(
        notice.transfers.map(
          (transfer) =>
            `${transfer.recipientNames.join(', ')} → ${transfer.destination}: ${transfer.safeguardLabel}${transfer.copyAvailableFrom ? `; a copy is available from ${transfer.copyAvailableFrom}` : ''}`,
        ),
      ),
    );
  }
  if (notice.retention.length > 0) {
    blocks.push(
      heading(2, 'How long we keep your data (Art. 13(2)(a))'),
      list(notice.retention.map((rule) => rule.text)),
    );
  }
  blocks.push(
    heading(2, 'Your rights (Art. 13(2)(b)–(d))'),
    list(notice.rights.map((right) => `${right.label} (${right.article})`)),
    paragraph(
      `To exercise them: ${notice.channels.map((channel) => `${channel.kind} ${channel.value}`).join('; ')}.`,
    ),
    paragraph(notice.withdrawal),
    paragraph(`${notice.complaint.text} ${party(notice.complaint.authority)}`),
  );
  if (notice.afterDeath) blocks.push(paragraph(notice.afterDeath));
  if (notice.sources.length > 0) {
    blocks.push(heading(2, 'Where data not provided by you come from (Art. 14(2)(f))'), list(notice.sources));
  }
  if (notice.cookies.length > 0) {
    blocks.push(
      heading(2, 'Cookies'),
      table(
        ['Cookie', 'Provider', 'Category', 'Duration', 'Consent'],
        notice.cookies.map((cookie) => [
          `${cookie.name}${cookie.prefix ? '*' : ''}`,
          cookie.provider,
          cookie.category,
          cookie.duration,
          cookie.exempt ? 'exempt' : 'required',
        ]),
      ),
    );
  }
  return blocks;
}

/** The Art 30(1) record of processing activities as document blocks. */
export function recordBlocks(policy: Policy): Block[] {
  const record = recordOfProcessing(policy);
  const blocks: Block[] = [
    heading(1, `Record of processing activities — ${record.controller.name}`),
    paragraph(`Policy version ${record.version}. Article 30(1) GDPR.`),
    list(
      [
        `Controller: ${party(record.controller)}`,
        record.representative ? `Representative: ${party(record.representative)}` : '',
        `Data protection officer: ${party(record.dpo)}`,
      ].filter(Boolean),
    ),
  ];
  for (const activity of record.activities) {
    blocks.push(
      heading(2, activity.name),
      table(
        ['Item', 'Entry'],
        [
          ['Purpose (Art. 30(1)(b))', activity.purpose],
          ['Legal basis', activity.legalBases.map((basis) => `${basis.label} (${basis.article})`).join('; ')],
          ['Data subjects (Art. 30(1)(c))', activity.dataSubjects.join(', ') || '—'],
          [
            'Categories of data (Art. 30(1)(c))',
            activity.categories.map((category) => category.label).join(', '),
          ],
          [
            'Recipients (Art. 30(1)(d))',
            activity.recipients
              .map((recipient) => `${recipient.name} (${recipient.kind}, ${recipient.locations.join('/')})`)
              .join('; ') || '—',
          ],
          [
            'Transfers (Art. 30(1)(e))',
            activity.transfers
              .map(
                (transfer) =>
                  `${transfer.recipients.join(', ')} → ${transfer.destination}: ${transfer.safeguard}`,
              )
              .join('; ') || '—',
          ],
          ['Time limits for erasure (Art. 30(1)(f))', activity.retention.join(' ') || '—'],
          ['Security measures (Art. 30(1)(g))', activity.securityMeasures],
        ],
      ),
    );
  }
  return blocks;
}
