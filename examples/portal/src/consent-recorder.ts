import type { ConsentDecision, ConsentLedger } from '@privacykit/consent';
import type { CookieChoice } from './routes/cookies.js';

/**
 * Writes a banner or preference-centre choice to the ledger: one decision per purpose (C02),
 * refusals too (C12); a refusal after a grant is a withdrawal (Art 7(3)); a refusal forced by
 * GPC is recorded with GPC as its source (G03). The IP is truncated by the ledger.
 *
 * All decisions of one choice go through `ledger.import` — one transaction, one Merkle append —
 * rather than one `record` (and one transaction) per purpose: same validation, same events.
 * Renewals of a still-valid grant keep going through `record`, which marks them as renewals.
 */
export async function recordCookieChoice(ledger: ConsentLedger, choice: CookieChoice): Promise<void> {
  const current = await ledger.current(choice.subjectId);
  const evidence = choice.ip ? { ip: choice.ip } : undefined;
  const decisions: ConsentDecision[] = [];
  // A grant of a still-valid grant is a renewal, which only `record` writes as such.
  const renewals: ConsentDecision[] = [];
  for (const [purpose, granted] of Object.entries(choice.choices)) {
    const before = current.purposes[purpose];
    const viaGpc = choice.gpcRefused.includes(purpose);
    const source = viaGpc ? 'gpc' : choice.source;
    const method = viaGpc ? 'gpc-signal' : choice.source === 'form' ? 'form-submit' : 'click';
    let state: ConsentDecision['state'] | undefined;
    if (granted) state = 'granted';
    // Any standing grant, valid or awaiting re-consent on a changed notice, is withdrawn.
    else if (before?.state === 'granted') state = 'withdrawn';
    else if (before?.state !== 'refused' || viaGpc) state = 'refused';
    if (!state) continue;
    (granted && before?.valid ? renewals : decisions).push({
      subjectId: choice.subjectId,
      purpose,
      state,
      source,
      method,
      ...(evidence ? { evidence } : {}),
    });
  }
  if (decisions.length === 1) await ledger.record(decisions[0]!);
  else if (decisions.length > 1) await ledger.import(decisions);
  for (const renewal of renewals) await ledger.record(renewal);
}
