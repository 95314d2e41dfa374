/*
 * Image signatures exactly as espsecure.py `sign_data` writes them (esptool v4/v5,
 * espsecure/__init__.py), verified on the device:
 *
 * v1 (ESP32 Secure Boot v1, `--version 1`): image || u32 LE 0 (version) || r || s, 68 bytes,
 *    r and s big-endian 32 bytes each; ECDSA P-256 over SHA-256 of the image bytes.
 * v2 (Secure Boot v2, `--version 2`, ECDSA P-256 variant): the image padded with 0xFF to a
 *    4 KB multiple, then one 4 KB sector: up to 3 blocks of 1216 bytes, the rest 0xFF.
 *    Block (struct "<BBBx32sB64s64s1031x" + "<I" + 16x):
 *      0 magic 0xE7 | 1 version (0x02 RSA-PSS, 0x03 ECDSA) | 2 hash type (0 SHA-256) | 3 reserved
 *      4 image_digest[32] = SHA-256 of everything before the sector
 *      36 curve id (P-256 = 2) | 37 X[32] Y[32] little-endian | 101 r[32] s[32] little-endian
 *      165..1195 zero | 1196 u32 LE CRC-32 (zlib) of bytes 0..1195 | 1200..1215 zero
 *    Blocks with a bad magic or CRC are skipped, as espsecure and the ROM do. RSA-PSS blocks
 *    are skipped too: Moddable's crypt has no PSS.
 */
import { OtaError, type ErrorCode } from "./errors";
import { crc32 } from "./otadata";
import { bytesEqual, toHex } from "./bytes";
import type { CryptoPort } from "./ports";
import type { TrustedKey } from "./keys";

export const V1_TRAILER_SIZE = 68;
export const SECTOR_SIZE = 4096;
export const V2_BLOCK_SIZE = 1216;
export const V2_MAX_BLOCKS = 3;
export const SIG_BLOCK_MAGIC = 0xe7;
export const SIG_BLOCK_VERSION_RSA = 0x02;
export const SIG_BLOCK_VERSION_ECDSA = 0x03;
export const ECDSA_SHA_256 = 0;
export const CURVE_ID_P256 = 2;
export const CRC_OFFSET = 1196;

export type SigScheme = "v1" | "v2";

export function reverseInto(src: Uint8Array, dst: Uint8Array, at: number): void {
  for (let i = 0; i < src.length; i++) dst[at + src.length - 1 - i] = src[i]!;
}

function reversed(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  reverseInto(src, out, 0);
  return out;
}

export interface V2Block {
  version: number;
  hashType: number;
  digest: Uint8Array;
  /** ECDSA only */
  curveId?: number;
  /** ECDSA P-256 only: 0x04||X||Y big-endian */
  point?: Uint8Array;
  /** ECDSA P-256 only: r||s big-endian */
  rs?: Uint8Array;
}

/** A 1216-byte block -> fields, or null when its magic, version or CRC is wrong (skipped, as espsecure does). */
export function decodeV2Block(b: Uint8Array): V2Block | null {
  if (b.length !== V2_BLOCK_SIZE || b[0] !== SIG_BLOCK_MAGIC) return null;
  if (b[1] !== SIG_BLOCK_VERSION_RSA && b[1] !== SIG_BLOCK_VERSION_ECDSA) return null;
  const crc = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(CRC_OFFSET, true);
  if (crc !== crc32(b.subarray(0, CRC_OFFSET))) return null;
  const block: V2Block = { version: b[1]!, hashType: b[2]!, digest: b.slice(4, 36) };
  if (b[1] === SIG_BLOCK_VERSION_ECDSA && b[2] === ECDSA_SHA_256) {
    block.curveId = b[36]!;
    if (b[36] === CURVE_ID_P256) {
      const point = new Uint8Array(65);
      point[0] = 4;
      point.set(reversed(b.subarray(37, 69)), 1);
      point.set(reversed(b.subarray(69, 101)), 33);
      const rs = new Uint8Array(64);
      rs.set(reversed(b.subarray(101, 133)), 0);
      rs.set(reversed(b.subarray(133, 165)), 32);
      block.point = point;
      block.rs = rs;
    }
  }
  return block;
}

type Reader = (offset: number, target: Uint8Array) => void;

/** Which scheme the file's tail looks like, without checking anything cryptographic. */
export function detectScheme(read: Reader, totalLength: number): SigScheme | null {
  if (totalLength >= 2 * SECTOR_SIZE && totalLength % SECTOR_SIZE === 0) {
    const m = new Uint8Array(1);
    read(totalLength - SECTOR_SIZE, m);
    if (m[0] === SIG_BLOCK_MAGIC) return "v2";
  }
  if (totalLength > V1_TRAILER_SIZE) {
    const v = new Uint8Array(4);
    read(totalLength - V1_TRAILER_SIZE, v);
    if ((v[0]! | v[1]! | v[2]! | v[3]!) === 0) return "v1";
  }
  return null;
}

function digestOf(read: Reader, length: number, crypto: CryptoPort, scratch: Uint8Array): Uint8Array {
  if (scratch.length === 0) throw new RangeError("scratch buffer is empty");
  const h = crypto.sha256();
  for (let off = 0; off < length; ) {
    const n = Math.min(scratch.length, length - off);
    const view = n === scratch.length ? scratch : scratch.subarray(0, n);
    read(off, view);
    h.write(view);
    off += n;
  }
  return h.close();
}

function fail(worst: ErrorCode, notes: string[]): never {
  throw new OtaError(worst, notes.join("; "));
}

