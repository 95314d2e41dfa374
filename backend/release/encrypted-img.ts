/*
 * Pre-encrypted images on the build server, byte-compatible with ESP-IDF's esp_encrypted_img
 * (its esp_enc_img_gen.py writes and reads the same files): the header layout is in
 * modules/enc-image.ts. Two ways to wrap the AES-256-GCM key, chosen by the device key:
 *  - rsa3072: a random key, RSA PKCS#1 v1.5 encrypted to the device's RSA-3072 public key
 *    (not OAEP: padding.PKCS1v15() in the tool, PSA_ALG_RSA_PKCS1V15_CRYPT in the component);
 *  - ecies-p256: an ephemeral P-256 key per file, ECDH with the device's public key, then
 *    HKDF-SHA256(X coordinate, random 32-byte salt, "_esp_enc_img_ecc") = the GCM key.
 * Node's privateDecrypt refuses PKCS#1 v1.5 (CVE-2023-46809), so the RSA unwrap is a raw RSA
 * operation and the padding check of modules/enc-image.ts, the check the device makes.
 */
import {
  constants, createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman,
  generateKeyPairSync, hkdfSync, pbkdf2Sync, privateDecrypt, publicEncrypt, randomBytes, type KeyObject,
} from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import { OtaError } from "../../modules/errors";
import {
  buildEncHeader, parseEncHeader, unwrapPkcs1v15Key, ENC_ECC_POINT_SIZE, ENC_GCM_KEY_SIZE, ENC_HEADER_SIZE, ENC_HKDF_INFO,
  ENC_IV_SIZE, ENC_KDF_SALT_SIZE, ENC_KEY_FIELD_SIZE, ENC_PBKDF2_ITERATIONS, ENC_PBKDF2_SALT, type EncHeader,
} from "../../modules/enc-image";
import type { ManifestEncryption } from "../../modules/manifest";
import { toHex } from "../../modules/bytes";
import { sha256 } from "../crypto";

export type EncScheme = "rsa3072" | "ecies-p256";
export const ENC_SCHEMES: readonly EncScheme[] = ["rsa3072", "ecies-p256"];

export interface EncryptOptions {
  /** The device's public key (SPKI PEM; a private key PEM gives its public half). */
  publicKey: string | KeyObject;
  /** Defaults to the key's type; a mismatch is KEY_TYPE. */
  scheme?: EncScheme;
}

export interface DecryptOptions {
  /** Refuse a header announcing more than this many bytes (the slot size), before any work. */
  maxSize?: number;
}

export interface Decrypted {
  plaintext: Uint8Array;
  scheme: EncScheme;
  header: EncHeader;
}

/** The scheme a key (public or private) belongs to. Throws KEY_TYPE. */
export function schemeOfKey(key: KeyObject): EncScheme {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === "rsa" && d?.modulusLength === 3072) return "rsa3072";
  if (key.asymmetricKeyType === "ec" && d?.namedCurve === "prime256v1") return "ecies-p256";
  const what = key.asymmetricKeyType === "rsa" ? `RSA-${d?.modulusLength}` : key.asymmetricKeyType === "ec" ? `EC ${d?.namedCurve}` : String(key.asymmetricKeyType);
  throw new OtaError("KEY_TYPE", `${what}: esp_encrypted_img takes RSA-3072 or P-256 (ECIES) keys`);
}

/** A public key from PEM (a private key PEM gives its public half). Throws KEY_FORMAT. */
export function publicKeyOf(k: string | KeyObject): KeyObject {
  if (typeof k !== "string") return k.type === "private" ? createPublicKey(k) : k;
  try {
    return createPublicKey(k);
  } catch (e) {
    throw new OtaError("KEY_FORMAT", `not a public or private key PEM (${(e as Error).message})`);
  }
}

function asPrivateKey(k: string | KeyObject): KeyObject {
  if (typeof k !== "string") return k;
  try {
    return createPrivateKey(k);
  } catch (e) {
    throw new OtaError("KEY_FORMAT", `not a private key PEM (${(e as Error).message})`);
  }
}

const rawPoint = (pub: KeyObject) => new Uint8Array(pub.export({ type: "spki", format: "der" })).slice(-ENC_ECC_POINT_SIZE);

function pointKey(xy: Uint8Array): KeyObject {
  const b = Buffer.from(xy);
  return createPublicKey({ key: { kty: "EC", crv: "P-256", x: b.subarray(0, 32).toString("base64url"), y: b.subarray(32).toString("base64url") }, format: "jwk" });
}

const hkdf = (secret: Uint8Array, salt: Uint8Array) =>
  new Uint8Array(hkdfSync("sha256", secret, salt, Buffer.from(ENC_HKDF_INFO, "latin1"), ENC_GCM_KEY_SIZE));

