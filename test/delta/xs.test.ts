/*
 * modules/delta in the real XS engine: its files pass the XS-safety AST check, and the
 * applier, bundled alone, turns a detools vector into the exact target inside xsnap-worker,
 * and refuses a bad patch with its code there too.
 */
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { checkSource } from "../../host-sim/engines/xs/xs-safety";
import { XsWorker } from "../../host-sim/engines/xs/worker";
import { toBase64 } from "../../modules/bytes";

const ROOT = join(import.meta.dirname, "../..");
const V = join(ROOT, "test/delta/vectors");

describe("modules/delta on XS", () => {
  it("every file passes the XS-safety check", () => {
    const dir = join(ROOT, "modules/delta");
    const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
    expect(files.length).toBeGreaterThanOrEqual(2);
    expect(files.flatMap((f) => checkSource(`modules/delta/${f}`, readFileSync(join(dir, f), "utf8")))).toEqual([]);
  });

  it("applies a detools heatshrink patch to the exact target inside xsnap-worker, and names a truncated one", async () => {
    const out = await build({
      stdin: { contents: `export { PatchApplier } from "./modules/delta/patch"; export { fromBase64 } from "./modules/bytes";`, resolveDir: ROOT, loader: "ts" },
      bundle: true, format: "iife", globalName: "Delta", platform: "neutral", write: false, target: "es2022",
    });
    const bundle = out.outputFiles[0]!.text;
    const base = readFileSync(join(V, "app-1.0.0.bin"));
    const patch = readFileSync(join(V, "detools-1.0.0-1.1.0-heatshrink.patch"));
    const run = (patchBytes: Buffer) => `${bundle}
      (() => {
        const base = Delta.fromBase64("${toBase64(base)}");
        const patch = Delta.fromBase64("${toBase64(patchBytes)}");
        const out = new Uint8Array(65536);
        let n = 0;
        const applier = new Delta.PatchApplier({
          base: { size: base.length, read: (o, t) => t.set(base.subarray(o, o + t.length)) },
          sink: { write: (d) => { out.set(d, n); n += d.length; } },
          maxOutput: out.length,
        });
        try {
          for (let i = 0; i < patch.length; i += 1400) applier.write(patch.subarray(i, i + 1400));
          applier.finish();
        } catch (e) {
          const code = String(e && e.code);
          const r = new Uint8Array(code.length);
          for (let i = 0; i < code.length; i++) r[i] = code.charCodeAt(i);
          return r.buffer;
        }
        return out.slice(0, n).buffer;
      })()`;
    const worker = new XsWorker({ name: "delta" });
    try {
      const good = await worker.evaluate(run(patch));
      expect(Buffer.compare(Buffer.from(good.reply), readFileSync(join(V, "app-1.1.0.bin")))).toBe(0);
      const cut = await worker.evaluate(run(patch.subarray(0, 700)));
      expect(Buffer.from(cut.reply).toString()).toBe("DELTA_TRUNCATED");
    } finally {
      await worker.terminate();
    }
  });
});
