/* Runs inside the XS engine (bundled by xs-parity.test.ts): the device-side verifiers over a bridged CryptoPort. */
import { verifyManifest } from "../../../modules/manifest";
import { verifyImageSignature } from "../../../modules/sigblock";
import { keyFromConfig, type KeyConfigInput } from "../../../modules/keys";
import { compareSemver } from "../../../modules/semver";
import { fromBase64, utf8Encode } from "../../../modules/bytes";
import { crypto, ascii } from "./guest-bridge";

type Case = { kind: "manifest"; b64: string } | { kind: "image"; b64: string } | { kind: "semver"; a: string; b: string };
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
