import { describe, it, expect } from "vitest";
import { generateKeyPairSync, sign as nodeSign, createHash } from "node:crypto";
import { nodeCrypto, sha256 } from "../../backend/crypto";
import { parsePublicKeyDer, keyFromConfig, keyId } from "../../modules/keys";
import { ecdsaDerToRaw } from "../../modules/der";
import { ecdsaRawToDer } from "../../backend/release/der-encode";
import { generateKey, signDigestEcdsa, signMessage, keyConfigOf, loadPublicKey, publicKeyPem, privateKeyPem, loadPrivateKey } from "../../backend/release/keys";
import { toBase64, toHex } from "../../modules/bytes";
import { OtaError } from "../../modules/errors";

const msg = new TextEncoder().encode("firmware bytes");
const digest = sha256(msg);

describe("nodeCrypto (CryptoPort)", () => {
  it("streams SHA-256 and resets after close", () => {
    const h = nodeCrypto.sha256();
    h.write(msg.subarray(0, 3));
    h.write(msg.subarray(3));
    expect(toHex(h.close())).toBe(createHash("sha256").update(msg).digest("hex"));
    h.write(msg);
    expect(toHex(h.close())).toBe(toHex(digest));
  });

  it("verifies prehashed ECDSA P-256 as raw r||s and DER, and refuses a wrong digest or key", () => {
    const k = generateKey("ecdsa-p256");
    const point = parsePublicKeyDer(k.spki);
    if (point.type !== "ecdsa-p256") throw new Error("type");
    const raw = signDigestEcdsa(k, digest);
    expect(raw.length).toBe(64);
    expect(nodeCrypto.verifyEcdsaP256(point.point, digest, raw)).toBe(true);
    expect(nodeCrypto.verifyEcdsaP256(point.point, digest, ecdsaRawToDer(raw))).toBe(true);
    const der = new Uint8Array(nodeSign("sha256", msg, k.privateKey)); // OpenSSL, DER, random k
    expect(nodeCrypto.verifyEcdsaP256(point.point, digest, der)).toBe(true);
    expect(toHex(ecdsaRawToDer(ecdsaDerToRaw(der)))).toBe(toHex(der));
    const other = sha256(new TextEncoder().encode("other"));
    expect(nodeCrypto.verifyEcdsaP256(point.point, other, raw)).toBe(false);
    const k2 = parsePublicKeyDer(generateKey("ecdsa-p256").spki) as { point: Uint8Array };
    expect(nodeCrypto.verifyEcdsaP256(k2.point, digest, raw)).toBe(false);
    expect(nodeCrypto.verifyEcdsaP256(point.point, digest, raw.subarray(0, 63))).toBe(false);
    expect(nodeCrypto.verifyEcdsaP256(point.point, digest, new Uint8Array(64))).toBe(false);
  });

  it("accepts high-S ECDSA signatures (OpenSSL and espsecure do not normalise S)", () => {
    const k = generateKey("ecdsa-p256");
    const pt = (parsePublicKeyDer(k.spki) as { point: Uint8Array }).point;
    const n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
    const raw = signDigestEcdsa(k, digest);
    const s = BigInt("0x" + toHex(raw.subarray(32)));
    const flipped = new Uint8Array(raw);
    flipped.set(Buffer.from((n - s).toString(16).padStart(64, "0"), "hex"), 32);
    expect(nodeCrypto.verifyEcdsaP256(pt, digest, flipped)).toBe(true);
  });

  it("verifies RSA-2048 PKCS#1 v1.5 SHA-256 over a digest and refuses tampering", () => {
    const k = generateKey("rsa-2048");
    const parsed = parsePublicKeyDer(k.spki);
    if (parsed.type !== "rsa-2048") throw new Error("type");
    const sig = signMessage(k, msg);
    expect(sig.length).toBe(256);
    expect(nodeCrypto.verifyRsaPkcs1Sha256(parsed.modulus, parsed.exponent, digest, sig)).toBe(true);
    const bad = new Uint8Array(sig);
    bad[100] ^= 1;
    expect(nodeCrypto.verifyRsaPkcs1Sha256(parsed.modulus, parsed.exponent, digest, bad)).toBe(false);
    expect(nodeCrypto.verifyRsaPkcs1Sha256(parsed.modulus, parsed.exponent, sha256(bad), sig)).toBe(false);
    // RSA-PSS is not PKCS#1 v1.5: refused.
    const pss = new Uint8Array(nodeSign("sha256", msg, { key: k.privateKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */ }));
    expect(nodeCrypto.verifyRsaPkcs1Sha256(parsed.modulus, parsed.exponent, digest, pss)).toBe(false);
  });
});

describe("modules/keys", () => {
  it("parses SPKI of both key types and derives the key id from the DER", () => {
    for (const type of ["ecdsa-p256", "rsa-2048"] as const) {
      const k = generateKey(type);
      const t = keyFromConfig({ type, spki: toBase64(k.spki) }, nodeCrypto);
      expect(t.id).toBe(toHex(sha256(k.spki).subarray(0, 8)));
      expect(t.id).toBe(keyId(k.spki, nodeCrypto));
      expect(t.type).toBe(type);
      const fromPem = loadPublicKey(publicKeyPem(k));
      expect(fromPem.id).toBe(k.id);
      expect(loadPrivateKey(privateKeyPem(k)).id).toBe(k.id);
      expect(keyFromConfig(keyConfigOf(fromPem, true)).revoked).toBe(true);
    }
  });

  it("refuses other curves, other RSA sizes, a type mismatch and corrupt DER with named codes", () => {
    const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" }).publicKey.export({ type: "spki", format: "der" });
    const rsa1024 = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "der" });
    const ed = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "der" });
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof OtaError ? e.code : "other";
      }
      return "none";
    };
    expect(code(() => parsePublicKeyDer(new Uint8Array(p384)))).toBe("KEY_TYPE");
    expect(code(() => parsePublicKeyDer(new Uint8Array(rsa1024)))).toBe("KEY_TYPE");
    expect(code(() => parsePublicKeyDer(new Uint8Array(ed)))).toBe("KEY_TYPE");
    const ec = generateKey("ecdsa-p256");
    expect(code(() => keyFromConfig({ type: "rsa-2048", spki: toBase64(ec.spki) }, nodeCrypto))).toBe("KEY_TYPE");
    expect(code(() => keyFromConfig({ type: "ecdsa-p256", spki: "***" }, nodeCrypto))).toBe("KEY_FORMAT");
    for (let cut = 0; cut < ec.spki.length; cut += 7) expect(code(() => parsePublicKeyDer(ec.spki.subarray(0, cut)))).toBe("KEY_FORMAT");
    const longer = new Uint8Array(ec.spki.length + 1);
    longer.set(ec.spki);
    expect(code(() => parsePublicKeyDer(longer))).toBe("KEY_FORMAT");
  });
});
