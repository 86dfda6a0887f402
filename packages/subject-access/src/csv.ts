import { toJsonValue } from './json-value.js';

/**
 * A value as CSV cell text: strings neutralised against formula injection by a leading `'` when
 * they start with `=`, `+`, `-`, `@`, tab or CR; numbers as written (a negative number is data,
 * not a formula); objects as JSON; then RFC 4180 quoting when the text holds a quote, comma,
 * CR or LF.
 */
export function csvCell(value: unknown): string {
  if (typeof value === 'string') return csvText(value);
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (value === null || value === undefined) return '';
  const json = toJsonValue(value);
  if (json === null) return '';
  if (typeof json === 'number' || typeof json === 'boolean') return String(json);
  return csvText(typeof json === 'string' ? json : JSON.stringify(json));
}

const needsQuotes = /[",\r\n]/;
const quote = /"/g;

/** Text as a cell: neutralised, then quoted when it holds a quote, comma, CR or LF. */
function csvText(text: string): string {
  const safe = neutralise(text);
  return needsQuotes.test(safe) ? `"${safe.replace(quote, '""')}"` : safe;
}

/**
 * Prefixes a `'` to text a spreadsheet would run as a formula: text starting with one of the
 * characters that make Excel, LibreOffice or Google Sheets read a cell as a formula or command
 * (`=`, `+`, `-`, `@`, tab, CR — OWASP's CSV-injection list, ASVS 1.2.10, hostile case 17).
 */
export function neutralise(text: string): string {
  if (text.length === 0) return text;
  const first = text.charCodeAt(0);
  return first === 61 || first === 43 || first === 45 || first === 64 || first === 9 || first === 13
    ? `'${text}`
    : text;
}

/** One CSV record (RFC 4180: comma-separated, CRLF-terminated). */
export function csvRecord(values: readonly unknown[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) line += (i === 0 ? '' : ',') + csvCell(values[i]);
  return `${line}\r\n`;
}

/** One CSV record of `row`'s values in `columns` order. */
export function csvRow(row: Readonly<Record<string, unknown>>, columns: readonly string[]): string {
  let line = '';
  for (let i = 0; i < columns.length; i++) line += (i === 0 ? '' : ',') + csvCell(row[columns[i]!]);
  return `${line}\r\n`;
}
