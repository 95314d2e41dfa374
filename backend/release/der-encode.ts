/*
 * Raw r||s to DER, the other way from modules/der.ts: only the host makes DER signatures (tests of
 * the DER path, the build tools), so this stays out of the device's link.
 */

function derInteger(v: Uint8Array): number[] {
  let s = 0;
  while (s < v.length - 1 && v[s] === 0) s++;
  const body = Array.from(v.subarray(s));
  if (body[0]! & 0x80) body.unshift(0);
  return [0x02, body.length, ...body];
}

/** Raw r||s -> ECDSA-Sig-Value DER (P-256 sizes: all lengths < 128). */
export function ecdsaRawToDer(raw: Uint8Array): Uint8Array {
  if (raw.length !== 64) throw new TypeError("expected 64-byte r||s");
  const r = derInteger(raw.subarray(0, 32));
  const s = derInteger(raw.subarray(32));
  return Uint8Array.from([0x30, r.length + s.length, ...r, ...s]);
}
