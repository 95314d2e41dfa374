/*
 * Runs inside the real XS engine (xsnap-worker), bundled by test/security/fuzz.test.ts: the
 * fuzz's verifiers (fuzz-targets.ts, i.e. the device code in modules/) over a CryptoPort bridged
 * to the host's, one batch of inputs per command.
 */
import { TARGETS, targetContext, type TargetContext, type TargetName, type TargetSetup, type Verdict } from "./fuzz-targets";
import { fromBase64, utf8Encode } from "../../modules/bytes";
import { crypto, ascii } from "../release/xs/guest-bridge";

let ctx: TargetContext | undefined;

(globalThis as unknown as { handleCommand: (b: ArrayBuffer) => ArrayBuffer }).handleCommand = (buf: ArrayBuffer) => {
  const req = JSON.parse(ascii(new Uint8Array(buf))) as { setup?: TargetSetup; cases: { target: TargetName; b64: string }[] };
  if (req.setup) ctx = targetContext(req.setup, crypto);
  const out: Verdict[] = [];
  for (const c of req.cases) out.push(TARGETS[c.target](fromBase64(c.b64), ctx!));
  return utf8Encode(JSON.stringify(out)).buffer as ArrayBuffer;
};
