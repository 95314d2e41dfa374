/*
 * The signature blocks as espsecure.py writes them: the build server's half of modules/sigblock.ts
 * (which only reads them on the device), kept out of the device's link.
 */
import { crc32 } from "../../modules/otadata";
import {
  V1_TRAILER_SIZE, V2_BLOCK_SIZE, SIG_BLOCK_MAGIC, SIG_BLOCK_VERSION_ECDSA, ECDSA_SHA_256, CURVE_ID_P256, CRC_OFFSET, reverseInto,
} from "../../modules/sigblock";

/** The 68-byte v1 trailer for raw big-endian r||s. */
export function encodeV1Trailer(rs: Uint8Array): Uint8Array {
  if (rs.length !== 64) throw new RangeError("expected 64-byte r||s");
  const out = new Uint8Array(V1_TRAILER_SIZE);
  out.set(rs, 4);
  return out;
}

/** One v2 ECDSA P-256 block: digest (32), public point 0x04||X||Y (65, big-endian), r||s (64, big-endian). */
export function encodeV2EcdsaBlock(digest: Uint8Array, point: Uint8Array, rs: Uint8Array): Uint8Array {
  if (digest.length !== 32 || point.length !== 65 || point[0] !== 4 || rs.length !== 64) throw new RangeError("bad v2 block fields");
  const b = new Uint8Array(V2_BLOCK_SIZE);
  b[0] = SIG_BLOCK_MAGIC;
  b[1] = SIG_BLOCK_VERSION_ECDSA;
  b[2] = ECDSA_SHA_256;
  b.set(digest, 4);
  b[36] = CURVE_ID_P256;
  reverseInto(point.subarray(1, 33), b, 37);
  reverseInto(point.subarray(33, 65), b, 69);
  reverseInto(rs.subarray(0, 32), b, 101);
  reverseInto(rs.subarray(32, 64), b, 133);
  new DataView(b.buffer).setUint32(CRC_OFFSET, crc32(b.subarray(0, CRC_OFFSET)), true);
  return b;
}
