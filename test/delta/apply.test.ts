import { describe, expect, it } from "vitest";
import { PatchApplier } from "../../modules/delta/patch";
import { HeatshrinkDecoder } from "../../modules/delta/heatshrink";
import { createPatch, packSize } from "../../backend/delta/create";
import { heatshrinkEncode } from "../../backend/delta/heatshrink-encoder";
import { buildImage } from "../../host-sim/chip/image-builder";
import { concatBytes, toHex } from "../../modules/bytes";
import { codeOf } from "../codes";
import { applyPatch, edited, firmwareLike, memoryBase, rng } from "./helpers";

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && toHex(a) === toHex(b);

describe("delta: create and apply round trips", () => {
  const a = firmwareLike(60_000, 11);
  const b = edited(a, 12);

  for (const compression of ["none", "heatshrink"] as const) {
    it(`${compression}: the exact target, whatever the chunking of the patch`, () => {
      const { patch } = createPatch(a, b, { compression });
      for (const step of [1, 2, 7, 255, 4096, [1, 300, 3, 5000]]) {
        const { output, applier } = applyPatch(a, patch, { step });
        expect(same(output, b)).toBe(true);
        expect(applier.outputSize).toBe(b.length);
        expect(applier.compression).toBe(compression === "none" ? 0 : 4);
        expect(applier.patchBytes).toBe(patch.length);
      }
    });

    it(`${compression}: edge pairs (empty target, empty base, identical, unrelated)`, () => {
      const r = rng(5);
      const noise = new Uint8Array(3000).map(() => r() & 0xff);
      const pairs: [Uint8Array, Uint8Array][] = [
        [a, new Uint8Array(0)],
        [new Uint8Array(0), b.subarray(0, 5000)],
        [a, a],
        [noise, b.subarray(0, 4000)],
        [Uint8Array.of(1), Uint8Array.of(2)],
      ];
      for (const [from, to] of pairs) {
        const { patch } = createPatch(from, to, { compression });
        expect(same(applyPatch(from, patch, { step: 3 }).output, to)).toBe(true);
      }
    });
  }

  it("heatshrink makes a one-edit patch a small share of the image", () => {
    const { patch } = createPatch(a, b, { compression: "heatshrink" });
    expect(patch.length).toBeLessThan(a.length * 0.05);
  });

  it("hands the sink whole scratch buffers (one flash block) and reads the base in 512-byte pieces", () => {
    const { patch } = createPatch(a, b);
    const scratch = new Uint8Array(4096);
    const sizes: number[] = [];
    let sameBuffer = true;
    const base = memoryBase(a);
    const parts: Uint8Array[] = [];
    const applier = new PatchApplier({ base, maxOutput: b.length, scratch, sink: { write: (d) => { parts.push(d.slice()); sizes.push(d.length); if (d.length === 4096 && d !== scratch) sameBuffer = false; } } });
    for (let i = 0; i < patch.length; i += 333) applier.write(patch.subarray(i, i + 333));
    expect(applier.finish()).toBe(b.length);
    expect(same(concatBytes(parts), b)).toBe(true);
    expect(sameBuffer).toBe(true);
    expect(sizes.slice(0, -1).every((n) => n === 4096)).toBe(true);
    expect(sizes.reduce((s, n) => s + n, 0)).toBe(b.length);
    expect(base.reads).toBeLessThan(a.length / 512 + 20);
  });
});

describe("delta: esp_delta_ota's 64-byte header", () => {
  const from = buildImage({ version: "1.0.0", size: 40_000 });
  const to = buildImage({ version: "1.1.0", size: 41_000 });

  it("is written with the base image's appended SHA-256 and read back", () => {
    const info = createPatch(from, to, { espHeader: true });
    expect(toHex(info.patch.subarray(0, 4))).toBe("10decdfc");
    expect(toHex(info.baseDigest!)).toBe(toHex(from.subarray(from.length - 32)));
    expect(toHex(info.patch.subarray(36, 64))).toBe("00".repeat(28));
    for (const container of ["auto", "esp"] as const) {
      const { output, applier } = applyPatch(from, info.patch, { step: 5, container });
      expect(same(output, to)).toBe(true);
      expect(toHex(applier.baseDigest!)).toBe(toHex(info.baseDigest!));
    }
  });

  it("is required by container 'esp' and refused by container 'detools'", () => {
    const bare = createPatch(from, to).patch;
    const wrapped = createPatch(from, to, { espHeader: true }).patch;
    expect(codeOf(() => applyPatch(from, bare, { container: "esp" }))).toBe("DELTA_FORMAT");
    expect(codeOf(() => applyPatch(from, wrapped, { container: "detools" }))).toBe("DELTA_FORMAT");
    expect(applyPatch(from, bare).applier.baseDigest).toBeUndefined();
  });

  it("refuses a wrong magic", () => {
    const wrapped = createPatch(from, to, { espHeader: true }).patch.slice();
    wrapped[3] = 0xfd;
    expect(codeOf(() => applyPatch(from, wrapped))).toBe("DELTA_FORMAT");
  });
});

