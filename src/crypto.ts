/*
 * CryptoPort on Moddable's crypt modules (modules/crypt/digest/crypt.js, modules/crypt/etc/{ecdsa,curve,rsa}.js,
 * modules/crypt/arith/ecp.js): native SHA-256, ECDSA P-256 and the RSA public operation.
 * RSA PKCS#1 v1.5 is checked by encoding the expected block and comparing (RFC 8017 8.2.2):
 * pkcs1_5.js's verify() ignores the DigestInfo OID and the padding length.
 */
import { Digest } from "crypt";
import ECDSA from "ecdsa";
import Curve from "curve";
import ECPoint from "ecp";
import RSA from "rsa";
import type { CryptoPort, Sha256 } from "../modules/ports";
import { bytesEqual } from "../modules/bytes";
import { ecdsaDerToRaw } from "../modules/der";

/** DER DigestInfo prefix for SHA-256 (RFC 8017 9.2 note 1). */
const SHA256_PREFIX = Uint8Array.of(0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20);

/** Order of the P-256 group (modules/crypt/etc/curve.js secp256r1.n). */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** An exact, unshared ArrayBuffer of these bytes (the crypt modules take whole ArrayBuffers). */
function buffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer;
}

function bigint(bytes: Uint8Array): bigint {
  return BigInt.fromArrayBuffer(buffer(bytes)) as unknown as bigint;
}

class Sha256Digest implements Sha256 {
  readonly #digest = new Digest("SHA256");
  write(data: Uint8Array): void {
    this.#digest.write(data);
  }
  close(): Uint8Array {
    const result = new Uint8Array(this.#digest.close());
    this.#digest.reset(); // crypt's close() finalizes but does not reset
    return result;
  }
  reset(): void {
    this.#digest.reset();
  }
}

export class ModdableCrypto implements CryptoPort {
  #p256: Curve | undefined;

  sha256(): Sha256 {
    return new Sha256Digest();
  }

  verifyEcdsaP256(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
    if (publicKey.length !== 65 || publicKey[0] !== 0x04 || digest.length !== 32) return false;
    // 64 bytes is raw r||s, unless it is a DER encoding that happens to be 64 bytes long: try both.
    if (signature.length === 64 && this.#ecdsa(publicKey, digest, signature)) return true;
    if (signature[0] !== 0x30) return false;
    let raw: Uint8Array;
    try {
      raw = ecdsaDerToRaw(signature);
    } catch {
      return false;
    }
    return this.#ecdsa(publicKey, digest, raw);
  }

  /** ecdsa.js does not check 0 < r, s < n (r = s = 0 would meet the point at infinity): checked here. Keys come from config. */
  #ecdsa(publicKey: Uint8Array, digest: Uint8Array, raw: Uint8Array): boolean {
    const r = bigint(raw.subarray(0, 32));
    const s = bigint(raw.subarray(32));
    if (r <= 0n || r >= P256_N || s <= 0n || s >= P256_N) return false;
    try {
      this.#p256 ??= new Curve("secp256r1");
      return new ECDSA(ECPoint.fromOctetString(publicKey), this.#p256).verify(buffer(digest), buffer(raw), false);
    } catch {
      return false; // a point the arithmetic rejects
    }
  }

  verifyRsaPkcs1Sha256(modulus: Uint8Array, exponent: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
    let start = 0;
    while (start < modulus.length && modulus[start] === 0) start++;
    const k = modulus.length - start;
    if (k < SHA256_PREFIX.length + 32 + 11 || signature.length !== k || digest.length !== 32) return false;
    const n = bigint(modulus.subarray(start));
    const s = bigint(signature);
    if (s >= n) return false;
    let em: Uint8Array;
    try {
      em = new Uint8Array(ArrayBuffer.fromBigInt(new RSA(bigint(exponent), n).process(s) as unknown as BigInt));
    } catch {
      return false;
    }
    // fromBigInt drops leading zero bytes: EM = 00 01 FF..FF 00 DigestInfo H, compared without its leading 00.
    const expected = new Uint8Array(k - 1);
    const t = expected.length - SHA256_PREFIX.length - 32;
    expected[0] = 0x01;
    expected.fill(0xff, 1, t - 1);
    expected[t - 1] = 0x00;
    expected.set(SHA256_PREFIX, t);
    expected.set(digest, t + SHA256_PREFIX.length);
    return bytesEqual(em, expected);
  }
}
