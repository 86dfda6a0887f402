import type { Request } from 'express';
import { parseGpcHeader } from '@privacykit/consent';

/**
 * Global Privacy Control (G01): `Sec-GPC` counts only as exactly "1"; when the header arrives
 * several times any "1" counts; absence never means consent.
 */
export function gpcEnabled(req: Request): boolean {
  return parseGpcHeader(req.headersDistinct['sec-gpc']);
}