describe("delta: heatshrink", () => {
  it("decodes what the encoder writes, for several window/lookahead pairs and any chunking", () => {
    const r = rng(9);
    const text = concatBytes([firmwareLike(9000, 3), new Uint8Array(3000), new Uint8Array(500).map(() => r() & 0xff), Uint8Array.of(0, 0, 7, 0, 0, 0, 0, 9), new Uint8Array(700)]);
    let zeroRuns = 0;
    for (const [w, l] of [[8, 7], [4, 3], [10, 4], [12, 8]] as const) {
      const enc = heatshrinkEncode(text, { windowBits: w, lookaheadBits: l });
      const dec = new HeatshrinkDecoder(w, l);
      const out = new Uint8Array(text.length + 16).fill(0xee);
      let o = 0;
      for (let at = 0; at < enc.length; ) {
        const end = Math.min(enc.length, at + 1 + (r() % 40));
        while (at < end) {
          const n = dec.decode(enc, at, end, out, o, Math.min(out.length, o + 1 + (r() % 300)));
          at += dec.consumed;
          if (n === 0 && dec.zeros > 0) {
            out.fill(0, o, o + dec.zeros);
            o += dec.zeros;
            zeroRuns++;
            continue;
          }
          o += n;
          if (n === 0 && dec.consumed === 0) break;
        }
      }
      while (dec.pending) {
        const n = dec.decode(enc, enc.length, enc.length, out, o, out.length);
        if (n === 0) out.fill(0, o, o + dec.zeros);
        o += n || dec.zeros;
      }
      expect(same(out.subarray(0, o), text)).toBe(true);
    }
    expect(zeroRuns).toBeGreaterThan(10);
  });

  it("reads the zeroed backlog at the start of a stream, as heatshrink's decoder does", () => {
    // tag 0, index 255 (256 back), count 3 (4 bytes): four zeros from the initial window
    const stream = Uint8Array.of(0b0_1111111, 0b1_0000011, 0);
    const dec = new HeatshrinkDecoder(8, 7);
    const out = new Uint8Array(8).fill(9);
    // a run of zeros is reported, not written
    expect(dec.decode(stream, 0, 2, out, 0, 8)).toBe(0);
    expect(dec.zeros).toBe(4);
    expect([...out]).toEqual([9, 9, 9, 9, 9, 9, 9, 9]);
    // then a literal 0x41 and a back-reference to it: written
    const more = Uint8Array.of(0b1_0100000, 0b1_0_000000, 0b00_000000, 0b1_0000000);
    const d2 = new HeatshrinkDecoder(8, 7);
    expect(d2.decode(more, 0, 4, out, 0, 8)).toBe(3);
    expect([...out.subarray(0, 3)]).toEqual([0x41, 0x41, 0x41]);
  });

  it("refuses parameters outside what the device allocates", () => {
    expect(codeOf(() => new HeatshrinkDecoder(13, 7))).toBe("DELTA_COMPRESSION");
    expect(codeOf(() => new HeatshrinkDecoder(8, 8))).toBe("DELTA_COMPRESSION");
    expect(codeOf(() => HeatshrinkDecoder.fromHeader(0xf0))).toBe("DELTA_COMPRESSION");
  });
});