/** `image` as an esp_encrypted_img file for the device holding the private half of `publicKey`. */
export function encryptImage(image: Uint8Array, opts: EncryptOptions): Uint8Array {
  if (image.length > 0xffffffff) throw new RangeError("an esp_encrypted_img file holds at most 4 GiB - 1");
  const pub = publicKeyOf(opts.publicKey);
  const scheme = schemeOfKey(pub);
  if (opts.scheme && opts.scheme !== scheme) throw new OtaError("KEY_TYPE", `scheme ${opts.scheme} asked for, but the key is for ${scheme}`);
  const keyField = new Uint8Array(ENC_KEY_FIELD_SIZE);
  let gcmKey: Uint8Array;
  if (scheme === "rsa3072") {
    gcmKey = new Uint8Array(randomBytes(ENC_GCM_KEY_SIZE));
    keyField.set(publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, gcmKey));
  } else {
    const eph = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const salt = new Uint8Array(randomBytes(ENC_KDF_SALT_SIZE));
    gcmKey = hkdf(diffieHellman({ privateKey: eph.privateKey, publicKey: pub }), salt);
    keyField.set(rawPoint(eph.publicKey), 0);
    keyField.set(salt, ENC_ECC_POINT_SIZE);
  }
  const iv = new Uint8Array(randomBytes(ENC_IV_SIZE));
  const cipher = createCipheriv("aes-256-gcm", gcmKey, iv);
  const body = Buffer.concat([cipher.update(image), cipher.final()]);
  const header = buildEncHeader({ keyField, iv, binSize: image.length, tag: new Uint8Array(cipher.getAuthTag()) });
  const out = new Uint8Array(ENC_HEADER_SIZE + body.length);
  out.set(header, 0);
  out.set(body, ENC_HEADER_SIZE);
  return out;
}

/** The GCM key in `header`, opened with the device's private key. Throws ENC_KEY, KEY_TYPE. */
export function openGcmKey(header: EncHeader, privateKey: string | KeyObject): { key: Uint8Array; scheme: EncScheme } {
  const priv = asPrivateKey(privateKey);
  const scheme = schemeOfKey(priv);
  if (scheme === "rsa3072") {
    let em: Uint8Array;
    try {
      em = new Uint8Array(privateDecrypt({ key: priv, padding: constants.RSA_NO_PADDING }, header.keyField));
    } catch (e) {
      // another key's block may be larger than this key's modulus: OpenSSL refuses it outright
      // ("data too large for modulus"), which is the wrong key as surely as a bad unwrap is
      throw new OtaError("ENC_KEY", `RSA-3072 unwrap failed (${(e as Error).message}): not the key this file was encrypted for`);
    }
    return { key: unwrapPkcs1v15Key(em), scheme };
  }
  let server: KeyObject;
  try {
    server = pointKey(header.keyField.subarray(0, ENC_ECC_POINT_SIZE));
  } catch {
    throw new OtaError("ENC_KEY", "the header's ephemeral key is not a P-256 point: not an ECIES file (an RSA-3072 one?)");
  }
  const salt = header.keyField.subarray(ENC_ECC_POINT_SIZE, ENC_ECC_POINT_SIZE + ENC_KDF_SALT_SIZE);
  return { key: hkdf(diffieHellman({ privateKey: priv, publicKey: server }), salt), scheme };
}

/**
 * The plaintext of an esp_encrypted_img file, checked as the device checks it, in its order:
 * ENC_MAGIC, ENC_TRUNCATED (header), ENC_OVERSIZED (over maxSize), ENC_KEY, then the length
 * against the header (ENC_TRUNCATED, ENC_OVERSIZED: esp_encrypted_img_decrypt_end fails both),
 * then the tag (ENC_TAG). With ECIES a file for another device key is ENC_TAG: the format has
 * no key check value, so the wrong key only shows as a tag that does not verify.
 */
export function decryptImage(file: Uint8Array, privateKey: string | KeyObject, opts: DecryptOptions = {}): Decrypted {
  const header = parseEncHeader(file.subarray(0, ENC_HEADER_SIZE));
  if (opts.maxSize !== undefined && header.binSize > opts.maxSize) throw new OtaError("ENC_OVERSIZED", `the header announces ${header.binSize} bytes, at most ${opts.maxSize} allowed`);
  const { key, scheme } = openGcmKey(header, privateKey);
  const body = file.subarray(ENC_HEADER_SIZE);
  if (body.length < header.binSize) throw new OtaError("ENC_TRUNCATED", `${body.length} of ${header.binSize} ciphertext bytes`);
  if (body.length > header.binSize) throw new OtaError("ENC_OVERSIZED", `${body.length - header.binSize} bytes after the ${header.binSize} the header announces`);
  const decipher = createDecipheriv("aes-256-gcm", key, header.iv);
  decipher.setAuthTag(header.tag);
  const plain = decipher.update(body);
  try {
    decipher.final();
  } catch {
    throw new OtaError("ENC_TAG", scheme === "ecies-p256" ? "altered file, or encrypted for another device key" : "the file was altered");
  }
  return { plaintext: new Uint8Array(plain), scheme, header };
}

