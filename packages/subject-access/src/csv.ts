import { toJsonValue } from './json-value.js';

/**
 * First characters that make spreadsheets (Excel, LibreOffice, Google Sheets) read a cell as a
 * formula or command: OWASP's CSV-injection list (ASVS 1.2.10, hostile case 17).
 */
const formulaTriggers = new Set(['=', '+', '-', '@', '\t', '\r']);

/**
 * A value as CSV cell text: strings neutralised against formula injection by a leading `'` when
 * they start with `=`, `+`, `-`, `@`, tab or CR; numbers as written (a negative number is data,
 * not a formula); objects as JSON; then RFC 4180 quoting when the text holds a quote, comma,
 * CR or LF.
 */
export function csvCell(value: unknown): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  const json = typeof value === 'string' ? value : toJsonValue(value);
  let text: string;
  if (json === null) text = '';
  else if (typeof json === 'number' || typeof json === 'boolean') text = String(json);
  else if (typeof json === 'string') text = neutralise(json);
  else text = neutralise(JSON.stringify(json));
  return needsQuotes.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

const needsQuotes = /[",\r\n]/;

/** Prefixes a `'` to text a spreadsheet would run as a formula. */
export function neutralise(text: string): string {
  return text.length > 0 && formulaTriggers.has(text[0]!) ? `'${text}` : text;
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
