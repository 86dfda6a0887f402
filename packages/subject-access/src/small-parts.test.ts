import { describe, expect, it } from 'vitest';
import { downloadHeaders } from './download-headers.js';
import { escapeHtml } from './html-report.js';
import { checkJsonSchema } from './json-schema-check.js';
import { toJsonRow, toJsonValue } from './json-value.js';
import { checkPortabilityDocument } from './portability.js';

describe('toJsonValue', () => {
  it('keeps JSON values and gives other driver values one documented text form', () => {
    expect(toJsonValue('x')).toBe('x');
    expect(toJsonValue(0.1)).toBe(0.1);
    expect(toJsonValue(undefined)).toBe(null);
    expect(toJsonValue(12345678901234567890n)).toBe('12345678901234567890');
    expect(toJsonValue(new Date('2024-02-29T23:00:00Z'))).toBe('2024-02-29T23:00:00.000Z');
    expect(toJsonValue(new Uint8Array([0, 255]))).toBe('AP8=');
    expect(toJsonValue(Number.NaN)).toBe('NaN');
    expect(toJsonValue({ nested: [new Date(0)] })).toEqual({ nested: ['1970-01-01T00:00:00.000Z'] });
  });

  it('keeps a JSON column’s "__proto__" key as data', () => {
    const stored = JSON.parse('{"__proto__":{"admin":true},"a":1,"when":null}');
    expect(JSON.stringify(toJsonValue(stored))).toBe('{"__proto__":{"admin":true},"a":1,"when":null}');
    expect(JSON.stringify(toJsonRow({ id: 1, doc: stored, at: new Date(0) }))).toBe(
      '{"id":1,"doc":{"__proto__":{"admin":true},"a":1,"when":null},"at":"1970-01-01T00:00:00.000Z"}',
    );
    expect(({} as { admin?: boolean }).admin).toBeUndefined();
  });
});

describe('downloadHeaders (S06, hostile case 13)', () => {
  it('forbids caching and referrers and forces a download', () => {
    const headers = downloadHeaders('données "ada".zip', { bytes: 10 });
    expect(headers['Cache-Control']).toBe('no-store');
    expect(headers['Referrer-Policy']).toBe('no-referrer');
    expect(headers['Content-Disposition']).toMatch(
      /^attachment; filename="donn_es__ada_.zip"; filename\*=UTF-8''/,
    );
    expect(headers['Content-Disposition']).not.toMatch(/"[^"]*"[^;]*"/);
    expect(headers['Content-Length']).toBe('10');
    // RFC 5987: quotes, parentheses and stars are not attr-chars, so they are percent-encoded too.
    expect(downloadHeaders("l'export (1)*.zip", { bytes: 1 })['Content-Disposition']).toMatch(
      /filename\*=UTF-8''l%27export%20%281%29%2A\.zip$/,
    );
    expect(headers['X-Content-Type-Options']).toBe('nosniff');
  });
});

describe('escapeHtml', () => {
  it('escapes every character that could open markup or an attribute', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });
});

describe('portability schema check', () => {
  const valid = {
    schemaVersion: 'privacykit.portability/1',
    generatedAt: '2024-06-01T12:00:00.000Z',
    controller: { name: 'Shop' },
    tables: {
      customers: { columns: { id: [], email: ['contact.email'] }, rows: [{ id: 1, email: 'a@b.c' }] },
    },
  };
  it('accepts a conforming document', () => {
    expect(checkPortabilityDocument(valid)).toEqual([]);
  });
  it('reports wrong versions, missing fields, bad dates, extra members and undeclared columns', () => {
    expect(checkPortabilityDocument({ ...valid, schemaVersion: '2' })).toEqual([
      '$.schemaVersion: expected "privacykit.portability/1"',
    ]);
    expect(checkPortabilityDocument({ ...valid, controller: {} })).toEqual(['$.controller: missing "name"']);
    expect(checkPortabilityDocument({ ...valid, generatedAt: 'yesterday' })[0]).toMatch(/does not match/);
    expect(checkPortabilityDocument({ ...valid, extra: 1 })).toEqual(['$: unexpected "extra"']);
    expect(
      checkPortabilityDocument({
        ...valid,
        tables: { t: { columns: { id: [] }, rows: [{ id: 1, interests: 'cats' }] } },
      }),
    ).toEqual(['$.tables.t.rows[0]: undeclared column "interests"']);
    expect(checkJsonSchema({ type: 'array', items: { type: 'integer' } }, [1, 'x'])).toEqual([
      '$[1]: expected integer, got string',
    ]);
  });
});