/**
 * The scheme that made a file, from its header alone: an ECIES key field is a P-256 point, a
 * salt and 288 zero bytes; an RSA-3072 one is a number below the modulus with no such run of
 * zeros (a chance of 2^-2304). Throws ENC_MAGIC, ENC_TRUNCATED.
 */
export function schemeOfFile(file: Uint8Array): EncScheme {
  const h = parseEncHeader(file.subarray(0, ENC_HEADER_SIZE));
  const zeros = h.keyField.subarray(ENC_ECC_POINT_SIZE + ENC_KDF_SALT_SIZE).every((b) => b === 0);
  if (!zeros) return "rsa3072";
  try {
    pointKey(h.keyField.subarray(0, ENC_ECC_POINT_SIZE));
    return "ecies-p256";
  } catch {
    throw new OtaError("ENC_KEY", "the key field is neither an RSA-3072 block nor a P-256 point");
  }
}

/**
 * The manifest's `encryption` entry for `file`, the encryption of `plain`: the header's size
 * must be the plain image's (the key is not needed: `xsota encrypt --check-key` checks the
 * decryption). Throws MANIFEST_FIELD, ENC_MAGIC, ENC_TRUNCATED, ENC_OVERSIZED, ENC_KEY.
 */
export function encryptionEntry(file: Uint8Array, plain: Uint8Array): ManifestEncryption {
  const h = parseEncHeader(file.subarray(0, ENC_HEADER_SIZE));
  if (h.binSize !== plain.length) throw new OtaError("MANIFEST_FIELD", `encryption: the encrypted file holds ${h.binSize} bytes, the image has ${plain.length}: not its encryption`);
  if (file.length !== ENC_HEADER_SIZE + h.binSize) throw new OtaError(file.length < ENC_HEADER_SIZE + h.binSize ? "ENC_TRUNCATED" : "ENC_OVERSIZED", `${file.length} bytes, the header says ${ENC_HEADER_SIZE + h.binSize}`);
  return { format: "esp_encrypted_img", scheme: schemeOfFile(file), plainSize: plain.length, plainSha256: toHex(sha256(plain)) };
}

export { nodeGcmDecrypt } from "../crypto";

/** A new device key pair for a scheme: private PEM (PKCS#8) and public PEM (SPKI). */
export function generateDeviceKey(scheme: EncScheme): { privateKey: KeyObject; publicKey: KeyObject } {
  return scheme === "rsa3072"
    ? generateKeyPairSync("rsa", { modulusLength: 3072, publicExponent: 0x10001 })
    : generateKeyPairSync("ec", { namedCurve: "prime256v1" });
}

/**
 * The P-256 key an ESP32 derives from its eFuse HMAC key (esp_enc_img_gen.py
 * --generate_ecc_key writes that key as device_hmac_key.bin): d = PBKDF2-HMAC-SHA256(hmac key,
 * fixed salt, 2048 rounds, 32 bytes) read big-endian, refused when not in [1, n-1] as
 * mbedtls_ecp_check_privkey does. Throws KEY_FORMAT.
 */
export function deviceKeyFromHmacKey(hmacKey: Uint8Array): { privateKey: KeyObject; publicKey: KeyObject } {
  if (hmacKey.length !== 32) throw new OtaError("KEY_FORMAT", `an eFuse HMAC key is 32 bytes, not ${hmacKey.length}`);
  const d = new Uint8Array(pbkdf2Sync(hmacKey, ENC_PBKDF2_SALT, ENC_PBKDF2_ITERATIONS, 32, "sha256"));
  const n = p256.Point.CURVE().n;
  const dn = BigInt("0x" + Buffer.from(d).toString("hex"));
  if (dn === 0n || dn >= n) throw new OtaError("KEY_FORMAT", "this HMAC key gives no valid P-256 scalar (the device refuses it too)");
  const q = p256.getPublicKey(d, false);
  const b64 = (x: Uint8Array) => Buffer.from(x).toString("base64url");
  const jwk = { kty: "EC", crv: "P-256", d: b64(d), x: b64(q.subarray(1, 33)), y: b64(q.subarray(33)) };
  const privateKey = createPrivateKey({ key: jwk, format: "jwk" });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}