/** The signature found at the end of a file, ready to check the image's digest. */
export interface SignatureCheck {
  scheme: SigScheme;
  /** Bytes of the image part (before the v1 trailer or the v2 sector): what the signature covers. */
  imageLength: number;
  /** Check SHA-256 of the first imageLength bytes. Throws SIG_DIGEST/INVALID/UNKNOWN_KEY/REVOKED_KEY. */
  check(digest: Uint8Array): { keyId: string };
}

/**
 * Read and check the form of the signature at the end of the file (`read` reads the file as
 * written in the slot); the image's digest is checked afterwards with `check`, so a caller that
 * reads the image anyway can hash it in the same pass. Throws SIG_MISSING, SIG_FORMAT.
 */
export function readSignature(read: Reader, totalLength: number, keys: readonly TrustedKey[], crypto: CryptoPort, scratch: Uint8Array): SignatureCheck {
  const scheme = detectScheme(read, totalLength);
  if (!scheme) throw new OtaError("SIG_MISSING", "no espsecure v1 trailer or v2 signature sector at the end of the image");
  const ecKeys = keys.filter((k) => k.type === "ecdsa-p256" && k.point);
  if (scheme === "v1") {
    const imageLength = totalLength - V1_TRAILER_SIZE;
    const trailer = new Uint8Array(V1_TRAILER_SIZE);
    read(imageLength, trailer);
    const rs = trailer.subarray(4);
    return {
      scheme,
      imageLength,
      check(digest) {
        let revokedMatch = false;
        for (const k of ecKeys) {
          if (!crypto.verifyEcdsaP256(k.point!, digest, rs)) continue;
          if (!k.revoked) return { keyId: k.id };
          revokedMatch = true;
        }
        if (revokedMatch) throw new OtaError("SIG_REVOKED_KEY", "v1 signature made by a revoked key");
        if (!ecKeys.length) throw new OtaError("SIG_UNKNOWN_KEY", "no ECDSA P-256 key is trusted");
        throw new OtaError("SIG_INVALID", `v1 signature verifies with none of ${ecKeys.length} trusted ECDSA key(s)`);
      },
    };
  }
  const imageLength = totalLength - SECTOR_SIZE;
  const raw = new Uint8Array(V2_BLOCK_SIZE);
  // espsecure writes valid blocks first, then 0xFF to the end of the sector. Holding the rest
  // of the sector to that means no byte of the file can change without a refusal.
  const blocks: V2Block[] = [];
  for (let i = 0; i < V2_MAX_BLOCKS; i++) {
    read(imageLength + i * V2_BLOCK_SIZE, raw);
    const block = decodeV2Block(raw);
    if (!block) break;
    for (let p = CRC_OFFSET + 4; p < V2_BLOCK_SIZE; p++) if (raw[p] !== 0) throw new OtaError("SIG_FORMAT", `block ${i}: padding is not zero`);
    blocks.push(block);
  }
  if (!blocks.length) throw new OtaError("SIG_FORMAT", "signature sector holds no valid block (bad magic or CRC)");
  for (let off = imageLength + blocks.length * V2_BLOCK_SIZE; off < totalLength; ) {
    const n = Math.min(scratch.length, totalLength - off);
    const view = scratch.subarray(0, n);
    read(off, view);
    for (let p = 0; p < n; p++) if (view[p] !== 0xff) throw new OtaError("SIG_FORMAT", `signature sector byte ${off + p - imageLength} after the last valid block is not 0xFF`);
    off += n;
  }
  return {
    scheme,
    imageLength,
    check(digest) {
      const notes: string[] = [];
      let worst: ErrorCode = "SIG_FORMAT";
      const rank: Record<string, number> = { SIG_FORMAT: 0, SIG_UNKNOWN_KEY: 1, SIG_REVOKED_KEY: 2, SIG_INVALID: 3 };
      const note = (code: ErrorCode, text: string) => {
        notes.push(text);
        if (rank[code]! > rank[worst]!) worst = code;
      };
      for (let i = 0; i < blocks.length; i++) {
        const block = blocks[i]!;
        if (!block.point || !block.rs) {
          notes.push(`block ${i}: ${block.version === SIG_BLOCK_VERSION_RSA ? "RSA-PSS" : "ECDSA curve/hash"} not supported`);
          continue;
        }
        if (!bytesEqual(digest, block.digest)) throw new OtaError("SIG_DIGEST", `block ${i}: image digest ${toHex(block.digest).slice(0, 16)}... does not match the image`);
        const key = ecKeys.find((k) => bytesEqual(k.point!, block.point!));
        if (!key) {
          note("SIG_UNKNOWN_KEY", `block ${i}: key ${toHex(block.point.subarray(1, 9))}... not trusted`);
          continue;
        }
        if (key.revoked) {
          note("SIG_REVOKED_KEY", `block ${i}: key ${key.id} revoked`);
          continue;
        }
        if (crypto.verifyEcdsaP256(key.point!, digest, block.rs)) return { keyId: key.id };
        note("SIG_INVALID", `block ${i}: signature by ${key.id} does not verify`);
      }
      if (worst === "SIG_FORMAT" && !notes.length) notes.push("no valid signature block");
      return fail(worst, notes);
    },
  };
}

/**
 * `read` reads the downloaded file (as written in the slot). Returns the length of the image part
 * (before the signature), the scheme and the key that verified.
 * Throws SIG_MISSING/FORMAT/DIGEST/INVALID/UNKNOWN_KEY/REVOKED_KEY.
 */
export function verifyImageSignature(read: Reader, totalLength: number, keys: readonly TrustedKey[], crypto: CryptoPort, scratch: Uint8Array): { scheme: SigScheme; imageLength: number; keyId: string } {
  const sig = readSignature(read, totalLength, keys, crypto, scratch);
  const { keyId } = sig.check(digestOf(read, sig.imageLength, crypto, scratch));
  return { scheme: sig.scheme, imageLength: sig.imageLength, keyId };
}
