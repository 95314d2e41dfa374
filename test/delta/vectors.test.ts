/*
 * Interop with detools itself. The committed vectors (vectors/README.md says how they were
 * made) run always; the live check runs when DETOOLS names a detools command line (an
 * executable taking detools' own arguments, e.g. a wrapper around `python3 -m detools`).
 */
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPatch } from "../../backend/delta/create";
import { toHex } from "../../modules/bytes";
import { applyPatch } from "./helpers";
import { deltaPairs } from "../../bench/delta";
import { buildImage } from "../../host-sim/chip/image-builder";

const dir = join(__dirname, "vectors");
const read = (name: string) => new Uint8Array(readFileSync(join(dir, name)));
const base = read("app-1.0.0.bin");
const targets = ["1.0.1", "1.1.0"] as const;
const compressions = ["heatshrink", "none"] as const;
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && toHex(a) === toHex(b);

describe("delta vectors made by detools create_patch -t sequential", () => {
  for (const to of targets) {
    for (const c of compressions) {
      it(`app 1.0.0 -> ${to}, ${c}: our applier gives the exact target`, () => {
        const patch = read(`detools-1.0.0-${to}-${c}.patch`);
        const target = read(`app-${to}.bin`);
        for (const step of [1, 64, 1400, patch.length]) {
          const { output, applier } = applyPatch(base, patch, { step, maxOutput: 1536 * 1024 });
          expect(same(output, target)).toBe(true);
          expect(applier.compression).toBe(c === "none" ? 0 : 4);
        }
      });
    }
    it(`app 1.0.0 -> ${to}: xsota's uncompressed patch is byte for byte detools' (the same bsdiff scan)`, () => {
      expect(toHex(createPatch(base, read(`app-${to}.bin`), { compression: "none" }).patch)).toBe(toHex(read(`detools-1.0.0-${to}-none.patch`)));
    });
  }

  it("detools' patches between 1.7 MB xsnap-worker builds (bench/delta-images) rebuild the exact images", () => {
    const pairs = deltaPairs();
    expect(pairs.filter((p) => p.to.length > 1_000_000).map((p) => p.change)).toEqual(["version string", "one module"]);
  });

  it("a detools patch applied to the wrong base yields other bytes, which the image hash then refuses", () => {
    const patch = read("detools-1.0.0-1.1.0-heatshrink.patch");
    const wrong = read("app-1.0.1.bin");
    wrong[5000] ^= 0xff;
    expect(same(applyPatch(wrong, patch).output, read("app-1.1.0.bin"))).toBe(false);
  });
});

const DETOOLS = process.env.DETOOLS;
describe.skipIf(!DETOOLS)(`live detools (${DETOOLS ? `DETOOLS=${DETOOLS}` : "skipped: set DETOOLS to a detools command line to run"})`, () => {
  const run = (...args: string[]) => execFileSync(DETOOLS!, args, { stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
  for (const to of targets) {
    for (const c of compressions) {
      it(`detools apply_patch reproduces app ${to} from xsota's ${c} patch, and we apply detools' fresh one`, () => {
        const tmp = mkdtempSync(join(tmpdir(), "xsota-detools-"));
        try {
          const target = read(`app-${to}.bin`);
          writeFileSync(join(tmp, "patch"), createPatch(base, target, { compression: c }).patch);
          run("apply_patch", join(dir, "app-1.0.0.bin"), join(tmp, "patch"), join(tmp, "out"));
          expect(same(new Uint8Array(readFileSync(join(tmp, "out"))), target)).toBe(true);
          run("create_patch", "-t", "sequential", "-c", c, join(dir, "app-1.0.0.bin"), join(dir, `app-${to}.bin`), join(tmp, "theirs"));
          expect(same(applyPatch(base, new Uint8Array(readFileSync(join(tmp, "theirs")))).output, target)).toBe(true);
        } finally {
          rmSync(tmp, { recursive: true, force: true });
        }
      });
    }
  }

  it("an --esp-header patch, its 64 bytes stripped as esp_delta_ota_patch_gen.py's verify_patch does, applies with detools", () => {
    const tmp = mkdtempSync(join(tmpdir(), "xsota-detools-"));
    try {
      const from = buildImage({ version: "1.0.0", size: 48_000 });
      const to = buildImage({ version: "1.0.1", size: 48_000 });
      const info = createPatch(from, to, { espHeader: true });
      writeFileSync(join(tmp, "from"), from);
      writeFileSync(join(tmp, "patch"), info.patch.subarray(64));
      run("apply_patch", join(tmp, "from"), join(tmp, "patch"), join(tmp, "out"));
      expect(same(new Uint8Array(readFileSync(join(tmp, "out"))), to)).toBe(true);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
