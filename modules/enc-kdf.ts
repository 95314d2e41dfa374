/*
 * What an esp_encrypted_img device needs and Moddable's crypt lacks (README, "Device side"),
 * built on the CryptoPort's SHA-256 alone, XS-safe: HMAC-SHA256 (RFC 2104), HKDF-SHA256
 * (RFC 5869: the ECIES GCM key), PBKDF2-HMAC-SHA256 (RFC 8018: the P-256 scalar from the
 * eFuse HMAC key, 2048 rounds) and the on-curve check of the header's ephemeral point, which
 * Moddable's Curve.dh skips and mbedtls_ecp_check_pubkey makes.
 */
import type { CryptoPort, Sha256 } from "./ports";
import { OtaError } from "./errors";
import { utf8Encode } from "./bytes";
import { ENC_GCM_KEY_SIZE, ENC_HKDF_INFO, ENC_PBKDF2_ITERATIONS, ENC_PBKDF2_SALT } from "./enc-image";

const BLOCK = 64;

/** HMAC-SHA256 with a reusable keyed state: the pads are hashed once per key. */
export class HmacSha256 {
  private readonly ipad = new Uint8Array(BLOCK);
  private readonly opad = new Uint8Array(BLOCK);
  private readonly h: Sha256;
  constructor(crypto: CryptoPort, key: Uint8Array) {
    this.h = crypto.sha256();
    let k = key;
    if (k.length > BLOCK) {
      this.h.write(k);
      k = this.h.close();
    }
    for (let i = 0; i < BLOCK; i++) {
      const b = i < k.length ? k[i]! : 0;
      this.ipad[i] = b ^ 0x36;
      this.opad[i] = b ^ 0x5c;
    }
  }
  mac(...parts: Uint8Array[]): Uint8Array {
    this.h.reset();
    this.h.write(this.ipad);
    for (const p of parts) this.h.write(p);
    const inner = this.h.close();
    this.h.write(this.opad);
    this.h.write(inner);
    return this.h.close();
  }
}

/** HKDF-SHA256 (extract then expand), `length` <= 255 * 32. */
export function hkdfSha256(crypto: CryptoPort, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * 32) throw new RangeError("HKDF length out of range");
  const prk = new HmacSha256(crypto, salt.length ? salt : new Uint8Array(32)).mac(ikm);
  const expand = new HmacSha256(crypto, prk);
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 1, o = 0; o < length; i++) {
    t = expand.mac(t, info, Uint8Array.of(i));
    out.set(t.subarray(0, Math.min(32, length - o)), o);
    o += 32;
  }
  return out;
}

/** PBKDF2-HMAC-SHA256, `length` <= 32 (one block: all esp_encrypted_img needs). */
export function pbkdf2Sha256(crypto: CryptoPort, password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Uint8Array {
  if (!Number.isInteger(iterations) || iterations < 1 || !Number.isInteger(length) || length < 1 || length > 32) throw new RangeError("PBKDF2 arguments out of range");
  const prf = new HmacSha256(crypto, password);
  let u = prf.mac(salt, Uint8Array.of(0, 0, 0, 1));
  const t = u.slice();
  for (let i = 1; i < iterations; i++) {
    u = prf.mac(u);
    for (let j = 0; j < 32; j++) t[j]! ^= u[j]!;
  }
  return t.slice(0, length);
}

/** The ECIES GCM key: HKDF-SHA256(ECDH X coordinate, the header's salt, "_esp_enc_img_ecc"). */
export function eciesGcmKey(crypto: CryptoPort, sharedX: Uint8Array, salt: Uint8Array): Uint8Array {
  return hkdfSha256(crypto, sharedX, salt, utf8Encode(ENC_HKDF_INFO), ENC_GCM_KEY_SIZE);
}

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function toBig(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = 0; i < b.length; i++) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

/** Whether X||Y (64 bytes) is a point of P-256: coordinates below p and y^2 = x^3 - 3x + b (mod p). */
export function isP256Point(xy: Uint8Array): boolean {
  if (xy.length !== 64) return false;
  const x = toBig(xy.subarray(0, 32));
  const y = toBig(xy.subarray(32));
  if (x >= P || y >= P) return false;
  return (y * y) % P === (((x * x % P) * x - 3n * x + B) % P + P) % P;
}

/**
 * The P-256 scalar an ESP32 derives from its eFuse HMAC key (big-endian, 32 bytes): PBKDF2 with
 * the component's salt and 2048 rounds. Throws KEY_FORMAT when it is 0 or >= n, as
 * mbedtls_ecp_check_privkey refuses it.
 */
export function eccScalarFromHmacKey(crypto: CryptoPort, hmacKey: Uint8Array): Uint8Array {
  const d = pbkdf2Sha256(crypto, hmacKey, ENC_PBKDF2_SALT, ENC_PBKDF2_ITERATIONS, 32);
  const n = toBig(d);
  if (n === 0n || n >= N) throw new OtaError("KEY_FORMAT", "the HMAC key gives no valid P-256 scalar");
  return d;
}
