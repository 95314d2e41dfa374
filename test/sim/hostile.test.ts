import { describe, it, expect } from "vitest";
import { validateImage, parseImageStart } from "../../modules/image";
import { OtaError } from "../../modules/errors";
import { nodeCrypto } from "../../backend/crypto";
import { buildImage } from "../../host-sim/chip/image-builder";
import { parsePartitionBinary, loadDefaultTable } from "../../host-sim/chip/partition-table";
import { SimChip } from "../../host-sim/chip/chip";
import { boot } from "../../host-sim/chip/bootloader";

let seed = 0x1234567;
const rnd = (n: number) => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; };
/** Only an OtaError (a named condition) may come out of a parser fed hostile bytes. */
function onlyOtaErrors(fn: () => unknown): string {
  try { fn(); return "ok"; } catch (e) {
    if (!(e instanceof OtaError)) throw e;
    return e.code;
  }
}

describe("hostile bytes", () => {
  it("validateImage and parseImageStart: random mutations of headers and random buffers give named errors only", () => {
    const good = buildImage({ version: "1.0.0", size: 8192 });
    const codes = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const b = good.slice();
      for (let k = 1 + rnd(4); k > 0; k--) b[rnd(i % 2 ? 64 : b.length)] = rnd(256);
      const limit = i % 7 === 0 ? rnd(b.length) : b.length;
      const read = (o: number, t: Uint8Array) => t.set(b.subarray(o, o + t.length));
      codes.add(onlyOtaErrors(() => validateImage(read, limit, nodeCrypto, new Uint8Array(1024))));
      onlyOtaErrors(() => parseImageStart(b.subarray(0, rnd(400))));
    }
    for (let i = 0; i < 300; i++) {
      const b = Uint8Array.from({ length: 64 + rnd(2000) }, () => rnd(256));
      if (i % 2) b[0] = 0xe9;
      codes.add(onlyOtaErrors(() => validateImage((o, t) => t.set(b.subarray(o, o + t.length)), b.length, nodeCrypto, new Uint8Array(1024))));
    }
    expect([...codes].sort()).toEqual(expect.arrayContaining(["IMAGE_CHECKSUM", "IMAGE_MAGIC", "IMAGE_SEGMENTS", "IMAGE_TRUNCATED", "ok"]));
  });
  it("parsePartitionBinary: mutated and random tables give PTABLE_BINARY or a table, never a crash", () => {
    const good = loadDefaultTable().toBinary();
    for (let i = 0; i < 2000; i++) {
      const b = i % 3 ? good.slice() : Uint8Array.from({ length: 0xc00 }, () => (rnd(4) ? 0xff : rnd(256)));
      for (let k = 1 + rnd(3); k > 0; k--) b[rnd(0xa0)] = rnd(256);
      const c = onlyOtaErrors(() => parsePartitionBinary(b));
      expect(["ok", "PTABLE_BINARY"]).toContain(c);
    }
  });
  it("a garbage nvs partition is mounted (garbage erased) and usable; garbage otadata never crashes the bootloader", () => {
    for (let i = 0; i < 60; i++) {
      const chip = SimChip.create({});
      const nvs = chip.partition("nvs");
      if (i % 2) chip.store().set("d", "k", "before");
      for (let s = 0; s < 5; s++) if (rnd(2)) {
        const off = s * 4096 + (rnd(2) ? 32 + rnd(200) : rnd(32));
        const junk = Uint8Array.from({ length: 1 + rnd(64) }, () => rnd(256));
        nvs.write(Math.min(off, 20 * 1024 - junk.length), junk);
      }
      const again = SimChip.fromFlash(chip.flash.clone());
      const v = again.store().get("d", "k");
      expect(v === undefined || v === "before").toBe(true);
      again.store().set("d", "k2", i);
      expect(again.store().get("d", "k2")).toBe(i);
      const ota = again.partition("otadata");
      ota.write(rnd(2) * 4096, Uint8Array.from({ length: 32 }, () => rnd(256)));
      const r = boot(again);
      expect(r.kind).toBe("bricked"); // no image anywhere: a result, not a throw
    }
  });
});
