/*
 * The CryptoPort binding on Node: SHA-256 from node:crypto, ECDSA P-256 over a precomputed
 * digest from @noble/curves (prehash off, high-S accepted as OpenSSL and espsecure produce
 * it), RSA PKCS#1 v1.5 SHA-256 by the textbook check s^e mod n == EM with BigInt (exactly
 * what the device's pkcs1_5 module checks: no PSS).
 */
import { constants, createCipheriv, createECDH, createDecipheriv, createHash, createPrivateKey, privateDecrypt, type Hash, type KeyObject } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import type { CryptoPort, EncCipherPort, GcmDecrypt, RsaPrivateKey, Sha256 } from "../modules/ports";
import { ecdsaDerToRaw } from "../modules/der";

class NodeSha256 implements Sha256 {
  private h: Hash = createHash("sha256");
  write(data: Uint8Array): void {
    this.h.update(data);
  }
  close(): Uint8Array {
    const d = new Uint8Array(this.h.digest());
    this.h = createHash("sha256");
    return d;
  }
  digest(): Uint8Array {
    return new Uint8Array(this.h.copy().digest());
  }
  reset(): void {
    this.h = createHash("sha256");
  }
}

/** DigestInfo prefix for SHA-256 (RFC 8017, section 9.2, note 1). */
export const SHA256_DIGEST_INFO = Uint8Array.from([0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20]);

export function bytesToBigInt(b: Uint8Array): bigint {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
}

export function bigIntToBytes(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

export function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  base %= mod;
  while (exp > 0n) {
    if (exp & 1n) result = (result * base) % mod;
    base = (base * base) % mod;
    exp >>= 1n;
  }
  return result;
}

/** EMSA-PKCS1-v1_5 encoding of a SHA-256 digest for a modulus of `k` bytes. */
export function pkcs1Sha256Encode(digest: Uint8Array, k: number): Uint8Array {
  const t = SHA256_DIGEST_INFO.length + digest.length;
  if (k < t + 11) throw new RangeError("modulus too short");
  const em = new Uint8Array(k).fill(0xff);
  em[0] = 0;
  em[1] = 1;
  em[k - t - 1] = 0;
  em.set(SHA256_DIGEST_INFO, k - t);
  em.set(digest, k - digest.length);
  return em;
}

function verifyEcdsaP256(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
  if (digest.length !== 32 || publicKey.length !== 65 || publicKey[0] !== 4) return false;
  let raw: Uint8Array;
  if (signature.length === 64) raw = signature;
  else {
    try {
      raw = ecdsaDerToRaw(signature);
    } catch {
      return false;
    }
  }
  try {
    return p256.verify(raw, digest, publicKey, { prehash: false, lowS: false, format: "compact" });
  } catch {
    return false;
  }
}

function verifyRsaPkcs1Sha256(modulus: Uint8Array, exponent: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
  let m = modulus;
  while (m.length > 1 && m[0] === 0) m = m.subarray(1);
  if (digest.length !== 32 || signature.length !== m.length || m.length < 64) return false;
  const n = bytesToBigInt(m);
  const s = bytesToBigInt(signature);
  if (s >= n) return false;
  const em = bigIntToBytes(modPow(s, bytesToBigInt(exponent), n), m.length);
  const expected = pkcs1Sha256Encode(digest, m.length);
  let diff = 0;
  for (let i = 0; i < em.length; i++) diff |= em[i]! ^ expected[i]!;
  return diff === 0;
}

/** The GcmDecrypt of modules/enc-stream.ts on Node: OpenSSL's GCM; a replay re-encrypts the plain bytes into the decipher. */
export function nodeGcmDecrypt(key: Uint8Array, iv: Uint8Array): GcmDecrypt {
  const d = createDecipheriv("aes-256-gcm", key, iv);
  const c = createCipheriv("aes-256-gcm", key, iv);
  return {
    // a view of OpenSSL's fresh output (no copy: the caller writes it to flash and hashes it)
    update: (ciphertext) => {
      const b = d.update(ciphertext);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },
    replay: (plaintext) => void d.update(c.update(plaintext)),
    finish(tag) {
      d.setAuthTag(tag);
      try {
        d.final();
        return true;
      } catch {
        return false;
      }
    },
  };
}

const rsaKeys = new WeakMap<RsaPrivateKey, KeyObject>();
const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");

/** The esp_encrypted_img ciphers on Node: OpenSSL's raw RSA, P-256 ECDH and AES-256-GCM. */
export const nodeEncCipher: EncCipherPort = {
  rsaPrivateRaw(key, block) {
    let k = rsaKeys.get(key);
    if (!k) {
      k = createPrivateKey({ key: { kty: "RSA", n: b64u(key.n), e: b64u(key.e), d: b64u(key.d), p: b64u(key.p), q: b64u(key.q), dp: b64u(key.dp), dq: b64u(key.dq), qi: b64u(key.qi) }, format: "jwk" });
      rsaKeys.set(key, k);
    }
    return new Uint8Array(privateDecrypt({ key: k, padding: constants.RSA_NO_PADDING }, block));
  },
  ecdhP256(d, xy) {
    const ecdh = createECDH("prime256v1");
    ecdh.setPrivateKey(d);
    return new Uint8Array(ecdh.computeSecret(Uint8Array.of(4, ...xy)));
  },
  aesGcmDecrypt: nodeGcmDecrypt,
};

export const nodeCrypto: CryptoPort = {
  enc: nodeEncCipher,
  sha256: () => new NodeSha256(),
  verifyEcdsaP256,
  verifyRsaPkcs1Sha256,
};

/** One-shot SHA-256 (host side convenience). */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}
