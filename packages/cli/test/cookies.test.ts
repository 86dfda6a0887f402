import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { json, runBin, runInProcess } from './helpers.js';

const headers = join(tmpdir(), `privacykit-cli-headers-${process.pid}.txt`);
const har = join(tmpdir(), `privacykit-cli-${process.pid}.har`);

afterAll(() => {
  rmSync(headers, { force: true });
  rmSync(har, { force: true });
});

describe('privacykit cookies', () => {
  it('classify gives category, consent verdict and vendor; the policy declares the site cookies', async () => {
    const result = await runBin(['cookies', 'classify', '_ga', 'session', 'zz_unknown_cookie', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const cookies = json<{
      cookies: { name: string; category: string; consentRequired: boolean; source: string }[];
    }>(result).cookies;
    expect(cookies.map((cookie) => [cookie.name, cookie.category, cookie.consentRequired])).toEqual([
      ['_ga', 'analytics', true],
      ['session', 'necessary', false],
      ['zz_unknown_cookie', 'unclassified', true],
    ]);
    expect(cookies[1]?.source).toBe('override');
  });

  it('audit of a headers file exits 1 naming the cookie set without consent', async () => {
    writeFileSync(
      headers,
      'HTTP/1.1 200 OK\nSet-Cookie: _ga=GA1.2.3; Max-Age=63072000; Path=/\nSet-Cookie: session=abc; HttpOnly; Secure\n',
    );
    const result = await runBin(['cookies', 'audit', headers, '--site', 'https://acme.test']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/VIOLATION _ga \(acme\.test\)/);
    const consented = await runInProcess([
      'cookies',
      'audit',
      headers,
      '--site',
      'https://acme.test',
      '--consent',
      'analytics',
      '--json',
    ]);
    expect(consented.code, consented.stderr).toBe(0);
    expect(json<{ violations: unknown[]; cookies: unknown[] }>(consented)).toMatchObject({ violations: [] });
  });

  it('audit reads a HAR export and takes the site from its first URL', async () => {
    writeFileSync(
      har,
      JSON.stringify({
        log: {
          entries: [
            {
              request: { url: 'https://shop.example/' },
              response: {
                headers: [{ name: 'Set-Cookie', value: '_fbp=fb.1.2; Max-Age=7776000; Domain=shop.example' }],
              },
            },
          ],
        },
      }),
    );
    const result = await runBin(['cookies', 'audit', har, '--json']);
    expect(result.code).toBe(1);
    const body = json<{ site: string; violations: { name: string; category: string }[] }>(result);
    expect(body.site).toBe('https://shop.example/');
    expect(body.violations).toEqual([expect.objectContaining({ name: '_fbp', category: 'marketing' })]);
  });

  it('audit of a missing file is one line and exit 2', async () => {
    const result = await runInProcess(['cookies', 'audit', '/nonexistent/file.har']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
