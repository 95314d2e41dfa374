import { describe, it, expect } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimChip } from "../../host-sim/chip/chip";
import { PowerCut } from "../../host-sim/chip/flash";
import type { StoreValue } from "../../modules/ports";
import { codeOf } from "../codes";

describe("Moddable Preference limits", () => {
  const s = SimChip.create({}).store();
  it("domain and key are 1..15 bytes", () => {
    s.set("a".repeat(15), "b".repeat(15), 1);
    expect(s.get("a".repeat(15), "b".repeat(15))).toBe(1);
    expect(codeOf(() => s.set("a".repeat(16), "k", 1))).toBe("STORE_KEY");
    expect(codeOf(() => s.set("d", "k".repeat(16), 1))).toBe("STORE_KEY");
    expect(codeOf(() => s.set("", "k", 1))).toBe("STORE_KEY");
    expect(codeOf(() => s.get("d", ""))).toBe("STORE_KEY");
    expect(codeOf(() => s.set("d", "ééééééééé", 1))).toBe("STORE_KEY"); // 18 UTF-8 bytes
  });
  it("integers only: floats, NaN and values outside int32 throw STORE_VALUE", () => {
    for (const v of [1.5, NaN, Infinity, 2 ** 31, -(2 ** 31) - 1]) expect(codeOf(() => s.set("d", "n", v))).toBe("STORE_VALUE");
    s.set("d", "n", -(2 ** 31));
    expect(s.get("d", "n")).toBe(-(2 ** 31));
    s.set("d", "n", 2 ** 31 - 1);
    expect(s.get("d", "n")).toBe(2 ** 31 - 1);
  });
  it("values up to 4000 bytes", () => {
    s.set("d", "big", new Uint8Array(4000).fill(7).buffer);
    expect(new Uint8Array(s.get("d", "big") as ArrayBuffer)[3999]).toBe(7);
    expect(codeOf(() => s.set("d", "big", new ArrayBuffer(4001)))).toBe("STORE_VALUE");
    expect(codeOf(() => s.set("d", "str", "é".repeat(2001)))).toBe("STORE_VALUE");
    expect(codeOf(() => s.set("d", "obj", {} as unknown as StoreValue))).toBe("STORE_VALUE");
  });
  it("types round-trip; returned buffers are copies", () => {
    s.set("t", "b", true); s.set("t", "s", "héllo ✓"); s.set("t", "i", 0);
    const buf = Uint8Array.of(1, 2, 3).buffer;
    s.set("t", "x", buf);
    new Uint8Array(buf)[0] = 9;
    const got = s.get("t", "x") as ArrayBuffer;
    new Uint8Array(got)[1] = 9;
    expect([s.get("t", "b"), s.get("t", "s"), s.get("t", "i"), [...new Uint8Array(s.get("t", "x") as ArrayBuffer)]]).toEqual([true, "héllo ✓", 0, [1, 2, 3]]);
    expect(s.keys("t").sort()).toEqual(["b", "i", "s", "x"]);
    s.delete("t", "s"); s.delete("t", "missing");
    expect(s.get("t", "s")).toBeUndefined();
    expect(s.keys("t").sort()).toEqual(["b", "i", "x"]);
  });
});

describe("persistence in the nvs partition", () => {
  it("lives in flash: a chip loaded from the saved file sees the values; the format is ours and documented", () => {
    const chip = SimChip.create({});
    chip.store().set("ota", "seq", 42);
    chip.store().set("ota", "url", "https://x/y");
    const dir = mkdtempSync(join(tmpdir(), "xsota-nvs-"));
    chip.save(join(dir, "f.bin"));
    const again = SimChip.load(join(dir, "f.bin"));
    expect([again.store().get("ota", "seq"), again.store().get("ota", "url")]).toEqual([42, "https://x/y"]);
    const hdr = new Uint8Array(32);
    again.partition("nvs").read(0, hdr);
    expect([...hdr.subarray(0, 8)]).toEqual([0x58, 0x53, 0x4e, 0x56, 1, 0, 0, 0]); // "XSNV", generation 1
    const rec = new Uint8Array(12);
    again.partition("nvs").read(32, rec);
    expect([...rec.subarray(0, 8)]).toEqual([1, 0, 3, 3, 4, 0, 0, 0]); // set, int32, "ota", "seq", 4 bytes
  });
  it("setting the same value again writes nothing", () => {
    const chip = SimChip.create({});
    chip.store().set("d", "k", "v");
    const ops = chip.flash.ops;
    chip.store().set("d", "k", "v");
    expect(chip.flash.ops).toBe(ops);
  });
  it("compaction keeps every live value through thousands of sets and spreads the wear", () => {
    const chip = SimChip.create({});
    const s = chip.store();
    const model = new Map<string, string>();
    for (let i = 0; i < 3000; i++) {
      const k = `k${(i * 7) % 23}`;
      const v = `${i}:`.padEnd(10 + ((i * 31) % 200), "x");
      s.set("d", k, v);
      model.set(k, v);
    }
    for (const [k, v] of model) expect(s.get("d", k)).toBe(v);
    const u = s.usage();
    expect(u.keys).toBe(23);
    expect(u.compactions).toBeGreaterThan(50);
    const nvs = chip.table.find("nvs")!;
    const erases = [...chip.flash.sectorErases.subarray(nvs.offset / 4096, (nvs.offset + nvs.size) / 4096)];
    expect(Math.max(...erases) - Math.min(...erases)).toBeLessThanOrEqual(2);
  });
  it("STORE_FULL when live data cannot fit; what was stored stays", () => {
    const s = SimChip.create({}).store();
    let stored = 0;
    const err = codeOf(() => {
      for (let i = 0; i < 10; i++) { s.set("d", `b${i}`, new Uint8Array(4000).fill(i).buffer); stored++; }
    });
    expect(err).toBe("STORE_FULL");
    expect(stored).toBeGreaterThanOrEqual(3);
    for (let i = 0; i < stored; i++) expect(new Uint8Array(s.get("d", `b${i}`) as ArrayBuffer)[0]).toBe(i);
    s.delete("d", "b0");
    s.set("d", "again", new ArrayBuffer(4000)); // room again after a delete
  });
});

