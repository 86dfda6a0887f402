import { existsSync } from 'node:fs';
import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, STAFF, startPortal } from './harness.js';
import type { Portal } from './harness.js';

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// SQLite only: the back office scans the portal's own home page in the system Chromium.
describe.skipIf(!existsSync(executablePath))('cookie scan of the portal itself in Chromium', () => {
  let portal: Portal;
  beforeAll(async () => {
    portal = await startPortal(testEngines()[0]!, {}, { seed: false });
  });
  afterAll(async () => {
    await portal?.close();
  });

  it('finds no violation before consent or after refusal, only declared cookies, and _ga after acceptance', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    await staff.page('/admin/cookies');
    const response = await staff.post('/admin/cookies/scan', { url: `${portal.base}/` });
    const page = await response.text();
    expect(response.status).toBe(200);
    expect(page).toContain('data-scan-violations="0"');
    const phase = (name: string) =>
      new RegExp(`data-phase="${name}">([\\s\\S]*?)</table>`).exec(page)?.[1] ?? '';
    expect(phase('before-consent')).toContain('<code>pk_session</code>');
    expect(phase('before-consent')).not.toContain('<code>_ga</code>');
    expect(phase('after-refusal')).toContain('<code>pk_consent</code>');
    expect(phase('after-refusal')).not.toContain('<code>_ga</code>');
    // The scanner found and pressed "Accept all": the analytics cookie appears only then.
    expect(phase('after-acceptance')).toContain('<code>_ga</code>');
  }, 120_000);
});
