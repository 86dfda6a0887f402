import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvCell, csvRecord } from './csv.js';
import { parseCsv } from './fixtures.js';

const triggers = ['=', '+', '-', '@', '\t', '\r'];
const cellText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.tuple(fc.constantFrom(...triggers), fc.string({ maxLength: 20 })).map(([first, rest]) => first + rest),
  fc.constantFrom('a,b', 'say "hi"', 'line\nbreak', 'cr\rlf\r\n', '', ' =not-first', "'already"),
);

describe('CSV cells (RFC 4180, hostile case 17)', () => {
  it('round-trip through an RFC 4180 parser, with formula triggers neutralised by one leading quote', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(cellText, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 5 }),
        (rows) => {
          const width = rows[0]!.length;
          const table = rows.map((row) => Array.from({ length: width }, (_, i) => row[i] ?? ''));
          const parsed = parseCsv(table.map((row) => csvRecord(row)).join(''));
          expect(parsed).toEqual(
            table.map((row) => row.map((cell) => (triggers.includes(cell[0] ?? '') ? `'${cell}` : cell))),
          );
          for (const record of parsed) for (const cell of record) expect(triggers).not.toContain(cell[0]);
        },
      ),
    );
  });

  it('neutralises each trigger character', () => {
    expect(csvCell('=1+1')).toBe("'=1+1");
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell('-1+1')).toBe("'-1+1");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('\tx')).toBe("'\tx");
    expect(csvCell('\rx')).toBe('"\'\rx"');
    expect(csvCell('=HYPERLINK("x")')).toBe('"\'=HYPERLINK(""x"")"');
  });

  it('writes database numbers as numbers, and other values in their JSON form', () => {
    expect(csvCell(-5)).toBe('-5');
    expect(csvCell(1.25)).toBe('1.25');
    expect(csvCell(null)).toBe('');
    expect(csvCell(true)).toBe('true');
    expect(csvCell(new Date('2024-01-02T03:04:05.000Z'))).toBe('2024-01-02T03:04:05.000Z');
    expect(csvCell(Buffer.from('hi'))).toBe('aGk=');
    expect(csvCell({ a: 1 })).toBe('"{""a"":1}"');
    expect(csvCell(['=x'])).toBe('"[""=x""]"');
  });
});
