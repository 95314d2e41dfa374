/*
 * The device's applier inside the real XS engine (xsnap-worker): modules/delta bundled alone,
 * base and patch handed over as binary messages, then one crank applies the patch as it would
 * arrive (1,400-byte pieces), the applier's own 4 KB output buffer going to the sink as the agent's does. The crank's meter is the apply's cost:
 * XS compute per MB of output, next to the full-image path's per-MB figure in the bench's xs part.
 */
import { build } from "esbuild";
import { join } from "node:path";
import { XsWorker } from "../host-sim/engines/xs/worker";
import { toHex } from "../modules/bytes";
import { sha256 } from "../backend/crypto";

export interface DeltaXsCost {
  pair: string;
  imageBytes: number;
  patchBytes: number;
  /** XS metering index for the apply crank. */
  compute: number;
  computePerMB: number;
  /** Real time of the crank on this machine. */
  ms: number;
  exact: boolean;
}

const ROOT = join(import.meta.dirname, "..");

const GUEST = `
  let base, patch;
  globalThis.handleCommand = (message) => {
    const b = new Uint8Array(message);
    if (b[0] === 1) { base = b.slice(1); return new ArrayBuffer(0); }
    if (b[0] === 2) { patch = b.slice(1); return new ArrayBuffer(0); }
    const out = new Uint8Array(4 << 20);
    let n = 0;
    const applier = new Delta.PatchApplier({
      base: { size: base.length, read: (o, t) => t.set(base.subarray(o, o + t.length)) },
      sink: { write: (d) => { out.set(d, n); n += d.length; } },
      maxOutput: out.length,
    });
    for (let i = 0; i < patch.length; i += 1400) applier.write(patch.subarray(i, i + 1400));
    applier.finish();
    return out.slice(0, n).buffer;
  };
`;

export async function deltaXsCost(pair: { name: string; from: Uint8Array; to: Uint8Array; patch: Uint8Array }): Promise<DeltaXsCost> {
  const bundle = await build({
    stdin: { contents: `export { PatchApplier } from "./modules/delta/patch";`, resolveDir: ROOT, loader: "ts" },
    bundle: true, format: "iife", globalName: "Delta", platform: "neutral", write: false, target: "es2022",
  });
  const worker = new XsWorker({ name: "delta-bench" });
  try {
    await worker.evaluate(bundle.outputFiles[0]!.text + GUEST);
    const tagged = (tag: number, b: Uint8Array) => {
      const m = new Uint8Array(b.length + 1);
      m[0] = tag;
      m.set(b, 1);
      return m;
    };
    await worker.command(tagged(1, pair.from));
    await worker.command(tagged(2, pair.patch));
    const t0 = performance.now();
    const r = await worker.command(Uint8Array.of(3));
    const ms = performance.now() - t0;
    return {
      pair: pair.name,
      imageBytes: pair.to.length,
      patchBytes: pair.patch.length,
      compute: r.meter.compute,
      computePerMB: r.meter.compute / (pair.to.length / 1048576),
      ms,
      exact: toHex(sha256(r.reply)) === toHex(sha256(pair.to)),
    };
  } finally {
    await worker.terminate();
  }
}
