/*
 * Runs inside the real XS engine (xsnap-worker), bundled by test/security/fuzz.test.ts: the
 * fuzz's verifiers (fuzz-targets.ts, i.e. the device code in modules/) over a CryptoPort bridged
 * to the host's, one batch of inputs per command.
 */
import { TARGETS, targetContext, type TargetContext, type TargetName, type TargetSetup, type Verdict } from "./fuzz-targets";
import { fromBase64, utf8Encode } from "../../modules/bytes";
import type { CryptoPort } from "../../modules/ports";

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

/** The request is ASCII JSON: decoded in chunks (a character at a time is slow in XS). */
function ascii(b: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < b.length; i += 256) parts.push(String.fromCharCode.apply(null, Array.from(b.subarray(i, i + 256))));
  return parts.join("");
}

let ctx: TargetContext | undefined;

(globalThis as unknown as { handleCommand: (b: ArrayBuffer) => ArrayBuffer }).handleCommand = (buf: ArrayBuffer) => {
  const req = JSON.parse(ascii(new Uint8Array(buf))) as { setup?: TargetSetup; cases: { target: TargetName; b64: string }[] };
  if (req.setup) ctx = targetContext(req.setup, crypto);
  const out: Verdict[] = [];
  for (const c of req.cases) out.push(TARGETS[c.target](fromBase64(c.b64), ctx!));
  return utf8Encode(JSON.stringify(out)).buffer as ArrayBuffer;
};
