import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { signV1, signV2, verifySignedImage, signatureInfo, padToSector } from "../../backend/release/espsecure";
import { generateKey, loadPublicKey, trustedKeyOf } from "../../backend/release/keys";
import { verifyImageSignature, decodeV2Block, V2_BLOCK_SIZE } from "../../modules/sigblock";
import { nodeCrypto, sha256 } from "../../backend/crypto";
import { codeOf as code } from "../codes";

const vec = (name: string) => new Uint8Array(readFileSync(join(__dirname, "vectors", name)));
const pub = (name: string) => trustedKeyOf(loadPublicKey(join(__dirname, "vectors", name)));
const image = vec("image.bin");
const keyA = pub("key-a.pub.pem");
const keyB = pub("key-b.pub.pem");
const keyC = pub("key-c.pub.pem");

describe("espsecure-made signatures verify with our device code", () => {
  it("v1 (Secure Boot v1, 68-byte trailer)", () => {
    const r = verifySignedImage(vec("image.v1.key-a.bin"), [keyB, keyA]);
    expect(r).toEqual({ scheme: "v1", imageLength: 3000, keyId: keyA.id });
    expect(Buffer.from(vec("image.v1.key-a.bin").subarray(0, 3000)).equals(Buffer.from(image))).toBe(true);
    expect(code(() => verifySignedImage(vec("image.v1.key-a.bin"), [keyB]))).toBe("SIG_INVALID");
  });

  it("espsecure's raw 64-byte public key (extract_public_key --version 1) is the same key", () => {
    expect(pub("key-a.pub.raw")).toEqual(keyA);
    expect(verifySignedImage(vec("image.v1.key-a.bin"), [pub("key-a.pub.raw")]).keyId).toBe(keyA.id);
  });

  it("v2 (ECDSA P-256 signature sector), one and two blocks", () => {
    expect(verifySignedImage(vec("image.v2.key-b.bin"), [keyB])).toEqual({ scheme: "v2", imageLength: 4096, keyId: keyB.id });
    expect(verifySignedImage(vec("image.v2.key-a+b.bin"), [keyA]).keyId).toBe(keyA.id);
    expect(verifySignedImage(vec("image.v2.key-a+b.bin"), [keyB]).keyId).toBe(keyB.id);
    expect(code(() => verifySignedImage(vec("image.v2.key-b.bin"), [keyA]))).toBe("SIG_UNKNOWN_KEY");
    const info = signatureInfo(vec("image.v2.key-a+b.bin"));
    expect(info.blocks.map((b) => [b.version, b.hashType, b.curveId, b.digestMatches])).toEqual([[3, 0, 2, true], [3, 0, 2, true]]);
  });

  it("our v1 and v2 files have espsecure's layout (the committed ones were verified by espsecure)", () => {
    expect(verifySignedImage(vec("ours.v1.key-c.bin"), [keyC]).scheme).toBe("v1");
    expect(verifySignedImage(vec("ours.v2.key-c.bin"), [keyC]).scheme).toBe("v2");
    // Same bytes as espsecure's except the signature itself and the key.
    const es = vec("image.v2.key-b.bin");
    const ours = vec("ours.v2.key-c.bin");
    expect(Buffer.from(ours.subarray(0, 4096 + 37)).equals(Buffer.from(es.subarray(0, 4096 + 37)))).toBe(true);
    expect(Buffer.from(ours.subarray(4096 + 165, 4096 + 1196)).equals(Buffer.from(es.subarray(4096 + 165, 4096 + 1196)))).toBe(true);
    expect(Buffer.from(ours.subarray(4096 + 1200)).equals(Buffer.from(es.subarray(4096 + 1200)))).toBe(true);
    expect(Buffer.from(vec("ours.v1.key-c.bin").subarray(0, 3004)).equals(Buffer.from(vec("image.v1.key-a.bin").subarray(0, 3004)))).toBe(true);
  });
});

