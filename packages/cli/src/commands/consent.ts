import type { Command } from 'commander';
import type { ConsentLedger, ConsentLedgerOptions, SignedTreeHead } from '@privacykit/consent';
import { cliError } from '../errors.js';
import { readJsonFile, readPublicKey } from '../files.js';
import { examples } from '../program.js';
import type { CommandScope, ProgramKit } from '../program.js';
import { settingsOf } from '../settings.js';

/** The consent ledger of the config and database (its `consent` settings: keys, tenant, …). */
export async function ledgerOf(scope: CommandScope): Promise<ConsentLedger> {
  const config = await scope.config();
  const { createConsentLedger } = await import('@privacykit/consent');
  const settings = settingsOf(config, 'consent') as Partial<ConsentLedgerOptions>;
  return createConsentLedger({ ...settings, db: await scope.database(), policy: config.policy });
}

export function registerConsent(program: Command, kit: ProgramKit): void {
  const consent = program
    .command('consent')
    .description('the tamper-evident consent ledger (Art 7(1)): verify it, sign its head, check receipts');

  examples(
    consent
      .command('verify')
      .description(
        'recompute the ledger and check every signed tree head; exit 1 on tampering, naming the first bad entry',
      )
      .option(
        '--public-key <pem>',
        'trusted Ed25519 public key (PEM text or file), instead of the stored one',
      )
      .option('--head <file>', 'a signed tree head kept outside the database (from `consent head`)'),
    [
      'privacykit consent verify',
      'privacykit consent verify --public-key ledger.pub.pem --head anchored-head.json --json',
    ],
  ).action(
    kit.action(async (scope) => {
      const options = scope.options<{ publicKey?: string; head?: string }>();
      // A file that is no key or no head is the operator's to fix (exit 2), not tampering:
      // `consent verify || alert "tampered"` fired on a mistyped path's contents.
      const publicKey = options.publicKey ? readPublicKey(scope.io.cwd, options.publicKey) : undefined;
      const head = options.head ? readJsonFile(scope.io.cwd, options.head, 'tree head') : undefined;
      if (head !== undefined && !looksLikeTreeHead(head)) {
        throw cliError(
          'cli/invalid-file',
          `${options.head} is not a signed tree head (treeSize, rootHash, signature: see \`privacykit consent head\`)`,
        );
      }
      const ledger = await ledgerOf(scope);
      const result = await ledger.verify({
        ...(publicKey !== undefined ? { publicKey } : {}),
        ...(head !== undefined ? { head: head as SignedTreeHead } : {}),
      });
      const firstBadEntry = result.ok ? null : (result.firstBadSeq ?? null);
      // The verify result names the entry by sequence only; the ledger's public API adds the leaf
      // hash stored for that sequence (its inclusion proof), which identifies the entry in backups
      // and in signed heads. It has no lookup from a sequence to the event id.
      let leafHash: string | null = null;
      if (firstBadEntry !== null) {
        leafHash = await ledger
          .inclusionProof(firstBadEntry)
          .then((proof) => proof.leafHash)
          .catch(() => null);
      }
      const named =
        firstBadEntry === null ? '?' : `${firstBadEntry}${leafHash ? ` (stored leaf hash ${leafHash})` : ''}`;
      scope.out.result(
        {
          tenant: ledger.tenant,
          ...result,
          firstBadEntry,
          firstBad: firstBadEntry === null ? null : { seq: firstBadEntry, leafHash },
        },
        () =>
          result.ok
            ? `consent ledger of ${ledger.tenant}: ok — ${result.size} entries, ${result.signedHeads} signed heads checked`
            : `consent ledger of ${ledger.tenant}: TAMPERED — first bad entry ${named}: ${result.reason ?? 'unknown reason'}`,
      );
      if (!result.ok && scope.out.json) {
        scope.io.stderr.write(
          `privacykit: consent ledger tampered — first bad entry ${named}: ${result.reason ?? ''}\n`,
        );
      }
      return result.ok ? 0 : 1;
    }),
  );

  examples(
    consent
      .command('head')
      .description('sign the current tree head and print it: keep it outside the database to anchor the log'),
    ['privacykit consent head --json > heads/$(date +%F).json'],
  ).action(
    kit.action(async (scope) => {
      const ledger = await ledgerOf(scope);
      const head = await ledger.treeHead();
      const publicKey = await ledger.publicKey();
      scope.out.result(head, () => [
        `tree size ${head.treeSize}, root ${head.rootHash}`,
        `signed ${head.timestamp} by key ${head.keyId}`,
        publicKey.trim(),
      ]);
      return 0;
    }),
  );

  const receipt = consent
    .command('receipt')
    .description('consent receipts (ISO/IEC TS 27560 shaped, signed)');
  examples(
    receipt
      .command('verify')
      .description(
        "check a receipt's Ed25519 signature against the controller's public key; exit 1 when invalid",
      )
      .argument('<file>', 'the receipt JSON file')
      .requiredOption('--key <pem>', "the ledger's public key (PEM text or file)"),
    ['privacykit consent receipt verify receipt.json --key ledger.pub.pem'],
  ).action(
    kit.action(async (scope) => {
      const [file] = scope.command.processedArgs as [string];
      const options = scope.options<{ key: string }>();
      const receiptValue = readJsonFile(scope.io.cwd, file, 'receipt');
      // A key file that is no key: exit 2, not "INVALID — … altered" about a valid receipt.
      const key = readPublicKey(scope.io.cwd, options.key);
      const { verifyReceipt } = await import('@privacykit/consent');
      let valid: boolean;
      try {
        valid = verifyReceipt(receiptValue, key);
      } catch {
        valid = false;
      }
      const summary =
        typeof receiptValue === 'object' && receiptValue !== null
          ? (receiptValue as {
              recordId?: string;
              purpose?: { id?: string };
              state?: string;
              eventTime?: string;
            })
          : {};
      scope.out.result(
        {
          valid,
          file,
          recordId: summary.recordId ?? null,
          purpose: summary.purpose?.id ?? null,
          state: summary.state ?? null,
          eventTime: summary.eventTime ?? null,
        },
        () =>
          valid
            ? `${file}: valid — ${summary.state} consent to "${summary.purpose?.id}" at ${summary.eventTime} (record ${summary.recordId})`
            : `${file}: INVALID — the signature does not match this key, or the receipt was altered`,
      );
      return valid ? 0 : 1;
    }),
  );
}

/** The shape of a signed tree head (`consent head`): what verify compares, present and typed. */
function looksLikeTreeHead(value: unknown): boolean {
  const head = value as Partial<Record<'treeSize' | 'rootHash' | 'signature', unknown>> | null;
  return (
    typeof head === 'object' &&
    head !== null &&
    Number.isSafeInteger(head.treeSize) &&
    (head.treeSize as number) >= 0 &&
    typeof head.rootHash === 'string' &&
    /^[0-9a-f]{64}$/i.test(head.rootHash) &&
    typeof head.signature === 'string'
  );
}