describe("delta: bad patches end in a named code", () => {
  const a = firmwareLike(20_000, 21);
  const b = edited(a, 22);
  const hs = createPatch(a, b, { compression: "heatshrink" }).patch;
  const none = createPatch(a, b, { compression: "none" }).patch;

  it("a patch cut anywhere is DELTA_TRUNCATED at finish, after nothing worse on the way", () => {
    for (const patch of [hs, none]) {
      for (let cut = 0; cut < patch.length; cut += cut < 40 ? 1 : 97) {
        expect(codeOf(() => applyPatch(a, patch.subarray(0, cut), { step: 13 }))).toBe("DELTA_TRUNCATED");
      }
    }
  });

  it("a heatshrink stream that decodes past the patch's end is DELTA_COMPRESSION; trailing bytes of a none patch DELTA_FORMAT", () => {
    expect(codeOf(() => applyPatch(a, concatBytes([hs, Uint8Array.of(0x80, 0x40)])))).toBe("DELTA_COMPRESSION");
    expect(codeOf(() => applyPatch(a, concatBytes([hs, Uint8Array.of(0)])))).toBe("DELTA_COMPRESSION");
    expect(codeOf(() => applyPatch(a, concatBytes([none, Uint8Array.of(0)])))).toBe("DELTA_FORMAT");
  });

  it("output beyond maxOutput fails at the header, before any byte reaches the sink", () => {
    let got = 0;
    const applier = new PatchApplier({ base: memoryBase(a), maxOutput: b.length - 1, sink: { write: (d) => (got += d.length) } });
    expect(codeOf(() => applier.write(hs))).toBe("DELTA_OVERRUN");
    expect(got).toBe(0);
    expect(applier.written).toBe(0);
  });

  it("chunks past the header's output size are DELTA_OVERRUN", () => {
    // the same body with a to_size one byte short
    const header = concatBytes([Uint8Array.of(0), packSize(b.length)]);
    const short = concatBytes([Uint8Array.of(0), packSize(b.length - 1), none.subarray(header.length)]);
    expect(codeOf(() => applyPatch(a, short))).toBe("DELTA_OVERRUN");
  });

  it("a diff outside the base is DELTA_BASE (a patch for a larger base)", () => {
    expect(codeOf(() => applyPatch(a.subarray(0, 10_000), hs))).toBe("DELTA_BASE");
    const failing = { size: a.length, read() { throw new RangeError("flash gone"); } };
    expect(codeOf(() => applyPatch(a, hs, { base: failing }))).toBe("DELTA_BASE");
  });

  it("header faults: patch type, compression, size overflow, data-format patches", () => {
    const body = none.subarray(1);
    expect(codeOf(() => applyPatch(a, concatBytes([Uint8Array.of(0x10), body]), { container: "detools" }))).toBe("DELTA_FORMAT");
    expect(codeOf(() => applyPatch(a, concatBytes([Uint8Array.of(0x20), body])))).toBe("DELTA_FORMAT");
    expect(codeOf(() => applyPatch(a, concatBytes([Uint8Array.of(0x01), body])))).toBe("DELTA_COMPRESSION");
    expect(codeOf(() => applyPatch(a, concatBytes([Uint8Array.of(0x05), body])))).toBe("DELTA_COMPRESSION");
    expect(codeOf(() => applyPatch(a, Uint8Array.of(0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)))).toBe("DELTA_FORMAT");
    expect(codeOf(() => applyPatch(a, Uint8Array.of(0x00, 0x40 | 5)))).toBe("DELTA_FORMAT");
    expect(codeOf(() => applyPatch(a, concatBytes([Uint8Array.of(0x00), packSize(10), packSize(3), new Uint8Array(3)])))).toBe("DELTA_FORMAT");
  });

  it("every single-byte corruption either fails with a DELTA code or yields other bytes; never a crash or overrun", () => {
    const r = rng(33);
    let failed = 0;
    for (let k = 0; k < 300; k++) {
      const bad = hs.slice();
      const at = r() % bad.length;
      bad[at] ^= 1 + (r() % 255);
      let written = 0;
      const applier = new PatchApplier({ base: memoryBase(a), maxOutput: b.length + 100, sink: { write: (d) => (written += d.length) } });
      const code = codeOf(() => {
        applier.write(bad);
        applier.finish();
      });
      expect(written).toBeLessThanOrEqual(b.length + 100);
      if (code !== "no error") {
        expect(code).toMatch(/^DELTA_/);
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(100);
  });

  it("is sticky: after a failure every call throws the same code; write after finish throws", () => {
    const applier = new PatchApplier({ base: memoryBase(a), maxOutput: 10, sink: { write() {} } });
    expect(codeOf(() => applier.write(hs))).toBe("DELTA_OVERRUN");
    expect(codeOf(() => applier.write(hs))).toBe("DELTA_OVERRUN");
    expect(codeOf(() => applier.finish())).toBe("DELTA_OVERRUN");
    const ok = new PatchApplier({ base: memoryBase(a), maxOutput: b.length, sink: { write() {} } });
    ok.write(hs);
    ok.finish();
    expect(() => ok.write(hs)).toThrow(Error);
  });

  it("bad arguments are TypeError/RangeError", () => {
    expect(() => new PatchApplier({ base: memoryBase(a), maxOutput: -1, sink: { write() {} } })).toThrow(RangeError);
    expect(() => new PatchApplier({ base: memoryBase(a), maxOutput: 1, sink: { write() {} }, scratch: new Uint8Array(4) })).toThrow(RangeError);
    expect(() => new PatchApplier(undefined as never)).toThrow(TypeError);
  });
});
