/* Runs inside the XS engine (bundled by xs-parity.test.ts): the device-side verifiers over a bridged CryptoPort. */
import { verifyManifest } from "../../../modules/manifest";
import { verifyImageSignature } from "../../../modules/sigblock";
import { keyFromConfig, type KeyConfigInput } from "../../../modules/keys";
import { compareSemver } from "../../../modules/semver";
import { fromBase64, utf8Encode } from "../../../modules/bytes";
import type { CryptoPort } from "../../../modules/ports";

type Case = { kind: "manifest"; b64: string } | { kind: "image"; b64: string } | { kind: "semver"; a: string; b: string };
declare const issueCommand: (b: ArrayBuffer) => ArrayBuffer;
/** Binary frame to the host: op byte, then each argument as u32 LE length + bytes. */
function call(op: number, args: Uint8Array[]): Uint8Array {
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
const crypto: CryptoPort = {
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
function ascii(b: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < b.length; i += 256) parts.push(String.fromCharCode.apply(null, Array.from(b.subarray(i, i + 256))));
  return parts.join("");
}

(globalThis as unknown as { handleCommand: (b: ArrayBuffer) => ArrayBuffer }).handleCommand = (buf: ArrayBuffer) => {
  const req = JSON.parse(ascii(new Uint8Array(buf)));
  const keys = req.keys.map((k: KeyConfigInput) => keyFromConfig(k, crypto));
  const out: string[] = [];
  for (const c of req.cases as Case[]) {
    try {
      if (c.kind === "manifest") { const r = verifyManifest(fromBase64(c.b64), keys, crypto); out.push("ok:" + r.keyId + ":" + r.manifest.version); }
      else if (c.kind === "image") { const f = fromBase64(c.b64); const r = verifyImageSignature((o, t) => t.set(f.subarray(o, o + t.length)), f.length, keys, crypto, new Uint8Array(1024)); out.push("ok:" + r.scheme + ":" + r.keyId + ":" + r.imageLength); }
      else out.push("cmp:" + compareSemver(c.a, c.b));
    } catch (e) { const code = (e as { code?: string }).code; out.push("err:" + (code ?? "NON-OTA " + String(e))); }
  }
  return utf8Encode(JSON.stringify(out)).buffer as ArrayBuffer;
};