describe("tampering and wrong keys", () => {
  const k = generateKey("ecdsa-p256");
  const k2 = generateKey("ecdsa-p256");
  const img = new Uint8Array(9000).map((_, i) => (i * 13) & 255);
  const trusted = trustedKeyOf(k);

  it("every byte of a v1 file matters", () => {
    const signed = signV1(img, k);
    expect(verifySignedImage(signed, [trusted]).imageLength).toBe(9000);
    for (let i = 0; i < signed.length; i += i < 8900 ? 97 : 1) {
      const t = new Uint8Array(signed);
      t[i] ^= 0x01;
      expect(code(() => verifySignedImage(t, [trusted])), `byte ${i}`).toMatch(/^SIG_(INVALID|MISSING)$/);
    }
  });

  it("every byte of a v2 file matters (image, padding, block, CRC, pad, the 0xFF rest of the sector)", () => {
    const signed = signV2(img, [k]);
    expect(signed.length).toBe(12288 + 4096);
    for (let i = 0; i < signed.length; i += i < 12000 ? 101 : 1) {
      const t = new Uint8Array(signed);
      t[i] ^= 0x01;
      expect(code(() => verifySignedImage(t, [trusted])), `byte ${i}`).toMatch(/^SIG_(INVALID|MISSING|DIGEST|FORMAT)$/);
    }
  });

  it("a valid block carrying another image's digest is SIG_DIGEST", () => {
    const signed = signV2(img, [k]);
    const block = decodeV2Block(signed.subarray(12288, 12288 + V2_BLOCK_SIZE))!;
    expect(Buffer.from(block.digest).equals(Buffer.from(sha256(padToSector(img))))).toBe(true);
    // Swap in a block signed over another image: its CRC is valid, its digest is not ours.
    const other = signV2(img.map((x) => x ^ 1), [k]);
    const t1 = new Uint8Array(signed);
    t1.set(other.subarray(12288, 12288 + V2_BLOCK_SIZE), 12288);
    expect(code(() => verifySignedImage(t1, [trusted]))).toBe("SIG_DIGEST");
  });

  it("wrong key, revoked key, no key, RSA keys only, unsigned file", () => {
    for (const signed of [signV1(img, k), signV2(img, [k])]) {
      expect(code(() => verifySignedImage(signed, [trustedKeyOf(k2)]))).toMatch(/^SIG_(INVALID|UNKNOWN_KEY)$/);
      expect(code(() => verifySignedImage(signed, [trustedKeyOf(k, true)]))).toBe("SIG_REVOKED_KEY");
      expect(code(() => verifySignedImage(signed, [trustedKeyOf(generateKey("rsa-2048"))]))).toBe("SIG_UNKNOWN_KEY");
    }
    expect(code(() => verifySignedImage(img, [trusted]))).toBe("SIG_MISSING");
    expect(code(() => verifySignedImage(new Uint8Array(10), [trusted]))).toBe("SIG_MISSING");
    expect(code(() => signV1(img, generateKey("rsa-2048")))).toBe("KEY_TYPE");
  });

  it("rotation in v2: up to 3 blocks, appended; the device accepts any trusted one", () => {
    const k3 = generateKey("ecdsa-p256");
    const two = signV2(signV2(img, [k]), [k2], { append: true });
    expect(signatureInfo(two).blocks.length).toBe(2);
    expect(verifySignedImage(two, [trustedKeyOf(k2)]).keyId).toBe(trustedKeyOf(k2).id);
    expect(verifySignedImage(two, [trustedKeyOf(k, true), trustedKeyOf(k2)]).keyId).toBe(trustedKeyOf(k2).id);
    const three = signV2(two, [k3], { append: true });
    expect(signatureInfo(three).blocks.length).toBe(3);
    expect(code(() => signV2(three, [generateKey("ecdsa-p256")], { append: true }))).toBe("SIG_FORMAT");
  });

  it("streams through a small caller-owned scratch buffer, as on the device", () => {
    const signed = signV2(img, [k]);
    let reads = 0;
    const r = verifyImageSignature((off, t) => {
      reads++;
      t.set(signed.subarray(off, off + t.length));
    }, signed.length, [trusted], nodeCrypto, new Uint8Array(512));
    expect(r.scheme).toBe("v2");
    expect(reads).toBeGreaterThan(12288 / 512);
  });
});
