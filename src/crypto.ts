/// <reference path="./types/moddable.d.ts" preserve="true" />
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
import { bigintToBytes, p256ScalarsInRange, pkcs1Sha256Block } from "./signature-checks";

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
    // The SDK's typings say string | ArrayBuffer; the native (modCrypt.c) takes any buffer view, no copy.
    this.#digest.write(data as unknown as ArrayBuffer);
  }
  close(): Uint8Array {
    const result = new Uint8Array(this.#digest.close());
    this.#digest.reset(); // crypt's close() finalizes but does not reset
    return result;
  }
  digest(): Uint8Array {
    // close(true) keeps the state: modCrypt.c xs_crypt_Digest_close copies the context out before
    // finishing and back after. The SDK's typings/crypt.d.ts declares close() without the argument.
    return new Uint8Array((this.#digest as unknown as { close(more: boolean): ArrayBuffer }).close(true));
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

  #ecdsa(publicKey: Uint8Array, digest: Uint8Array, raw: Uint8Array): boolean {
    if (!p256ScalarsInRange(raw)) return false; // r = s = 0 would meet the point at infinity in ecdsa.js
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
    let expected: Uint8Array;
    try {
      expected = pkcs1Sha256Block(k, digest);
    } catch {
      return false;
    }
    if (signature.length !== k) return false;
    const n = bigint(modulus.subarray(start));
    const s = bigint(signature);
    if (s >= n) return false;
    let em: Uint8Array | undefined;
    try {
      em = bigintToBytes(new RSA(bigint(exponent), n).process(s), k);
    } catch {
      return false;
    }
    return em !== undefined && bytesEqual(em, expected);
  }
}
