/*
 * modules/enc-gcm.ts, GCM decryption over the primitives Moddable's crypt offers (one AES block,
 * CTR that carries through all 128 bits, GHASH that takes whole blocks), held against OpenSSL's
 * GCM: Espressif's vectors and random files in chunks of any size, the tag, a replay after a
 * "reboot", and the counter's low-word wrap against a block-by-block reference. The primitives
 * here: OpenSSL's aes-256-ecb and aes-256-ctr (its CTR carries through 128 bits too, as
 * Moddable's does) and a GHASH written from SP 800-38D.
 */
import { describe, it, expect } from "vitest";
import { createCipheriv, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GcmOverCtr, type GcmPrimitives } from "../../modules/enc-gcm";
import { gcmCounterBlock, parseEncHeader } from "../../modules/enc-image";
import { openGcmKey, encryptImage, generateDeviceKey, nodeGcmDecrypt } from "../../backend/release/encrypted-img";

const big = (b: Uint8Array) => BigInt("0x" + (Buffer.from(b).toString("hex") || "0"));
const bytes = (n: bigint) => Uint8Array.from(Buffer.from(n.toString(16).padStart(32, "0"), "hex"));
const R = 0xe1n << 120n;
function gfMul(x: bigint, y: bigint): bigint {
  let z = 0n, v = y;
  for (let i = 127; i >= 0; i--) {
    if ((x >> BigInt(i)) & 1n) z ^= v;
    v = v & 1n ? (v >> 1n) ^ R : v >> 1n;
  }
  return z;
}

/** SP 800-38D GHASH, no AAD: whole blocks (a last partial one zero-padded), then len(A)=0 || len(C). */
function ghash(h: Uint8Array) {
  const H = big(h);
  let y = 0n, bits = 0n;
  return {
    write(blocks: Uint8Array) {
      for (let o = 0; o < blocks.length; o += 16) {
        const b = new Uint8Array(16);
        b.set(blocks.subarray(o, o + 16));
        y = gfMul(y ^ big(b), H);
      }
      bits += BigInt(blocks.length) * 8n;
    },
    close() {
      return bytes(gfMul(y ^ bits, H));
    },
  };
}

function primitives(key: Uint8Array, calls?: Uint8Array[]): GcmPrimitives {
  return {
    encryptBlock: (b) => new Uint8Array(createCipheriv("aes-256-ecb", key, null).setAutoPadding(false).update(b)),
    ctr(counter, input, output) {
      calls?.push(counter.slice());
      output.set(createCipheriv("aes-256-ctr", key, counter).update(input));
    },
    ghash,
  };
}

const V = join(import.meta.dirname, "vectors/encrypted");
const rsa = readFileSync(join(V, "rsa3072.pem"), "utf8");

function decrypt(file: Uint8Array, key: Uint8Array, sizes: number[]): { plain: Uint8Array; ok: boolean } {
  const h = parseEncHeader(file.subarray(0, 512));
  const g = new GcmOverCtr(primitives(key), h.iv);
  const body = file.subarray(512);
  const out = new Uint8Array(body.length);
  for (let at = 0, i = 0; at < body.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, body.length - at);
    out.set(g.update(body.subarray(at, at + n)), at);
    at += n;
  }
  return { plain: out, ok: g.finish(h.tag) };
}

describe("GCM over CTR + GHASH (what the Moddable binding will pass)", () => {
  it("decrypts Espressif's RSA-3072 vector in chunks of 1, 7, 16, 100, 4096 bytes; the tag checks; a flipped byte fails it", () => {
    const file = new Uint8Array(readFileSync(join(V, "esp.rsa3072.bin")));
    const plain = new Uint8Array(readFileSync(join(V, "plain.bin")));
    const { key } = openGcmKey(parseEncHeader(file.subarray(0, 512)), rsa);
    for (const sizes of [[1], [7, 16, 3], [16], [100], [4096]]) {
      const r = decrypt(file, key, sizes);
      expect([sizes.join(","), r.ok, Buffer.from(r.plain).equals(Buffer.from(plain))]).toEqual([sizes.join(","), true, true]);
    }
    const bad = file.slice();
    bad[600]! ^= 1;
    expect(decrypt(bad, key, [4096]).ok).toBe(false);
  });

  it("equals OpenSSL's GCM on random images (every length mod 16), and a replay of the plain bytes keeps the tag", () => {
    const k = generateDeviceKey("rsa3072");
    for (const len of [1, 15, 16, 17, 4095, 4096, 4097, 20_003]) {
      const img = new Uint8Array(randomBytes(len));
      const file = encryptImage(img, { publicKey: k.publicKey });
      const h = parseEncHeader(file.subarray(0, 512));
      const { key } = openGcmKey(h, k.privateKey);
      const r = decrypt(file, key, [4096, 3584, 5]);
      expect([len, r.ok, Buffer.from(r.plain).equals(Buffer.from(img))]).toEqual([len, true, true]);
      // a "reboot" after `cut` plain bytes: replay them, decrypt the rest, the tag still checks
      const cut = Math.floor(len / 3);
      const g = new GcmOverCtr(primitives(key), h.iv);
      g.replay(img.subarray(0, cut));
      const rest = g.update(file.subarray(512 + cut));
      expect([len, Buffer.from(rest).equals(Buffer.from(img.subarray(cut))), g.finish(h.tag)]).toEqual([len, true, true]);
      // and Node's own binding agrees
      const n = nodeGcmDecrypt(key, h.iv);
      n.update(file.subarray(512));
      expect(n.finish(h.tag)).toBe(true);
    }
  });

  it("sets the counter again where its low 32 bits wrap (CTR would carry into bit 32, GCM's inc32 does not)", () => {
    const key = new Uint8Array(randomBytes(32));
    const j0 = new Uint8Array(randomBytes(16));
    j0.set([0xff, 0xff, 0xff, 0xf0], 12); // inc32(J0) wraps after 15 blocks
    const data = new Uint8Array(randomBytes(64 * 16 + 5));
    const calls: Uint8Array[] = [];
    const g = new GcmOverCtr(primitives(key, calls), new Uint8Array(16), j0);
    const out = new Uint8Array(data.length);
    for (let at = 0; at < data.length; at += 100) out.set(g.update(data.subarray(at, at + 100)), at);
    const p = primitives(key);
    const want = new Uint8Array(data.length);
    for (let b = 0; b * 16 < data.length; b++) {
      const ks = p.encryptBlock(gcmCounterBlock(j0, b));
      for (let i = 0; i < 16 && b * 16 + i < data.length; i++) want[b * 16 + i] = data[b * 16 + i]! ^ ks[i]!;
    }
    expect(Buffer.from(out).equals(Buffer.from(want))).toBe(true);
    // one CTR run starts at the wrap, with the low word 0 and the upper 96 bits unchanged
    expect(calls.some((c) => Buffer.from(c.subarray(12)).equals(Buffer.alloc(4)) && Buffer.from(c.subarray(0, 12)).equals(Buffer.from(j0.subarray(0, 12))))).toBe(true);
    // the same run through OpenSSL's CTR alone (no reset) differs after the wrap: the test can fail
    const naive = createCipheriv("aes-256-ctr", key, gcmCounterBlock(j0, 0)).update(data);
    expect(Buffer.from(naive).subarray(0, 15 * 16).equals(Buffer.from(want.subarray(0, 15 * 16)))).toBe(true);
    expect(Buffer.from(naive).subarray(15 * 16, 16 * 16).equals(Buffer.from(want.subarray(15 * 16, 16 * 16)))).toBe(false);
  });
});
