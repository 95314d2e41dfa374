/*
 * esp_encrypted_img's 16-byte IV goes through GHASH to make GCM's first counter block J0, so its
 * low 32 bits are anything, and inc32 wraps them inside an image now and then. OpenSSL's GCM (as
 * mbedtls and the tool's) wraps within the low word; Moddable's Mode("CTR") carries into the
 * upper 96 bits. Here an IV is solved for a J0 whose low word wraps at block 6 (GHASH is linear in the
 * IV), and modules/enc-image.ts gcmCounterBlock gives OpenSSL's keystream across the wrap while a
 * 128-bit carry does not: the device must set its CTR again at the wrap.
 */
import { describe, it, expect } from "vitest";
import { createCipheriv } from "node:crypto";
import { gcmBlocksBeforeWrap, gcmCounterBlock } from "../../modules/enc-image";

const R = 0xe1n << 120n;
const MASK = (1n << 128n) - 1n;
const big = (b: Uint8Array) => BigInt("0x" + (Buffer.from(b).toString("hex") || "0"));
const bytes = (n: bigint) => new Uint8Array(Buffer.from(n.toString(16).padStart(32, "0"), "hex"));

/** Multiplication in GCM's GF(2^128) (SP 800-38D algorithm 1). */
function gmul(x: bigint, y: bigint): bigint {
  let z = 0n;
  let v = y;
  for (let i = 127n; i >= 0n; i--) {
    if ((x >> i) & 1n) z ^= v;
    v = v & 1n ? (v >> 1n) ^ R : v >> 1n;
  }
  return z & MASK;
}

function ginv(x: bigint): bigint {
  // x^(2^128 - 2): 2^128 - 2 = 0b1...10 (127 ones then a zero)
  let r = 1n << 127n; // the field's 1 in GCM bit order
  let base = x;
  let e = (1n << 128n) - 2n;
  while (e > 0n) {
    if (e & 1n) r = gmul(r, base);
    base = gmul(base, base);
    e >>= 1n;
  }
  return r;
}

const aesBlock = (key: Uint8Array, block: Uint8Array) => {
  const c = createCipheriv("aes-256-ecb", key, null);
  c.setAutoPadding(false);
  return new Uint8Array(c.update(block));
};

describe("GCM counter blocks with a 16-byte IV (inc32)", () => {
  const key = new Uint8Array(32).map((_, i) => i * 7 + 1);
  const h = big(aesBlock(key, new Uint8Array(16)));
  const lenBlock = 128n; // [len(A)=0]64 || [len(IV)=128 bits]64
  // J0 with a low word 6 below the wrap: blocks 0..4 use ...fffffffa..fffffffe, block 5 ...ffffffff, block 6 wraps to 0
  const j0 = bytes((0x0123456789abcdef01234567n << 32n) | 0xfffffff9n);
  const hInv = ginv(h);
  const iv = bytes(gmul(gmul(big(j0), hInv) ^ lenBlock, hInv));

  it("the solved IV gives that J0 (GHASH_H(IV || len) = J0)", () => {
    expect(gmul(h, ginv(h))).toBe(1n << 127n);
    expect(Buffer.from(bytes(gmul(gmul(big(iv), h) ^ lenBlock, h))).toString("hex")).toBe(Buffer.from(j0).toString("hex"));
    expect(gcmBlocksBeforeWrap(j0, 0)).toBe(7 - 1);
  });

  it("OpenSSL's keystream is AES(gcmCounterBlock(J0, i)) across the wrap; a 128-bit carry differs from the wrap on", () => {
    const blocks = 12;
    const c = createCipheriv("aes-256-gcm", key, iv);
    const stream = new Uint8Array(Buffer.concat([c.update(new Uint8Array(16 * blocks)), c.final()]));
    for (let i = 0; i < blocks; i++) {
      const ours = aesBlock(key, gcmCounterBlock(j0, i));
      expect([i, Buffer.from(ours).toString("hex")]).toEqual([i, Buffer.from(stream.subarray(16 * i, 16 * i + 16)).toString("hex")]);
      const carried = aesBlock(key, bytes((big(j0) + 1n + BigInt(i)) & MASK)); // Moddable's Mode("CTR") from J0 + 1
      expect([i, Buffer.from(carried).equals(Buffer.from(ours))]).toEqual([i, i < 6]);
    }
  });

  it("gcmCounterBlock wraps the low word only, and refuses bad arguments", () => {
    expect(Buffer.from(gcmCounterBlock(j0, 6)).toString("hex")).toBe("0123456789abcdef0123456700000000");
    expect(Buffer.from(gcmCounterBlock(j0, 5)).toString("hex")).toBe("0123456789abcdef01234567ffffffff");
    expect(gcmBlocksBeforeWrap(j0, 6)).toBe(0x100000000);
    expect(() => gcmCounterBlock(j0.subarray(1), 0)).toThrow(RangeError);
    expect(() => gcmCounterBlock(j0, -1)).toThrow(RangeError);
  });
});
