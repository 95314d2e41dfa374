/*
 * Trusted public keys on the device: parsed once from the configuration (base64 DER
 * SubjectPublicKeyInfo), identified by a key id = first 8 bytes of SHA-256(SPKI DER) in hex,
 * unless the configuration names one. A revoked key stays in the set so that a signature by
 * it is reported as SIG_REVOKED_KEY instead of SIG_UNKNOWN_KEY.
 */
import { OtaError } from "./errors";
import { fromBase64, toHex } from "./bytes";
import { readTlv, readChildren, contentEquals, integerBytes } from "./der";
import type { CryptoPort } from "./ports";
import { constant } from "./constant";

export type KeyType = "ecdsa-p256" | "rsa-2048";

export interface TrustedKey {
  id: string;
  type: KeyType;
  /** ECDSA: uncompressed point 0x04||X||Y, 65 bytes. */
  point?: Uint8Array;
  /** RSA: big-endian modulus (256 bytes) and exponent. */
  modulus?: Uint8Array;
  exponent?: Uint8Array;
  revoked?: boolean;
}

/** What the configuration holds (modules/config.ts KeyConfig has this shape). */
export interface KeyConfigInput {
  id?: string;
  type: KeyType;
  /** base64 DER SubjectPublicKeyInfo */
  spki: string;
  revoked?: boolean;
}

export type ParsedPublicKey =
  | { type: "ecdsa-p256"; point: Uint8Array }
  | { type: "rsa-2048"; modulus: Uint8Array; exponent: Uint8Array };

const OID_EC_PUBLIC_KEY = constant([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
const OID_P256 = constant([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
const OID_RSA = constant([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]);

/** Key ids: 1..64 characters of [A-Za-z0-9._:-]. */
export function validKeyId(id: unknown): id is string {
  return typeof id === "string" && id.length >= 1 && id.length <= 64 && /^[A-Za-z0-9._:-]+$/.test(id);
}

/**
 * SubjectPublicKeyInfo DER -> key material. Throws KEY_FORMAT (malformed, compressed EC
 * point) and KEY_TYPE (another curve or algorithm, RSA not 2048 bits).
 */
export function parsePublicKeyDer(spki: Uint8Array): ParsedPublicKey {
  try {
    const top = readTlv(spki, 0);
    if (top.tag !== 0x30 || top.end !== spki.length) throw new TypeError("expected one SEQUENCE");
    const [algSeq, bits, extra] = readChildren(spki, top);
    if (!algSeq || !bits || extra || algSeq.tag !== 0x30 || bits.tag !== 0x03) throw new TypeError("not a SubjectPublicKeyInfo");
    const [oid, params] = readChildren(spki, algSeq);
    if (!oid || oid.tag !== 0x06) throw new TypeError("missing algorithm OID");
    if (bits.end - bits.start < 2 || spki[bits.start] !== 0) throw new TypeError("bad BIT STRING");
    const key = spki.subarray(bits.start + 1, bits.end);
    if (contentEquals(spki, oid, OID_EC_PUBLIC_KEY)) {
      if (!params || params.tag !== 0x06 || !contentEquals(spki, params, OID_P256)) throw new OtaError("KEY_TYPE", "EC key on a curve other than P-256");
      if (key.length !== 65 || key[0] !== 0x04) throw new OtaError("KEY_FORMAT", "EC point must be uncompressed (65 bytes)");
      return { type: "ecdsa-p256", point: key.slice() };
    }
    if (contentEquals(spki, oid, OID_RSA)) {
      if (params && (params.tag !== 0x05 || params.end !== params.start)) throw new TypeError("RSA parameters must be NULL");
      const rsaSeq = readTlv(key, 0);
      if (rsaSeq.tag !== 0x30 || rsaSeq.end !== key.length) throw new TypeError("bad RSAPublicKey");
      const [n, e, more] = readChildren(key, rsaSeq);
      if (!n || !e || more) throw new TypeError("bad RSAPublicKey");
      const modulus = integerBytes(key, n);
      const exponent = integerBytes(key, e);
      if (modulus.length !== 256 || !(modulus[0]! & 0x80)) throw new OtaError("KEY_TYPE", `RSA key of ${modulus.length * 8} bits, expected 2048`);
      if (exponent.length > 4 || !(exponent[exponent.length - 1]! & 1)) throw new OtaError("KEY_FORMAT", "bad RSA exponent");
      return { type: "rsa-2048", modulus, exponent };
    }
    throw new OtaError("KEY_TYPE", "only ECDSA P-256 and RSA-2048 keys are supported");
  } catch (e) {
    if (e instanceof OtaError) throw e;
    throw new OtaError("KEY_FORMAT", (e as Error).message);
  }
}

/** First 8 bytes of SHA-256(SPKI DER), as 16 lower-case hex characters. */
export function keyId(spkiDer: Uint8Array, crypto: CryptoPort): string {
  const h = crypto.sha256();
  h.write(spkiDer);
  return toHex(h.close().subarray(0, 8));
}

/**
 * A configured key -> TrustedKey. `crypto` computes the id when the configuration names none.
 * Throws KEY_FORMAT (bad base64/DER, bad id), KEY_TYPE (type differs from the key's).
 */
export function keyFromConfig(config: KeyConfigInput, crypto?: CryptoPort): TrustedKey {
  let der: Uint8Array;
  try {
    der = fromBase64(config.spki);
  } catch {
    throw new OtaError("KEY_FORMAT", "spki is not base64");
  }
  const parsed = parsePublicKeyDer(der);
  if (parsed.type !== config.type) throw new OtaError("KEY_TYPE", `configured as ${config.type} but the key is ${parsed.type}`);
  let id = config.id;
  if (id === undefined) {
    if (!crypto) throw new TypeError("keyFromConfig: no id and no crypto to compute one");
    id = keyId(der, crypto);
  }
  if (!validKeyId(id)) throw new OtaError("KEY_FORMAT", "key id must be 1..64 characters of [A-Za-z0-9._:-]");
  const key: TrustedKey = parsed.type === "ecdsa-p256"
    ? { id, type: parsed.type, point: parsed.point }
    : { id, type: parsed.type, modulus: parsed.modulus, exponent: parsed.exponent };
  if (config.revoked) key.revoked = true;
  return key;
}

/** Verify `signature` over `digest` with one key, by its type. Never throws for bad signatures. */
export function verifyWithKey(key: TrustedKey, digest: Uint8Array, signature: Uint8Array, crypto: CryptoPort): boolean {
  try {
    if (key.type === "ecdsa-p256" && key.point) return crypto.verifyEcdsaP256(key.point, digest, signature);
    if (key.type === "rsa-2048" && key.modulus && key.exponent) return crypto.verifyRsaPkcs1Sha256(key.modulus, key.exponent, digest, signature);
  } catch {
    return false;
  }
  return false;
}
