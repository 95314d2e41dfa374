/*
 * ESP-IDF's pre-encrypted image format (esp_encrypted_img 2.7.1, idf-extra-components): a
 * 512-byte header, then the AES-256-GCM ciphertext of the app image (same length, no padding).
 *
 *   0    magic         4   0x0788B6CF little-endian (first 4 bytes of SHA-256("esp_encrypted_img"))
 *   4    key field   384   RSA-3072: the 32-byte GCM key, RSA PKCS#1 v1.5 (type 2) encrypted
 *                          ECIES-P256: ephemeral server public key X||Y (64, no 0x04 prefix),
 *                          HKDF salt (32), zeros (288)
 *   388  IV           16   GCM IV, 16 bytes (not 12: GCM derives J0 by GHASH over it)
 *   404  bin size      4   ciphertext length, u32 little-endian
 *   408  auth tag     16   GCM tag over the ciphertext, no AAD
 *   424  reserved     88   zeros, ignored
 *
 * Nothing in the file says which scheme made it: the device's key decides (the component is
 * built for one, CONFIG_PRE_ENCRYPTED_OTA_USE_RSA or _ECIES). The ECIES GCM key is
 * HKDF-SHA256(ikm = ECDH X coordinate, salt, info "_esp_enc_img_ecc", 32 bytes). XS-safe:
 * the device side reads the header with these functions; the ciphers are in the ports.
 */
import { OtaError } from "./errors";

export const ENC_MAGIC = 0x0788b6cf;
export const ENC_HEADER_SIZE = 512;
export const ENC_KEY_FIELD_SIZE = 384;
export const ENC_IV_SIZE = 16;
export const ENC_TAG_SIZE = 16;
export const ENC_GCM_KEY_SIZE = 32;
export const ENC_ECC_POINT_SIZE = 64;
export const ENC_KDF_SALT_SIZE = 32;
export const ENC_HKDF_INFO = "_esp_enc_img_ecc";
/** PBKDF2-HMAC-SHA256 salt that turns an eFuse HMAC key into the device's P-256 scalar (2048 rounds). */
export const ENC_PBKDF2_SALT = Uint8Array.from([
  0x0e, 0x21, 0x60, 0x64, 0x2d, 0xae, 0x76, 0xd3, 0x34, 0x48, 0xe4, 0x3d, 0x77, 0x20, 0x12, 0x3d,
  0x9f, 0x3b, 0x1e, 0xce, 0xb8, 0x8e, 0x57, 0x3a, 0x4e, 0x8f, 0x7f, 0xb9, 0x4f, 0xf0, 0xc8, 0x69,
]);
export const ENC_PBKDF2_ITERATIONS = 2048;

const OFF_KEY = 4;
const OFF_IV = OFF_KEY + ENC_KEY_FIELD_SIZE;
const OFF_SIZE = OFF_IV + ENC_IV_SIZE;
const OFF_TAG = OFF_SIZE + 4;

export interface EncHeader {
  /** The 384-byte key field: RSA ciphertext, or point(64) || salt(32) || zeros. */
  keyField: Uint8Array;
  iv: Uint8Array;
  /** Ciphertext (= plaintext) length. */
  binSize: number;
  tag: Uint8Array;
}

/** Throws ENC_MAGIC when the first 4 bytes (if there are 4) are not the magic. */
export function checkEncMagic(head: Uint8Array): void {
  if (head.length >= 4 && readU32(head, 0) !== ENC_MAGIC) throw new OtaError("ENC_MAGIC", `first bytes ${hex4(head)}`);
}

/** The header of `head` (at least its first 512 bytes). Throws ENC_TRUNCATED, ENC_MAGIC. */
export function parseEncHeader(head: Uint8Array): EncHeader {
  checkEncMagic(head);
  if (head.length < ENC_HEADER_SIZE) throw new OtaError("ENC_TRUNCATED", `${head.length} bytes, the header alone is ${ENC_HEADER_SIZE}`);
  return {
    keyField: head.slice(OFF_KEY, OFF_IV),
    iv: head.slice(OFF_IV, OFF_SIZE),
    binSize: readU32(head, OFF_SIZE),
    tag: head.slice(OFF_TAG, OFF_TAG + ENC_TAG_SIZE),
  };
}

/** The 512-byte header for these fields (reserved bytes zero, as esp_enc_img_gen.py writes them). */
export function buildEncHeader(h: EncHeader): Uint8Array {
  if (h.keyField.length !== ENC_KEY_FIELD_SIZE || h.iv.length !== ENC_IV_SIZE || h.tag.length !== ENC_TAG_SIZE) throw new RangeError("header field of the wrong length");
  if (!Number.isInteger(h.binSize) || h.binSize < 0 || h.binSize > 0xffffffff) throw new RangeError("binSize is not a u32");
  const out = new Uint8Array(ENC_HEADER_SIZE);
  writeU32(out, 0, ENC_MAGIC);
  out.set(h.keyField, OFF_KEY);
  out.set(h.iv, OFF_IV);
  writeU32(out, OFF_SIZE, h.binSize);
  out.set(h.tag, OFF_TAG);
  return out;
}

/**
 * The message inside an RSA PKCS#1 v1.5 encryption block (EM = 00 02 PS(>= 8 non-zero) 00 M),
 * checked to be the 32-byte GCM key. Throws ENC_KEY: with the wrong private key the block is
 * noise and fails this check (except with probability about 2^-16 * the length check).
 */
export function unwrapPkcs1v15Key(em: Uint8Array): Uint8Array {
  let bad = em.length !== ENC_KEY_FIELD_SIZE || em[0] !== 0 || em[1] !== 2 ? 1 : 0;
  let sep = 0;
  for (let i = 2; i < em.length; i++) if (sep === 0 && em[i] === 0) sep = i;
  if (sep < 10) bad = 1;
  if (em.length - sep - 1 !== ENC_GCM_KEY_SIZE) bad = 1;
  if (bad) throw new OtaError("ENC_KEY", "RSA PKCS#1 v1.5 unwrap failed: not this device's RSA-3072 key");
  return em.slice(sep + 1);
}

/**
 * GCM's counter block for ciphertext block `block` (0 = the first): J0 with its low 32 bits
 * plus 1 + block, mod 2^32 (inc32, SP 800-38D). Moddable's Mode("CTR") carries through all 128
 * bits instead, so the device sets this block again where the low word wraps and on resume.
 */
export function gcmCounterBlock(j0: Uint8Array, block: number): Uint8Array {
  if (j0.length !== 16 || !Number.isInteger(block) || block < 0) throw new RangeError("J0 is 16 bytes, block a non-negative integer");
  const out = j0.slice();
  writeU32BE(out, 12, (readU32BE(j0, 12) + 1 + block) % 0x100000000);
  return out;
}

/** How many blocks from `block` on (that one included) before the counter's low word wraps to 0. */
export function gcmBlocksBeforeWrap(j0: Uint8Array, block: number): number {
  return 0x100000000 - readU32BE(gcmCounterBlock(j0, block), 12);
}

function readU32BE(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function writeU32BE(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 255;
  b[o + 1] = (v >>> 16) & 255;
  b[o + 2] = (v >>> 8) & 255;
  b[o + 3] = v & 255;
}

function readU32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 255;
  b[o + 1] = (v >>> 8) & 255;
  b[o + 2] = (v >>> 16) & 255;
  b[o + 3] = (v >>> 24) & 255;
}

function hex4(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < 4 && i < b.length; i++) s += (b[i]! < 16 ? "0" : "") + b[i]!.toString(16);
  return s;
}