describe("power cut at every flash operation", () => {
  type Step = [string, StoreValue | null];
  const steps: Step[] = [];
  // keys written once early stay live in the oldest sectors, so compactions must carry them
  for (let i = 0; i < 4; i++) steps.push([`stable${i}`, `s${i}`.padEnd(250, "s")]);
  for (let i = 0; i < 160; i++) steps.push([`k${i % 9}`, i % 17 === 5 ? null : i % 3 === 0 ? i : `v${i}`.padEnd(300 + (i % 5) * 100, "z")]);
  const apply = (m: Map<string, StoreValue>, [k, v]: Step) => { if (v === null) m.delete(k); else m.set(k, v); };
  const snapshot = (chip: SimChip) => {
    const s = chip.store();
    return new Map(s.keys("d").map((k) => [k, s.get("d", k)!] as const));
  };
  const models: Map<string, StoreValue>[] = [new Map()];
  for (const st of steps) { const m = new Map(models[models.length - 1]); apply(m, st); models.push(m); }

  const base = SimChip.create({ geometry: { nvsSize: 16 * 1024 } });
  const total = (() => {
    const c = base.clone();
    for (const [k, v] of steps) v === null ? c.store().delete("d", k) : c.store().set("d", k, v);
    expect(c.store().usage().compactions).toBeGreaterThan(10);
    return c.flash.ops;
  })();

  it(`every cut leaves either the old or the new value of the set in flight (${total} cut points), and the store keeps working`, () => {
    for (let n = 1; n <= total; n++) {
      const chip = base.clone(n);
      chip.flash.cutPowerAt(n);
      let done = 0;
      try {
        for (const [k, v] of steps) { v === null ? chip.store().delete("d", k) : chip.store().set("d", k, v); done++; }
      } catch (e) {
        expect(e).toBeInstanceOf(PowerCut);
      }
      chip.flash.powerOn();
      const got = snapshot(chip);
      const ok = [models[done]!, models[Math.min(done + 1, steps.length)]!].some((m) => m.size === got.size && [...m].every(([k, v]) => got.get(k) === v));
      if (!ok) throw new Error(`cut at op ${n} (step ${done}): store holds neither state`);
      chip.store().set("d", "after", n);
      expect(snapshot(chip).get("after")).toBe(n);
    }
  });

  it("a second cut during recovery is survived too", () => {
    for (let n = 1; n <= total; n += 3) {
      const chip = base.clone(n);
      chip.flash.cutPowerAt(n);
      let done = 0;
      try {
        for (const [k, v] of steps) { v === null ? chip.store().delete("d", k) : chip.store().set("d", k, v); done++; }
      } catch { /* cut */ }
      chip.flash.powerOn();
      chip.flash.cutPowerAt(1);
      try { chip.store().set("d", "x", 1); } catch (e) { expect(e).toBeInstanceOf(PowerCut); }
      chip.flash.powerOn();
      const got = snapshot(chip);
      got.delete("x");
      const ok = [models[done]!, models[Math.min(done + 1, steps.length)]!].some((m) => m.size === got.size && [...m].every(([k, v]) => got.get(k) === v));
      if (!ok) throw new Error(`double cut at op ${n}: store holds neither state`);
    }
  });
});
