import type { AccessInformation } from '@privacykit/core';
import { toJsonValue } from './json-value.js';

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** One table of the report: the first rows, and how many there are in all. */
export interface ReportTable {
  name: string;
  description?: string;
  rows: number;
  sample: readonly Record<string, unknown>[];
  files: readonly string[];
}

export interface ReportInput {
  title: string;
  generatedAt: string;
  controller: string;
  information: AccessInformation;
  tables: readonly ReportTable[];
  histories: readonly ReportTable[];
}

function cell(value: unknown): string {
  const json = toJsonValue(value);
  if (json === null) return '<td class="null">—</td>';
  const text = typeof json === 'string' ? json : JSON.stringify(json);
  return `<td>${escapeHtml(text)}</td>`;
}

function list(items: readonly string[]): string {
  return items.length === 0 ? '<p>None.</p>' : `<ul>${items.map((item) => `<li>${item}</li>`).join('')}</ul>`;
}

function dataTable(table: ReportTable): string {
  const e = escapeHtml;
  const columns = [...new Set(table.sample.flatMap((row) => Object.keys(row)))];
  const more =
    table.rows > table.sample.length
      ? `<p class="note">Showing the first ${table.sample.length} of ${table.rows} rows. The full data is in ${table.files.map((file) => `<code>${e(file)}</code>`).join(' and ')}.</p>`
      : '';
  const body =
    table.sample.length === 0
      ? '<p>No records.</p>'
      : `<div class="scroll"><table><thead><tr>${columns.map((column) => `<th scope="col">${e(column)}</th>`).join('')}</tr></thead><tbody>${table.sample
          .map((row) => `<tr>${columns.map((column) => cell(row[column])).join('')}</tr>`)
          .join('')}</tbody></table></div>`;
  return `<section><h3 id="t-${e(table.name)}">${e(table.name)} <small>(${table.rows} ${table.rows === 1 ? 'record' : 'records'})</small></h3>${table.description ? `<p>${e(table.description)}</p>` : ''}${more}${body}</section>`;
}

/**
 * The readable part of an access export (Art 15(1) and 15(3), Art 12(1): "concise, transparent,
 * intelligible"): the Art 15 information, then each table. Self-contained — inline style, no
 * script, no external resource, and a CSP that forbids loading any — and every value escaped.
 */
export function renderReport(input: ReportInput): string {
  const e = escapeHtml;
  const info = input.information;
  const purposes = info.purposes.map(
    (purpose) =>
      `${e(purpose.name)} — on the basis of ${purpose.legalBases.map((basis) => `${e(basis.label)} (${e(basis.article)})${basis.legitimateInterest ? `: ${e(basis.legitimateInterest)}` : ''}`).join('; ')}`,
  );
  const recipients = info.recipients.map(
    (recipient) => `${e(recipient.name)} (${e(recipient.kind)}, ${e(recipient.locations.join(', '))})`,
  );
  const transfers = info.transfers.map(
    (transfer) =>
      `${e(transfer.recipientNames.join(', '))} → ${e(transfer.destination)}: ${e(transfer.safeguardLabel)}${transfer.copyAvailableFrom ? `; a copy is available from ${e(transfer.copyAvailableFrom)}` : ''}`,
  );
  const controller = [info.controller.name, info.controller.address, info.controller.email]
    .filter((part): part is string => Boolean(part))
    .map(e)
    .join(', ');
  const dpo = [info.dpo.name, info.dpo.email, info.dpo.address]
    .filter((part): part is string => Boolean(part))
    .map(e)
    .join(', ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(input.title)}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1a1a1a}
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #ccc}h3 small{font-weight:normal;color:#555}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:.2rem .4rem;text-align:left;vertical-align:top;white-space:pre-wrap}
th{background:#f3f3f3}.scroll{overflow-x:auto}.null{color:#999}.note{color:#555}code{background:#f3f3f3;padding:0 .2rem}
</style>
</head>
<body>
<h1>${e(input.title)}</h1>
<p>Prepared by ${e(input.controller)} on ${e(input.generatedAt)} (UTC). This file is a readable summary; the complete data is in the <code>data/</code> (JSON) and <code>csv/</code> folders of this archive, and <code>manifest.json</code> lists every file with its SHA-256 digest.</p>
<h2>About the processing of your data (Art. 15(1)–(2) GDPR)</h2>
<h3>Controller</h3><p>${controller}</p>
<h3>Data protection officer</h3><p>${dpo}</p>
<h3>(a) Purposes and legal bases</h3>${list(purposes)}
<h3>(b) Categories of personal data</h3>${list(info.categories.map((category) => e(category.label)))}
<h3>(c) Recipients</h3>${list(recipients)}
<h3>(d) How long we keep your data</h3>${list(info.retention.map((rule) => e(rule.text)))}
<h3>(e) Your rights</h3>${list(info.rights.map((right) => `${e(right.label)} (${e(right.article)})`))}
<h3>(f) Complaint</h3><p>${e(info.complaint.text)}</p>
<h3>(g) Where data not collected from you came from</h3>${list(info.sources.map(e))}
<h3>(h) Automated decision-making, including profiling</h3>${
    info.automatedDecisions.length === 0
      ? '<p>None.</p>'
      : list(info.automatedDecisions.map((entry) => `${e(entry.purpose)}: ${e(entry.description)}`))
  }
<h3>Transfers outside the EEA and their safeguards (Art. 15(2))</h3>${list(transfers)}
<h2>Your data</h2>
${input.tables.length === 0 ? '<p>We hold no records about you in the systems covered by this export.</p>' : input.tables.map(dataTable).join('\n')}
${input.histories.length > 0 ? `<h2>History</h2>\n${input.histories.map(dataTable).join('\n')}` : ''}
</body>
</html>
`;
}
