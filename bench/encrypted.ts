/*
 * Pre-encrypted releases (issue 31): the agent's update of an esp_encrypted_img file against the
 * plain update of the same image, in the same run, from the same update host, on the same
 * engine: rounds run plain, RSA-3072 and ECIES in a turning order so machine noise hits all alike; the figure
 * is the median over the rounds of plain ms / encrypted ms (image GET -> restart: download,
 * decryption, tag, plain SHA-256, read-back verification, otadata switch).
 *
 * RAM: the XS machine's highest footprint (meter `allocate`) in the encrypted update minus the
 * plain one's (the GCM, RSA and ECDH state sit on the Node side of the bridge, as they sit in
 * Moddable's natives on the chip: this is what the agent's own JavaScript adds), and the
 * buffers by construction (the 512-byte header, one SHA-256 context, the GCM context).
 */
import type { Lab, Published } from "../host-sim/lab/lab";
import { createNodeEngine } from "../host-sim/engines/engine-node";
import { createXsEngine, type MeterTotals } from "../host-sim/engines/xs/engine";
import type { BridgeStats } from "../host-sim/engines/xs/bridge";
import { generateDeviceKey } from "../backend/release/encrypted-img";
import { agentUpdate } from "./pipeline";
import { resumeCase } from "./resume";

export const ENCRYPTED_GOAL = 0.9;

export interface EncryptedBench {
  imageBytes: number;
  rounds: number;
  plainMs: number[];
  rsaMs: number[];
  eccMs: number[];
  /** Median over the rounds of plain / encrypted (same round). */
  rsaRatio: number;
  eccRatio: number;
  /** XS, one run each (after a warm-up): ms and the machine's highest footprint. */
  xs: { plainMs: number; rsaMs: number; plainAllocate: number; rsaAllocate: number; addedBytes: number } | null;
  /** A link drop at 10 %, 50 %, 90 % of the file: body bytes the host sent, encrypted (restart from 0) and plain (Range resume). */
  resume: Array<{ cut: number; fileBytes: number; encryptedSent: number; plainBytes: number; plainSent: number; ok: boolean }>;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

let runs = 0;

export async function encryptedBench(o: { lab: Lab; size: number; rounds: number; xs?: boolean; progress?: (s: string) => void }): Promise<EncryptedBench> {
  const { lab, size } = o;
  const rsa = generateDeviceKey("rsa3072").privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const ecc = generateDeviceKey("ecies-p256").privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const image = { version: "1.1.0", secureVersion: 1, size };
  const publish = (tag: string, key?: string): Published => lab.publish(`bench-enc-${++runs}-${tag}`, key ? { image, encrypt: { key } } : { image });
  const node = createNodeEngine();
  const plainMs: number[] = [], rsaMs: number[] = [], eccMs: number[] = [];
  const ok = (r: { final: string | null }, what: string) => {
    if (r.final !== "rebooting" && r.final !== "confirming") throw new Error(`encrypted bench: ${what} ended ${r.final}`);
  };
  // warm-up (TLS, JIT, key parsing paths) outside the figures
  ok(await agentUpdate(lab, node, publish("warm"), size, undefined, false), "plain warm-up");
  ok(await agentUpdate(lab, node, publish("warm-rsa", rsa), size, undefined, false, { decryptionKey: rsa }), "rsa warm-up");
  for (let r = 0; r < o.rounds; r++) {
    // the order turns every round (plain first, then RSA first, then ECIES first): a run pays for
    // the garbage of the one before it, and no side should always come after the same one
    const ms: Record<string, number> = {};
    const kinds = ["plain", "rsa", "ecc"];
    for (let i = 0; i < 3; i++) {
      const kind = kinds[(i + r) % 3]!;
      const key = kind === "rsa" ? rsa : kind === "ecc" ? ecc : undefined;
      const run = await agentUpdate(lab, node, publish(kind, key), size, undefined, false, key ? { decryptionKey: key } : {});
      ok(run, kind);
      ms[kind] = run.ms;
    }
    plainMs.push(ms.plain!);
    rsaMs.push(ms.rsa!);
    eccMs.push(ms.ecc!);
    o.progress?.(`bench: encrypted round ${r + 1}/${o.rounds}: plain ${ms.plain!.toFixed(1)} ms, rsa ${ms.rsa!.toFixed(1)} ms, ecies ${ms.ecc!.toFixed(1)} ms`);
  }
  let xs: EncryptedBench["xs"] = null;
  if (o.xs !== false) {
    const boots: Array<{ meter: MeterTotals; bridge: BridgeStats }> = [];
    const engine = createXsEngine({ onStop: (meter, bridge) => boots.push({ meter: { ...meter }, bridge: { ...bridge } }) });
    try {
      ok(await agentUpdate(lab, engine, publish("xs-warm"), size, boots, false), "xs warm-up");
      const p = await agentUpdate(lab, engine, publish("xs-plain"), size, boots, false);
      ok(p, "xs plain");
      const a = await agentUpdate(lab, engine, publish("xs-rsa", rsa), size, boots, false, { decryptionKey: rsa });
      ok(a, "xs rsa");
      const pa = p.meter?.allocate ?? NaN, aa = a.meter?.allocate ?? NaN;
      xs = { plainMs: p.ms, rsaMs: a.ms, plainAllocate: pa, rsaAllocate: aa, addedBytes: aa - pa };
    } finally {
      await engine.close();
    }
  }
  const resume: EncryptedBench["resume"] = [];
  for (const cut of [0.1, 0.5, 0.9]) {
    const e = await resumeCase(lab, size, [cut], rsa);
    const p = await resumeCase(lab, size, [cut]);
    resume.push({ cut, fileBytes: e.imageBytes, encryptedSent: e.bytesSent, plainBytes: p.imageBytes, plainSent: p.bytesSent, ok: e.final === "committed" && p.ok });
  }
  const ratio = (enc: number[]) => median(enc.map((x, i) => plainMs[i]! / x));
  return { imageBytes: size, rounds: o.rounds, plainMs, rsaMs, eccMs, rsaRatio: ratio(rsaMs), eccRatio: ratio(eccMs), xs, resume };
}
