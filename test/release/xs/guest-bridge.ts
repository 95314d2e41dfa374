/*
 * The XS guests' side of the bridge (bundled into test/release/xs/guest.ts and
 * test/security/xs-guest.ts): a CryptoPort whose calls go to the host as binary frames, and the
 * request's ASCII JSON decoded in chunks.
 */
import type { CryptoPort } from "../../../modules/ports";

declare const issueCommand: (b: ArrayBuffer) => ArrayBuffer;
/** Binary frame to the host: op byte, then each argument as u32 LE length + bytes. */
export function call(op: number, args: Uint8Array[]): Uint8Array {
  let n = 1;
  for (const a of args) n += 4 + a.length;
  const msg = new Uint8Array(n);
  const dv = new DataView(msg.buffer);
  msg[0] = op;
  let o = 1;
  for (const a of args) {
    dv.setUint32(o, a.length, true);
    msg.set(a, o + 4);
    o += 4 + a.length;
  }
  return new Uint8Array(issueCommand(msg.buffer));
}
export const crypto: CryptoPort = {
  sha256() {
    const parts: Uint8Array[] = [];
    return {
      write(d: Uint8Array) { parts.push(d.slice()); },
      close() { const r = call(0, parts); parts.length = 0; return r; },
      digest() { return call(0, parts); },
      reset() { parts.length = 0; },
    };
  },
  verifyEcdsaP256(p, d, s) { return call(1, [p, d, s])[0] === 1; },
  verifyRsaPkcs1Sha256(m, e, d, s) { return call(2, [m, e, d, s])[0] === 1; },
};
/** The request is ASCII JSON: decode it in chunks (building a 100 KB string a character at a time is slow in XS). */
export function ascii(b: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < b.length; i += 256) parts.push(String.fromCharCode.apply(null, Array.from(b.subarray(i, i + 256))));
  return parts.join("");
}
