import type { Request } from 'express';

/**
 * Global Privacy Control (G01): `Sec-GPC` counts only as exactly "1"; when the header arrives
 * several times Node joins the values ("0, 1") and any "1" counts; absence never means consent.
 */
export function gpcEnabled(req: Request): boolean {
  const values = req.headersDistinct['sec-gpc'] ?? [];
  return values.some((value) => value.split(',').some((part) => part.trim() === '1'));
}
