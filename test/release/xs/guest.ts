/* Runs inside the XS engine (bundled by xs-parity.test.ts): the device-side verifiers over a bridged CryptoPort. */
import { verifyManifest } from "../../../modules/manifest";
import { verifyImageSignature } from "../../../modules/sigblock";
import { keyFromConfig, type KeyConfigInput } from "../../../modules/keys";
import { compareSemver } from "../../../modules/semver";
import { fromBase64, toBase64, utf8Encode, utf8Decode } from "../../../modules/bytes";
import type { CryptoPort } from "../../../modules/ports";

type Case = { kind: "manifest"; b64: string } | { kind: "image"; b64: string } | { kind: "semver"; a: string; b: string };
declare const issueCommand: (b: ArrayBuffer) => ArrayBuffer;
function call(op: string, args: Uint8Array[]): Uint8Array {
  const msg = utf8Encode(JSON.stringify({ op, args: args.map(toBase64) }));
  return new Uint8Array(issueCommand(msg.buffer as ArrayBuffer));
}
const crypto: CryptoPort = {
  sha256() {
    const parts: Uint8Array[] = [];
    return {
      write(d: Uint8Array) { parts.push(d.slice()); },
      close() { const r = call("sha256", parts); parts.length = 0; return r; },
      reset() { parts.length = 0; },
    };
  },
  verifyEcdsaP256(p, d, s) { return call("ecdsa", [p, d, s])[0] === 1; },
  verifyRsaPkcs1Sha256(m, e, d, s) { return call("rsa", [m, e, d, s])[0] === 1; },
};
(globalThis as unknown as { handleCommand: (b: ArrayBuffer) => ArrayBuffer }).handleCommand = (buf: ArrayBuffer) => {
  const req = JSON.parse(utf8Decode(new Uint8Array(buf)));
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
