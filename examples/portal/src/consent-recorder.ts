import type { ConsentLedger } from '@privacykit/consent';
import type { CookieChoice } from './routes/cookies.js';

/**
 * Writes a banner or preference-centre choice to the ledger: one decision per purpose (C02),
 * refusals too (C12); a refusal after a grant is a withdrawal (Art 7(3)); a refusal forced by
 * GPC is recorded with GPC as its source (G03). The IP is truncated by the ledger.
 */
export async function recordCookieChoice(ledger: ConsentLedger, choice: CookieChoice): Promise<void> {
  const current = await ledger.current(choice.subjectId);
  for (const [purpose, granted] of Object.entries(choice.choices)) {
    const before = current.purposes[purpose];
    const viaGpc = choice.gpcRefused.includes(purpose);
    const evidence = choice.ip ? { ip: choice.ip } : undefined;
    if (granted) {
      await ledger.record({
        subjectId: choice.subjectId,
        purpose,
        state: 'granted',
        source: choice.source,
        method: choice.source === 'form' ? 'form-submit' : 'click',
        evidence,
      });
    } else if (before?.valid) {
      await ledger.withdraw(choice.subjectId, purpose, {
        source: viaGpc ? 'gpc' : choice.source,
        method: viaGpc ? 'gpc-signal' : choice.source === 'form' ? 'form-submit' : 'click',
        evidence,
      });
    } else if (before?.state !== 'refused' || viaGpc) {
      await ledger.record({
        subjectId: choice.subjectId,
        purpose,
        state: 'refused',
        source: viaGpc ? 'gpc' : choice.source,
        method: viaGpc ? 'gpc-signal' : choice.source === 'form' ? 'form-submit' : 'click',
        evidence,
      });
    }
  }
}
