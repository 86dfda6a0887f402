import { cookiesError } from './errors.js';

/**
 * Parses RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF line ends, a leading BOM.
 * An unterminated quoted field is a typed `cookies/invalid-csv` error, not a silent truncation.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const length = text.length;
  while (i < length) {
    const char = text.charCodeAt(i);
    if (char === 34 /* " */ && field === '') {
      // Quoted field: read up to the closing quote, unescaping "".
      let end = i + 1;
      let value = '';
      for (;;) {
        const quote = text.indexOf('"', end);
        if (quote === -1) {
          throw cookiesError('cookies/invalid-csv', `Unterminated quoted field in row ${rows.length + 1}`, {
            details: { row: rows.length + 1 },
          });
        }
        value += text.slice(end, quote);
        if (text.charCodeAt(quote + 1) === 34) {
          value += '"';
          end = quote + 2;
        } else {
          end = quote + 1;
          break;
        }
      }
      field = value;
      i = end;
      continue;
    }
    if (char === 44 /* , */) {
      row.push(field);
      field = '';
      i++;
    } else if (char === 10 || char === 13) {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += char === 13 && text.charCodeAt(i + 1) === 10 ? 2 : 1;
    } else {
      // Unquoted run up to the next delimiter.
      let end = i;
      while (end < length) {
        const c = text.charCodeAt(end);
        if (c === 44 || c === 10 || c === 13) break;
        end++;
      }
      field += text.slice(i, end);
      i = end;
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
