import { describe, it, expect } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimFlash, PowerCut } from "../../host-sim/chip/flash";
import { codeOf } from "../codes";

const readAt = (f: SimFlash, o: number, n: number) => { const b = new Uint8Array(n); f.read(o, b); return b; };

describe("NOR semantics", () => {
  it("reads 0xFF when erased; a write ANDs with what is there", () => {
    const f = new SimFlash({ size: 64 * 1024 });
    expect([...readAt(f, 100, 4)]).toEqual([0xff, 0xff, 0xff, 0xff]);
    f.write(100, Uint8Array.of(0xf0, 0x0f, 0xaa, 0x55));
    f.write(100, Uint8Array.of(0x3c, 0x3c, 0xff, 0x00));
    expect([...readAt(f, 100, 4)]).toEqual([0x30, 0x0c, 0xaa, 0x00]);
    expect(f.stats().overwrites).toBe(1); // the second write asked for 1s where 0s were
  });
  it("property: for random old/new bytes the result is always old & new", () => {
    const f = new SimFlash({ size: 8192 });
    let s = 12345;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const a = Uint8Array.from({ length: 6000 }, rnd), b = Uint8Array.from({ length: 6000 }, rnd);
    f.write(1000, a); f.write(1000, b);
    const got = readAt(f, 1000, 6000);
    expect(got.every((x, i) => x === (a[i]! & b[i]!))).toBe(true);
  });
  it("erase resets a whole 4 KB sector to 0xFF and only that one", () => {
    const f = new SimFlash({ size: 16384 });
    f.write(4090, new Uint8Array(12)); // spans sectors 0 and 1
    f.erase(1);
    expect([...readAt(f, 4090, 12)]).toEqual([0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    f.write(4096, Uint8Array.of(1)); // a write after the erase programs again
    expect(readAt(f, 4096, 1)[0]).toBe(1);
  });
  it("out-of-bounds reads, writes and erases throw FLASH_OUT_OF_BOUNDS", () => {
    const f = new SimFlash({ size: 8192 });
    expect(codeOf(() => f.read(8190, new Uint8Array(4)))).toBe("FLASH_OUT_OF_BOUNDS");
    expect(codeOf(() => f.write(-1, new Uint8Array(1)))).toBe("FLASH_OUT_OF_BOUNDS");
    expect(codeOf(() => f.write(8192, new Uint8Array(1)))).toBe("FLASH_OUT_OF_BOUNDS");
    expect(codeOf(() => f.erase(2))).toBe("FLASH_OUT_OF_BOUNDS");
    expect(codeOf(() => f.erase(0.5))).toBe("FLASH_OUT_OF_BOUNDS");
    expect(codeOf(() => f.eraseRange(100, 4096))).toBe("FLASH_MISALIGNED");
    expect(() => new SimFlash({ size: 1000 })).toThrow(RangeError);
  });
  it("strict mode refuses a write over unerased bits", () => {
    const f = new SimFlash({ size: 8192, strict: true });
    f.write(0, Uint8Array.of(0x0f));
    f.write(0, Uint8Array.of(0x0e)); // clearing more bits is fine
    expect(codeOf(() => f.write(0, Uint8Array.of(0xf0)))).toBe("FLASH_NOT_ERASED");
  });
  it("counts writes, erases, bytes and wear per sector", () => {
    const f = new SimFlash({ size: 16384 });
    f.write(0, new Uint8Array(100)); f.erase(0); f.erase(0); f.erase(3); f.read(0, new Uint8Array(10));
    expect(f.stats()).toMatchObject({ ops: 4, writes: 1, erases: 3, bytesWritten: 100, reads: 1, bytesRead: 10, maxSectorErases: 2 });
    expect([...f.sectorErases]).toEqual([2, 0, 0, 1]);
  });
  it("is sparse: erased sectors cost nothing", () => {
    const f = new SimFlash();
    expect(f.usedSectors).toBe(0);
    f.write(0x10000, new Uint8Array(10000));
    expect(f.usedSectors).toBe(3);
    f.erase(0x10000 / 4096);
    expect(f.usedSectors).toBe(2);
  });
});

describe("power cuts", () => {
  it("tears the n-th op from now: a write keeps exactly `keep` bytes, then everything throws until powerOn", () => {
    const f = new SimFlash({ size: 8192 });
    f.cutPowerAt(2, 3);
    f.write(0, Uint8Array.of(1)); // op 1 completes
    expect(() => f.write(10, Uint8Array.of(0, 0, 0, 0, 0, 0))).toThrow(PowerCut);
    expect(f.powered).toBe(false);
    expect(codeOf(() => f.read(0, new Uint8Array(1)))).toBe("FLASH_POWER_CUT");
    expect(codeOf(() => f.erase(0))).toBe("FLASH_POWER_CUT");
    expect(codeOf(() => f.write(0, new Uint8Array(1)))).toBe("FLASH_POWER_CUT");
    f.powerOn();
    expect([...readAt(f, 10, 6)]).toEqual([0, 0, 0, 0xff, 0xff, 0xff]);
    expect(readAt(f, 0, 1)[0]).toBe(1);
    expect(f.stats().ops).toBe(2);
  });
  it("a torn erase leaves the sector partly erased", () => {
    const f = new SimFlash({ size: 8192 });
    f.write(0, new Uint8Array(4096));
    f.cutPowerAt(1, 1000);
    expect(() => f.erase(0)).toThrow(PowerCut);
    f.powerOn();
    const s = readAt(f, 0, 4096);
    expect(s.subarray(0, 1000).every((b) => b === 0xff)).toBe(true);
    expect(s.subarray(1000).every((b) => b === 0)).toBe(true);
  });
  it("random tears are prefixes (old & new), at most one byte partly programmed, and reproducible per seed", () => {
    const run = (seed: number) => {
      const f = new SimFlash({ size: 8192, seed });
      f.cutPowerAt(1);
      try { f.write(0, new Uint8Array(2000)); } catch (e) { expect(e).toBeInstanceOf(PowerCut); }
      f.powerOn();
      return readAt(f, 0, 2000);
    };
    const cuts = new Set<number>();
    for (let seed = 1; seed <= 20; seed++) {
      const a = run(seed);
      expect([...a]).toEqual([...run(seed)]);
      const k = a.findIndex((b) => b !== 0);
      const end = k < 0 ? 2000 : k;
      expect(a.subarray(end + 1).every((b) => b === 0xff)).toBe(true);
      cuts.add(end);
    }
    expect(cuts.size).toBeGreaterThan(10);
  });
  it("powerOff between ops tears nothing; cancelPowerCut disarms", () => {
    const f = new SimFlash({ size: 8192 });
    f.cutPowerAt(1); f.cancelPowerCut();
    f.write(0, Uint8Array.of(7));
    f.powerOff();
    expect(() => f.read(0, new Uint8Array(1))).toThrow(PowerCut);
    f.powerOn();
    expect(readAt(f, 0, 1)[0]).toBe(7);
    expect(f.powerCycles).toBe(1);
    expect(() => f.cutPowerAt(0)).toThrow(RangeError);
  });
});

describe("raw image files", () => {
  it("save/load keeps every byte at the chip's offsets", () => {
    const dir = mkdtempSync(join(tmpdir(), "xsota-flash-"));
    const f = new SimFlash({ size: 64 * 1024 });
    f.write(0x8000, Uint8Array.of(0xaa, 0x50));
    f.write(0xfffe, Uint8Array.of(1, 2));
    f.save(join(dir, "f.bin"));
    const raw = readFileSync(join(dir, "f.bin"));
    expect(raw.length).toBe(65536);
    expect([raw[0x8000], raw[0x8001], raw[0x8002], raw[0xfffe], raw[0xffff], raw[0]]).toEqual([0xaa, 0x50, 0xff, 1, 2, 0xff]);
    const g = SimFlash.load(join(dir, "f.bin"));
    expect(g.size).toBe(65536);
    expect(g.usedSectors).toBe(2);
    expect(Buffer.from(g.toBytes()).equals(raw)).toBe(true);
    writeFileSync(join(dir, "odd.bin"), new Uint8Array(5000));
    expect(() => SimFlash.load(join(dir, "odd.bin"))).toThrow(RangeError);
    expect(codeOf(() => SimFlash.load(join(dir, "missing.bin")))).toBe("FILE_NOT_FOUND");
  });
  it("clone is independent", () => {
    const f = new SimFlash({ size: 8192 });
    f.write(0, Uint8Array.of(1));
    const g = f.clone();
    g.erase(0);
    expect(readAt(f, 0, 1)[0]).toBe(1);
    expect(readAt(g, 0, 1)[0]).toBe(0xff);
    const h = f.clone();
    f.write(0, Uint8Array.of(0)); // the original writes after cloning: the clone keeps the old bytes
    expect([readAt(f, 0, 1)[0], readAt(h, 0, 1)[0]]).toEqual([0, 1]);
    h.cutPowerAt(1, 0);
    expect(() => h.erase(0)).toThrow(PowerCut); // a torn erase on a shared sector stays private too
    expect(readAt(f, 0, 1)[0]).toBe(0);
  });
  it("an erased sector's buffer is reused, never while another flash still holds it", () => {
    const f = new SimFlash({ size: 16 * 4096 });
    f.write(0, new Uint8Array(4096).fill(0x11));
    f.write(4096, new Uint8Array(4096).fill(0x22));
    const g = f.clone();
    g.erase(0); // shared with f: g drops its reference, f keeps the bytes
    f.erase(1); // f's own: its buffer goes to the spare list
    // Other flashes now program many sectors, from the spare list first.
    const others = [new SimFlash({ size: 16 * 4096 }), new SimFlash({ size: 16 * 4096 })];
    for (const o of others) for (let i = 0; i < 16; i++) o.write(i * 4096, new Uint8Array(4096).fill(0x40 + i));
    expect([...new Set(readAt(f, 0, 4096))]).toEqual([0x11]);
    expect([...new Set(readAt(f, 4096, 4096))]).toEqual([0xff]);
    expect([...new Set(readAt(g, 4096, 4096))]).toEqual([0x22]);
    expect([...new Set(readAt(g, 0, 4096))]).toEqual([0xff]);
    for (const o of others) for (let i = 0; i < 16; i++) expect([...new Set(readAt(o, i * 4096, 4096))]).toEqual([0x40 + i]);
    // A partial write into a reused buffer reads erased (0xFF) around it.
    const p = new SimFlash({ size: 8192 });
    p.write(10, Uint8Array.of(0x00));
    expect(readAt(p, 8, 4)).toEqual(Uint8Array.of(0xff, 0xff, 0x00, 0xff));
  });
  it("dispose gives a chip's own buffers to the next chip, never those a clone still reads, and ends the chip", () => {
    const f = new SimFlash({ size: 16 * 4096 });
    for (let i = 0; i < 4; i++) f.write(i * 4096, new Uint8Array(4096).fill(0x10 + i));
    const g = f.clone(); // shares sectors 0..3
    f.write(8 * 4096, new Uint8Array(4096).fill(0x77)); // f's own
    f.dispose();
    for (const [what, op] of [["read", () => readAt(f, 0, 1)], ["write", () => f.write(0, Uint8Array.of(0))], ["erase", () => f.erase(0)], ["powerOn", () => f.powerOn()], ["toBytes", () => f.toBytes()], ["clone", () => f.clone()]] as const) {
      expect(op, what).toThrow(/after dispose\(\)/);
    }
    // New chips program from the pool: their bytes are theirs, and the clone's are untouched.
    const others = [new SimFlash({ size: 16 * 4096 }), new SimFlash({ size: 16 * 4096 })];
    for (const o of others) for (let i = 0; i < 16; i++) o.write(i * 4096, new Uint8Array(4096).fill(0x80 + i));
    for (let i = 0; i < 4; i++) expect([...new Set(readAt(g, i * 4096, 4096))]).toEqual([0x10 + i]);
    for (const o of others) for (let i = 0; i < 16; i++) expect([...new Set(readAt(o, i * 4096, 4096))]).toEqual([0x80 + i]);
  });
});
