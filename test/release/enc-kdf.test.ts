/*
 * modules/enc-kdf.ts, the device's HMAC/HKDF/PBKDF2 and P-256 point check on the CryptoPort's
 * SHA-256 (what Moddable's crypt lacks for esp_encrypted_img): against Node's own, RFC 5869's
 * first vector, and the committed ECIES vector (the scalar the chip derives from ecc.hmac.bin is
 * ecc.pem's, and the GCM key from the header opens esp.ecc.bin).
 */
import { describe, it, expect } from "vitest";
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, pbkdf2Sync, createDecipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { p256 } from "@noble/curves/nist.js";
import { nodeCrypto } from "../../backend/crypto";
import { HmacSha256, eccScalarFromHmacKey, eciesGcmKey, hkdfSha256, isP256Point, pbkdf2Sha256 } from "../../modules/enc-kdf";
import { parseEncHeader } from "../../modules/enc-image";
import { codeOf } from "../codes";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 37 + seed) & 255);
const V = join(import.meta.dirname, "vectors/encrypted");

describe("HMAC, HKDF, PBKDF2 over the SHA-256 port", () => {
  it("HMAC-SHA256 equals Node's for short, block-sized and long keys", () => {
    for (const klen of [0, 1, 32, 64, 65, 200]) {
      const key = bytes(klen, klen);
      const data = bytes(100 + klen, 3);
      const h = new HmacSha256(nodeCrypto, key);
      expect(hex(h.mac(data))).toBe(createHmac("sha256", key).update(data).digest("hex"));
      expect(hex(h.mac(data.subarray(0, 10), data.subarray(10)))).toBe(createHmac("sha256", key).update(data).digest("hex"));
    }
  });

  it("HKDF-SHA256: RFC 5869 test case 1, and Node's for the ECIES parameters", () => {
    const okm = hkdfSha256(nodeCrypto, new Uint8Array(22).fill(0x0b), Uint8Array.from(Buffer.from("000102030405060708090a0b0c", "hex")), Uint8Array.from(Buffer.from("f0f1f2f3f4f5f6f7f8f9", "hex")), 42);
    expect(hex(okm)).toBe("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    for (const len of [0, 1, 32, 33, 100]) {
      const ikm = bytes(32, len);
      const salt = bytes(32, 9);
      expect(hex(hkdfSha256(nodeCrypto, ikm, salt, Buffer.from("_esp_enc_img_ecc"), len))).toBe(Buffer.from(hkdfSync("sha256", ikm, salt, "_esp_enc_img_ecc", len)).toString("hex"));
    }
  });

  it("PBKDF2-HMAC-SHA256 equals Node's, 1 to 2048 rounds", () => {
    for (const it of [1, 2, 5, 2048]) {
      const pw = bytes(32, it);
      const salt = bytes(32, 1);
      expect(hex(pbkdf2Sha256(nodeCrypto, pw, salt, it, 32))).toBe(pbkdf2Sync(pw, salt, it, 32, "sha256").toString("hex"));
    }
    expect(() => pbkdf2Sha256(nodeCrypto, bytes(1, 0), bytes(1, 0), 0, 32)).toThrow(RangeError);
  });
});

describe("ECIES as the device computes it, on the committed vector", () => {
  it("the scalar from ecc.hmac.bin is ecc.pem's, and the header's point + salt give the key that opens esp.ecc.bin", () => {
    const d = eccScalarFromHmacKey(nodeCrypto, new Uint8Array(readFileSync(join(V, "ecc.hmac.bin"))));
    const jwk = createPrivateKey(readFileSync(join(V, "ecc.pem"), "utf8")).export({ format: "jwk" });
    expect(hex(d)).toBe(Buffer.from(jwk.d!, "base64url").toString("hex"));
    const file = new Uint8Array(readFileSync(join(V, "esp.ecc.bin")));
    const h = parseEncHeader(file);
    const point = h.keyField.subarray(0, 64);
    expect(isP256Point(point)).toBe(true);
    const server = createPublicKey({ key: { kty: "EC", crv: "P-256", x: Buffer.from(point.subarray(0, 32)).toString("base64url"), y: Buffer.from(point.subarray(32)).toString("base64url") }, format: "jwk" });
    const shared = new Uint8Array(diffieHellman({ privateKey: createPrivateKey(readFileSync(join(V, "ecc.pem"), "utf8")), publicKey: server }));
    const key = eciesGcmKey(nodeCrypto, shared, h.keyField.subarray(64, 96));
    const dec = createDecipheriv("aes-256-gcm", key, h.iv);
    dec.setAuthTag(h.tag);
    const plain = Buffer.concat([dec.update(file.subarray(512)), dec.final()]);
    expect(hex(plain)).toBe(hex(new Uint8Array(readFileSync(join(V, "plain.bin")))));
  });

  it("isP256Point: true for points, false off the curve, for coordinates >= p and wrong lengths", () => {
    for (let i = 1; i < 6; i++) {
      const q = p256.getPublicKey(bytes(32, i * 11), false).subarray(1);
      expect(isP256Point(q)).toBe(true);
      const off = q.slice();
      off[63]! ^= 1;
      expect(isP256Point(off)).toBe(false);
    }
    expect(isP256Point(new Uint8Array(64))).toBe(false);
    expect(isP256Point(new Uint8Array(64).fill(0xff))).toBe(false);
    expect(isP256Point(new Uint8Array(65))).toBe(false);
    // an RSA-3072 file's key field read as a point (what an ECIES device sees in the wrong file)
    expect(isP256Point(parseEncHeader(new Uint8Array(readFileSync(join(V, "esp.rsa3072.bin")))).keyField.subarray(0, 64))).toBe(false);
  });

  it("eccScalarFromHmacKey refuses a key whose PBKDF2 output is not a valid scalar (KEY_FORMAT)", () => {
    // no such key is known; the check is the range test: a zero-filled port output stands in for it
    const zero = { ...nodeCrypto, sha256: () => ({ write() {}, close: () => new Uint8Array(32), digest: () => new Uint8Array(32), reset() {} }) };
    expect(codeOf(() => eccScalarFromHmacKey(zero, new Uint8Array(32)))).toBe("KEY_FORMAT");
  });
});
