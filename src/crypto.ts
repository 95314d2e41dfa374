/// <reference path="./types/moddable.d.ts" preserve="true" />
/*
 * CryptoPort on Moddable's crypt modules (modules/crypt/digest/crypt.js, modules/crypt/etc/{ecdsa,curve,rsa}.js,
 * modules/crypt/arith/ecp.js): native SHA-256, ECDSA P-256 and the RSA public operation.
 * RSA PKCS#1 v1.5 is checked by encoding the expected block and comparing (RFC 8017 8.2.2):
 * pkcs1_5.js's verify() ignores the DigestInfo OID and the padding length.
 */
import { Digest, BlockCipher, Mode, GHASH } from "crypt";
import ECDSA from "ecdsa";
import Curve from "curve";
import ECPoint from "ecp";
import RSA from "rsa";
import type { CryptoPort, EncCipherPort, GcmDecrypt, RsaPrivateKey, Sha256 } from "../modules/ports";
import { GcmOverCtr, type GcmPrimitives } from "../modules/enc-gcm";
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

/** GCM's primitives on Moddable's crypt: AES-256 (BlockCipher), CTR (Mode, 128-bit carry: enc-gcm.ts resets it), GHASH. */
class ModdableGcmPrimitives implements GcmPrimitives {
  readonly #aes: BlockCipher;
  readonly #ctr: Mode;
  constructor(key: Uint8Array) {
    this.#aes = new BlockCipher("AES", buffer(key));
    this.#ctr = new Mode("CTR", this.#aes);
  }
  encryptBlock(block: Uint8Array): Uint8Array {
    return new Uint8Array(this.#aes.encrypt(buffer(block)));
  }
  ctr(counter: Uint8Array, input: Uint8Array, output: Uint8Array): void {
    this.#ctr.setIV(buffer(counter));
    this.#ctr.decrypt(input, output);
  }
  ghash(h: Uint8Array): { write(blocks: Uint8Array): void; close(): Uint8Array } {
    const g = new GHASH(buffer(h));
    return { write: (blocks) => g.write(blocks), close: () => new Uint8Array(g.close()) };
  }
}

/** esp_encrypted_img's ciphers (issue 31): rsa.js with CRT, curve.js's dh (the caller checks the point), GCM over CTR + GHASH. */
class ModdableEncCipher implements EncCipherPort {
  rsaPrivateRaw(key: RsaPrivateKey, block: Uint8Array): Uint8Array {
    const n = bigint(key.n);
    const c = bigint(block);
    if (c >= n) throw new RangeError("RSA input not below the modulus");
    const m = new RSA(bigint(key.d), n, bigint(key.p), bigint(key.q), bigint(key.dp), bigint(key.dq), bigint(key.qi)).process(c);
    const out = bigintToBytes(m, key.n.length);
    if (!out) throw new RangeError("RSA output longer than the modulus");
    return out;
  }
  ecdhP256(d: Uint8Array, xy: Uint8Array): Uint8Array {
    const p = new Uint8Array(65);
    p[0] = 4;
    p.set(xy, 1);
    return new Uint8Array(new Curve("secp256r1").dh(buffer(d), p.buffer as ArrayBuffer)).slice(1, 33);
  }
  aesGcmDecrypt(key: Uint8Array, iv: Uint8Array): GcmDecrypt {
    return new GcmOverCtr(new ModdableGcmPrimitives(key), iv);
  }
}

export class ModdableCrypto implements CryptoPort {
  #p256: Curve | undefined;
  readonly enc: EncCipherPort = new ModdableEncCipher();

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
