import { createCipheriv, createDecipheriv } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { pooledRandomBytes } from './random-pool.js';

/**
 * Data minimisation for consent evidence (EDPB 05/2020 ¶106, CNIL 2020-092): an IPv4 address
 * keeps its /24 network, an IPv6 address its /48, which still shows where a decision came
 * from without identifying a device. Anything that is not an IP address yields `undefined`.
 */
export function truncateIp(ip: string): string | undefined {
  const address = ip.trim().replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return truncateIp(mapped[1]);
  if (isIPv4(address)) {
    const [a, b, c] = address.split('.');
    return `${a}.${b}.${c}.0`;
  }
  if (isIPv6(address)) {
    const groups = expandIpv6(address.replace(/%.*$/, ''));
    return `${groups
      .slice(0, 3)
      .map((group) => Number.parseInt(group, 16).toString(16))
      .join(':')}::`;
  }
  return undefined;
}

function expandIpv6(address: string): string[] {
  let text = address;
  // A trailing dotted IPv4 part counts as two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const [a, b, c, d] = v4[1].split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right];
}

/** AES-256-GCM under a per-subject key: `v1.<iv>.<tag>.<ciphertext>` in base64url. */
export function seal(key: Buffer, plaintext: string): string {
  const iv = pooledRandomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const head = cipher.update(plaintext, 'utf8');
  // GCM is a stream mode: `final()` adds nothing, and skipping the concatenation saves a copy.
  const tail = cipher.final();
  const body = tail.length === 0 ? head : Buffer.concat([head, tail]);
  return `v1.${iv.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}.${body.toString('base64url')}`;
}

/** Opens what {@link seal} produced; `undefined` when the key is wrong or the text was altered. */
export function unseal(key: Buffer, sealed: string): string | undefined {
  const [version, iv, tag, body] = sealed.split('.');
  if (version !== 'v1' || !iv || !tag || body === undefined) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  } catch {
    return undefined;
  }
}
