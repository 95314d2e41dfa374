/* Runs inside the XS engine (bundled by enc-xs.test.ts): the device's esp_encrypted_img pieces (modules/enc-image.ts, enc-kdf.ts) over a bridged SHA-256. */
import { parseEncHeader, unwrapPkcs1v15Key, gcmCounterBlock, gcmBlocksBeforeWrap } from "../../../modules/enc-image";
import { eccScalarFromHmacKey, eciesGcmKey, hkdfSha256, isP256Point, pbkdf2Sha256 } from "../../../modules/enc-kdf";
import { fromBase64, toHex, utf8Encode } from "../../../modules/bytes";
import type { CryptoPort } from "../../../modules/ports";

declare const issueCommand: (b: ArrayBuffer) => ArrayBuffer;
function sha(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const msg = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { msg.set(p, o); o += p.length; }
  return new Uint8Array(issueCommand(msg.buffer));
}
const crypto = {
  sha256() {
    const parts: Uint8Array[] = [];
    return {
      write(d: Uint8Array) { parts.push(d.slice()); },
      close() { const r = sha(parts); parts.length = 0; return r; },
      digest() { return sha(parts); },
      reset() { parts.length = 0; },
    };
  },
} as unknown as CryptoPort;

export interface EncCases { files: string[]; hmacKey: string; ems: string[]; j0: string }

/** One line per check: a value or an error code, the same on Node and in XS. */
export function runEncCases(req: EncCases, c: CryptoPort): string[] {
  const out: string[] = [];
  const attempt = (f: () => string) => {
    try { out.push(f()); } catch (e) { out.push("err:" + ((e as { code?: string }).code ?? "NON-OTA " + String(e))); }
  };
  for (const b64 of req.files) {
    const file = fromBase64(b64);
    attempt(() => { const h = parseEncHeader(file); return `hdr:${h.binSize}:${toHex(h.iv)}:${toHex(h.tag)}:${isP256Point(h.keyField.subarray(0, 64))}`; });
    // parity only: the point's X stands in for the ECDH secret (the device gets that from Curve.dh)
    attempt(() => { const h = parseEncHeader(file); return "ecies:" + toHex(eciesGcmKey(c, h.keyField.subarray(0, 32), h.keyField.subarray(64, 96))); });
  }
  attempt(() => "scalar:" + toHex(eccScalarFromHmacKey(c, fromBase64(req.hmacKey))));
  attempt(() => "hkdf:" + toHex(hkdfSha256(c, utf8Encode("ikm"), utf8Encode("salt"), utf8Encode("info"), 80)));
  attempt(() => "pbkdf2:" + toHex(pbkdf2Sha256(c, utf8Encode("pw"), utf8Encode("salt"), 3, 20)));
  for (const em of req.ems) attempt(() => "key:" + toHex(unwrapPkcs1v15Key(fromBase64(em))));
  const j0 = fromBase64(req.j0);
  for (const b of [0, 5, 6, 1000]) attempt(() => `ctr:${b}:${toHex(gcmCounterBlock(j0, b))}:${gcmBlocksBeforeWrap(j0, b)}`);
  return out;
}

(globalThis as unknown as { handleCommand: (b: ArrayBuffer) => ArrayBuffer }).handleCommand = (buf: ArrayBuffer) => {
  const bytes = new Uint8Array(buf);
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += 256) parts.push(String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + 256))));
  return utf8Encode(JSON.stringify(runEncCases(JSON.parse(parts.join("")) as EncCases, crypto))).buffer as ArrayBuffer;
};
