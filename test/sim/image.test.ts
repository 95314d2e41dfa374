import { describe, it, expect } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { validateImage, parseImageStart, xorBytes, APP_DESC_OFFSET } from "../../modules/image";
import { nodeCrypto } from "../../backend/crypto";
import { buildImage, readBehavior, BEHAVIORS, MIN_IMAGE_SIZE } from "../../host-sim/chip/image-builder";
import { codeOf } from "../codes";

const reader = (b: Uint8Array) => (o: number, t: Uint8Array) => {
  if (o + t.length > b.length) throw new RangeError("read past end");
  t.set(b.subarray(o, o + t.length));
};
const validate = (b: Uint8Array, limit = b.length) => validateImage(reader(b), limit, nodeCrypto, new Uint8Array(4096));

/** A minimal image written by hand: header, one 256-byte segment holding esp_app_desc_t, checksum. */
function handImage(secureVersion: number): Uint8Array {
  const b = new Uint8Array(304);
  b.set([0xe9, 1, 2, 0x20, 0x20, 0x00, 0x40, 0x3f, 0xee, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  b.set([0x20, 0x00, 0x40, 0x3f, 0x00, 0x01, 0x00, 0x00], 24); // load 0x3F400020, len 256
  b.set([0x32, 0x54, 0xcd, 0xab, secureVersion, 0, 0, 0], 32); // magic, secure_version
  b.set([0x31, 0x2e, 0x30], 32 + 16); // "1.0"
  // XOR of the data: 32^54^CD^AB = 0, ^secureVersion ^ '1' ^ '.' ^ '0' (0x31^0x2E^0x30 = 0x2F), seed 0xEF
  b[303] = 0xef ^ secureVersion ^ 0x2f; // (288 + 1) rounded up to 16 = 304: checksum in the last byte
  return b;
}

describe("the image checksum's XOR", () => {
  it("equals a byte-by-byte XOR for every length, aligned or not, and every byte counts", () => {
    const data = new Uint8Array(4096 + 8);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const naive = (b: Uint8Array, n: number, acc: number) => {
      for (let i = 0; i < n; i++) acc ^= b[i]!;
      return acc;
    };
    for (const start of [0, 1, 2, 4]) {
      for (let len = 0; len <= 64; len += 4) {
        const view = data.subarray(start, start + len);
        expect(xorBytes(view, len, 0xef)).toBe(naive(view, len, 0xef));
      }
      const whole = data.subarray(start, start + 4096);
      expect(xorBytes(whole, 4096, 0x5a)).toBe(naive(whole, 4096, 0x5a));
    }
    // One flipped bit in any word of a 7-word (odd tail) buffer changes the result.
    const b = data.slice(0, 28);
    const good = xorBytes(b, 28, 0);
    for (let i = 0; i < 28; i++) {
      b[i] ^= 0x10;
      expect(xorBytes(b, 28, 0)).not.toBe(good);
      b[i] ^= 0x10;
    }
  });
});

describe("image format against hand-computed bytes", () => {
  it("accepts a hand-made image and reads its descriptor", () => {
    const info = validate(handImage(1));
    expect(info.length).toBe(304);
    expect(info.header.hashAppended).toBe(false);
    expect(info.appDesc.secureVersion).toBe(1);
    expect(info.appDesc.version).toBe("1.0");
    expect(handImage(1)[303]).toBe(0xc1);
  });
  it("the checksum byte is the last of the 16-byte block", () => {
    const b = handImage(1);
    b[303] ^= 1;
    expect(codeOf(() => validate(b))).toBe("IMAGE_CHECKSUM");
  });
  it("buildImage writes the header, descriptor and hash where ESP-IDF puts them", () => {
    const img = buildImage({ version: "2.1.3", secureVersion: 7, project: "demo", size: 8192 });
    expect(img.length).toBe(8192);
    expect([...img.subarray(0, 24)]).toEqual([0xe9, 3, 2, 0x20, 0x04, 0x00, 0x08, 0x40, 0xee, 0, 0, 0, 0, 0, 0, 0, 0, 0x8f, 0x01, 0, 0, 0, 0, 1]);
    // seg0 length: 8192 - 32 (hash) = 8160 padded; 8160 - 1 - (24 header + 3 x 8 + 64 + 256) = 7791, & ~3 = 7788 = 0x1E6C
    expect([...img.subarray(24, 32)]).toEqual([0x20, 0x00, 0x40, 0x3f, 0x6c, 0x1e, 0x00, 0x00]);
    expect([...img.subarray(0x20, 0x28)]).toEqual([0x32, 0x54, 0xcd, 0xab, 7, 0, 0, 0]);
    expect(new TextDecoder().decode(img.subarray(0x30, 0x35))).toBe("2.1.3");
    expect(img[0x35]).toBe(0);
    expect(new TextDecoder().decode(img.subarray(0x50, 0x54))).toBe("demo");
    const body = img.subarray(0, img.length - 32);
    expect(Buffer.from(img.subarray(img.length - 32)).equals(createHash("sha256").update(body).digest())).toBe(true);
    expect(body.length % 16).toBe(0);
  });
});

describe("validateImage", () => {
  const good = buildImage({ version: "1.0.0", size: 40 * 1024 });
  it("accepts a built image of any requested size", () => {
    for (const size of [MIN_IMAGE_SIZE, 4096, 65536, 100_003]) {
      const img = buildImage({ version: "1.0.0", size });
      expect(img.length).toBe((size + 15) & ~15);
      expect(validate(img).length).toBe(img.length);
    }
  });
  it("rejects each corrupted field with its own code", () => {
    const mutate = (f: (b: Uint8Array) => void) => { const b = good.slice(); f(b); return codeOf(() => validate(b)); };
    expect(mutate((b) => (b[0] = 0xe8))).toBe("IMAGE_MAGIC");
    expect(mutate((b) => (b[1] = 0))).toBe("IMAGE_SEGMENTS");
    expect(mutate((b) => (b[1] = 17))).toBe("IMAGE_SEGMENTS");
    expect(mutate((b) => (b[28] |= 1))).toBe("IMAGE_SEGMENTS"); // data_len not a multiple of 4
    expect(mutate((b) => b.set([0x10, 0, 0, 0], 28))).toBe("IMAGE_APP_DESC"); // segment 0 shorter than esp_app_desc_t
    expect(mutate((b) => b.set([0x00, 0x00, 0x01, 0x00], 28))).toBe("IMAGE_TRUNCATED"); // 64 KB segment in a 40 KB file
    expect(mutate((b) => b.set([0x00, 0x00, 0x00, 0x01], 28))).toBe("IMAGE_SEGMENTS"); // >= 16 MB (ESP_IMAGE_MAX_FLASH_ADDR_SIZE)
    expect(mutate((b) => (b[24] = 0x40))).toBe("IMAGE_SEGMENTS"); // DROM load address not congruent with the flash offset
    expect(mutate((b) => (b[0x20] ^= 1))).toBe("IMAGE_APP_DESC");
    expect(mutate((b) => (b[5000] ^= 0x80))).toBe("IMAGE_CHECKSUM");
    expect(mutate((b) => (b[good.length - 33] ^= 1))).toBe("IMAGE_CHECKSUM");
    expect(mutate((b) => (b[good.length - 1] ^= 1))).toBe("IMAGE_HASH");
    // two flips that cancel in the XOR are caught by the SHA-256
    expect(mutate((b) => { b[5000] ^= 4; b[5001] ^= 4; })).toBe("IMAGE_HASH");
    expect(mutate((b) => (b[23] = 0))).toBe("no error"); // without hash_appended the trailing 32 bytes are not looked at
  });
  it("rejects truncation at every length short of the whole image", () => {
    for (const len of [0, 10, 24, 31, 200, 288, good.length - 33, good.length - 32, good.length - 1]) {
      expect(codeOf(() => validate(good.subarray(0, len)))).toBe("IMAGE_TRUNCATED");
    }
    expect(codeOf(() => validate(good, good.length - 1))).toBe("IMAGE_TRUNCATED");
  });
  it("a limit larger than the image (a slot) is fine: the length comes from the headers", () => {
    const slot = new Uint8Array(good.length + 9000).fill(0xff);
    slot.set(good);
    expect(validate(slot).length).toBe(good.length);
  });
  it("refuses a scratch buffer too small to hold esp_app_desc_t", () => {
    expect(() => validateImage(reader(good), good.length, nodeCrypto, new Uint8Array(100))).toThrow(RangeError);
  });
  it("works with odd-sized and unaligned scratch buffers", () => {
    const scratch = new Uint8Array(1000 + 3).subarray(3);
    expect(validateImage(reader(good), good.length, nodeCrypto, scratch).length).toBe(good.length);
  });
  it("validates 1.5 MB streaming through the scratch buffer, reading each byte about once", () => {
    // Speed is measured in bench/, not here; this pins the streaming shape that makes it fast.
    const big = buildImage({ version: "9.9.9", size: 1536 * 1024 - 4096 });
    const read = reader(big);
    let calls = 0;
    let bytes = 0;
    const counting = (offset: number, target: Uint8Array) => { calls++; bytes += target.length; read(offset, target); };
    expect(validateImage(counting, big.length, nodeCrypto, new Uint8Array(16 * 1024)).length).toBe(big.length);
    expect(bytes).toBeLessThan(big.length * 1.05);
    expect(calls).toBeLessThan(big.length / (16 * 1024) + 64);
  });
});

describe("parseImageStart and the builder's options", () => {
  it("reads header and descriptor from the first bytes", () => {
    const img = buildImage({ version: "3.0.0-rc.1", secureVersion: 4, project: "sensor", chipId: 5 });
    const { header, appDesc } = parseImageStart(img.subarray(0, APP_DESC_OFFSET + 256));
    expect(header.chipId).toBe(5);
    expect(appDesc).toMatchObject({ version: "3.0.0-rc.1", secureVersion: 4, projectName: "sensor" });
    expect(codeOf(() => parseImageStart(img.subarray(0, 200)))).toBe("IMAGE_TRUNCATED");
    expect(codeOf(() => parseImageStart(new Uint8Array(300)))).toBe("IMAGE_MAGIC");
  });
  it("embeds the behaviour and reads it back; unknown markers are healthy", () => {
    for (const b of BEHAVIORS) expect(readBehavior(buildImage({ version: "1.0.0", behavior: b }))).toBe(b);
    expect(readBehavior(handImage(0))).toBe("healthy");
    // A regression tied to one board revision travels in the image too; a malformed one is refused.
    expect(readBehavior(buildImage({ version: "1.0.0", behavior: "fail-diagnostics@esp32-rev1" }))).toBe("fail-diagnostics@esp32-rev1");
    expect(() => buildImage({ version: "1.0.0", behavior: `fail-diagnostics@${"r".repeat(31)}` as "fail-diagnostics@x" })).toThrow(RangeError);
    expect(() => buildImage({ version: "1.0.0", behavior: "fail-diagnostics@rev 1" as "fail-diagnostics@x" })).toThrow(RangeError);
  });
  it("is deterministic per spec and differs between versions", () => {
    const a = buildImage({ version: "1.0.0" });
    expect(Buffer.from(a).equals(Buffer.from(buildImage({ version: "1.0.0" })))).toBe(true);
    const b = buildImage({ version: "1.0.1" });
    let same = 0;
    for (let i = 1024; i < 2048; i++) if (a[i] === b[i]) same++;
    expect(same).toBeLessThan(50);
  });
  it("refuses specs it cannot honour", () => {
    expect(() => buildImage({ version: "x".repeat(32) })).toThrow(RangeError);
    expect(() => buildImage({ version: "1", size: 100 })).toThrow(RangeError);
    expect(() => buildImage({ version: "1", behavior: "explode" as never })).toThrow(RangeError);
  });
  it("a --no-hash image validates without the SHA-256 and is 32 bytes shorter", () => {
    const img = buildImage({ version: "1.0.0", size: 4096, hashAppended: false });
    expect(img[23]).toBe(0);
    expect(validate(img).length).toBe(4096);
  });
});

// Espressif's own esptool (image_info validates checksum and SHA-256), when present: ESPTOOL=.../esptool.py
const esptool = [process.env.ESPTOOL, "/tmp/esptool410/esptool.py"].find((p): p is string => !!p && existsSync(p));
const python = [process.env.PYTHON, "python3", "/usr/bin/python3"].find((py): py is string => {
  if (!py || !esptool) return false;
  try { execFileSync(py, ["-c", "import intelhex, serial"], { stdio: "ignore", timeout: 20_000 }); return true; } catch { return false; }
});
describe.skipIf(!esptool || !python)("interop with esptool image_info (set ESPTOOL=path/to/esptool.py from github.com/espressif/esptool v4.x; needs python3 with intelhex and pyserial: apt-get install python3-intelhex python3-serial)", () => {
  it("esptool finds our images valid, reads the descriptor, and spots a bad checksum", () => {
    const dir = mkdtempSync(join(tmpdir(), "xsota-esptool-"));
    const f = join(dir, "fw.bin");
    writeFileSync(f, buildImage({ version: "2.1.3", secureVersion: 3, project: "interop", size: 200_000 }));
    const out = execFileSync(python!, [esptool!, "--chip", "esp32", "image_info", "--version", "2", f], { encoding: "utf8", timeout: 30_000 });
    expect(out).toMatch(/Checksum: 0x[0-9a-f]+ \(valid\)/);
    expect(out).toMatch(/Validation hash: [0-9a-f]{64} \(valid\)/);
    expect(out).toMatch(/App version: 2\.1\.3/);
    expect(out).toMatch(/Project name: interop/);
    expect(out).toMatch(/Secure version: 3/);
    const bad = buildImage({ version: "2.1.3", size: 4096 });
    bad[1000] ^= 1;
    writeFileSync(f, bad);
    const out2 = execFileSync(python!, [esptool!, "--chip", "esp32", "image_info", "--version", "2", f], { encoding: "utf8", timeout: 30_000 });
    expect(out2).toMatch(/invalid/);
  });
});
