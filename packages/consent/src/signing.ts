import { KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { PrivacyKitError, canonicalJson } from '@privacykit/core';
import { sha256Hex } from '@privacykit/core/crypto';
import type { ConsentErrorCode } from './errors.js';

/** An Ed25519 key pair as PEM text or `KeyObject`s. */
export interface LedgerKeys {
  privateKey: KeyObject | string;
  publicKey?: KeyObject | string;
  /**
   * Key rotation: the public keys of earlier signing keys. Tree heads they signed still verify;
   * new heads and receipts are signed with `privateKey`.
   */
  previousPublicKeys?: readonly (KeyObject | string)[];
}

/** Loaded signing keys. `keyId` = SHA-256 of the public key's SPKI DER, hex. */
export interface SigningKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
  keyId: string;
  /** The public key and the previous ones: tree heads signed by any of them verify. */
  trusted: KeyObject[];
}

/** Loads (or, when `keys` is absent, generates) an Ed25519 signing key pair. */
export function loadSigningKeys(keys?: LedgerKeys): SigningKeys {
  try {
    const privateKey = keys
      ? keys.privateKey instanceof KeyObject
        ? keys.privateKey
        : createPrivateKey(keys.privateKey)
      : generateKeyPairSync('ed25519').privateKey;
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 key');
    const publicKey = keys?.publicKey
      ? keys.publicKey instanceof KeyObject
        ? keys.publicKey
        : createPublicKey(keys.publicKey)
      : createPublicKey(privateKey);
    const derived = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    if (!derived.equals(publicKey.export({ type: 'spki', format: 'der' })))
      throw new Error('the public key does not belong to the private key');
    const previous = (keys?.previousPublicKeys ?? []).map((key) => {
      const loaded = key instanceof KeyObject ? key : createPublicKey(key);
      if (loaded.asymmetricKeyType !== 'ed25519')
        throw new Error('a previous public key is not an Ed25519 key');
      return loaded;
    });
    return {
      privateKey,
      publicKey,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      keyId: keyIdOf(publicKey),
      trusted: [publicKey, ...previous],
    };
  } catch (cause) {
    throw new PrivacyKitError<ConsentErrorCode>(
      'consent/invalid-options',
      `invalid Ed25519 signing keys: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

/** SHA-256 (hex) of a public key's SPKI DER encoding. */
export function keyIdOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  return sha256Hex(key.export({ type: 'spki', format: 'der' }));
}

/** A signed tree head (RFC 9162 §4.10, in JSON): the ledger's size and root, signed. */
export interface SignedTreeHead {
  tenant: string;
  treeSize: number;
  /** Merkle root over the first `treeSize` entries, hex. */
  rootHash: string;
  /** When the head was signed, ISO 8601 UTC. */
  timestamp: string;
  keyId: string;
  /** Ed25519 signature over the canonical JSON of the other fields, base64. */
  signature: string;
}

function treeHeadPayload(head: Omit<SignedTreeHead, 'signature'>): string {
  return canonicalJson({
    type: 'privacykit-consent-tree-head/1',
    tenant: head.tenant,
    treeSize: head.treeSize,
    rootHash: head.rootHash,
    timestamp: head.timestamp,
    keyId: head.keyId,
  });
}

export function signTreeHead(
  head: Omit<SignedTreeHead, 'signature' | 'keyId'>,
  keys: SigningKeys,
): SignedTreeHead {
  const unsigned = { ...head, keyId: keys.keyId };
  const signature = sign(null, Buffer.from(treeHeadPayload(unsigned)), keys.privateKey).toString('base64');
  return { ...unsigned, signature };
}

/**
 * The Ed25519 public key a verifier was handed (PEM or `KeyObject`), or `undefined` for anything
 * else — junk PEM, another key type, a private `KeyObject`, not a key at all: a signature that
 * says Ed25519 is only ever checked as one.
 */
export function ed25519PublicKey(publicKey: unknown): KeyObject | undefined {
  try {
    const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
    if (!(key instanceof KeyObject)) return undefined;
    return key.type === 'public' && key.asymmetricKeyType === 'ed25519' ? key : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `text` is written exactly as the signers here write a signature (`toString('base64')`).
 * `Buffer.from(text, 'base64')` also reads whitespace, base64url, missing padding and non-zero
 * unused bits; accepting those would let one signature travel under many texts.
 */
export function isCanonicalBase64(text: unknown): text is string {
  return typeof text === 'string' && Buffer.from(text, 'base64').toString('base64') === text;
}

/**
 * Checks a signed tree head against a public key (PEM or KeyObject). Anyone holding the public
 * key can check a head the controller published or handed out (RFC 9162 §8.1.3 anchoring).
 * `false`, never an exception, for a malformed head, a key that is not an Ed25519 public key, or
 * a signature not in the canonical base64 `signTreeHead` writes.
 */
export function verifyTreeHead(head: SignedTreeHead, publicKey: KeyObject | string): boolean {
  try {
    if (typeof head !== 'object' || head === null || !isCanonicalBase64(head.signature)) return false;
    const key = ed25519PublicKey(publicKey);
    if (!key || head.keyId !== keyIdOf(key)) return false;
    return verify(null, Buffer.from(treeHeadPayload(head)), key, Buffer.from(head.signature, 'base64'));
  } catch {
    return false;
  }
}
