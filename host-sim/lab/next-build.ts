/*
 * A "next build" of an app image, for delta tests and the demo: the same bytes as `base`
 * with a new version (and secure_version) in its esp_app_desc_t and, like one changed module,
 * `changed` bytes of segment 0 rewritten; the XOR checksum and the appended SHA-256 are then
 * recomputed, so the result is a valid image the bootloader accepts. Two builds made this way
 * differ in a few KB, which is what a delta is for (images from image-builder differ everywhere).
 */
import { createHash } from "node:crypto";
import { APP_DESC_OFFSET, CHECKSUM_SEED, HASH_LEN, IMAGE_HEADER_SIZE, SEGMENT_HEADER_SIZE } from "../../modules/image";

export interface NextBuildOptions {
  version: string;
  secureVersion?: number;
  /** Bytes of segment 0 (after the app descriptor) to rewrite; default 2048. */
  changed?: number;
  /** Where in segment 0 the change starts, as a share of it (default 0.5). */
  at?: number;
}

const u32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

/** Throws RangeError when `base` is not a plain app image (segments past its end). */
export function nextBuild(base: Uint8Array, o: NextBuildOptions): Uint8Array {
  const out = base.slice();
  const count = out[1]!;
  const hashAppended = out[23] === 1;
  const seg0Data = IMAGE_HEADER_SIZE + SEGMENT_HEADER_SIZE;
  const seg0Len = u32(out, IMAGE_HEADER_SIZE + 4);
  // The app descriptor: version[32] at +16, secure_version at +4.
  const v = new TextEncoder().encode(o.version);
  if (v.length >= 32) throw new RangeError("version longer than 31 bytes");
  out.fill(0, APP_DESC_OFFSET + 16, APP_DESC_OFFSET + 48);
  out.set(v, APP_DESC_OFFSET + 16);
  if (o.secureVersion !== undefined) new DataView(out.buffer, out.byteOffset).setUint32(APP_DESC_OFFSET + 4, o.secureVersion, true);
  // One changed "module": deterministic bytes from the version, inside segment 0's filler.
  const changed = Math.min(o.changed ?? 2048, seg0Len - 512);
  const start = seg0Data + 512 + Math.floor((seg0Len - 512 - changed) * (o.at ?? 0.5));
  const seed = createHash("sha256").update(`next-build:${o.version}`).digest();
  for (let i = 0; i < changed; i++) out[start + i] = seed[i % 32]! ^ (i * 7);
  // Checksum over every segment's data, at the last byte of the padding to 16.
  let p = IMAGE_HEADER_SIZE;
  let x = CHECKSUM_SEED;
  for (let s = 0; s < count; s++) {
    const len = u32(out, p + 4);
    p += SEGMENT_HEADER_SIZE;
    if (p + len > out.length) throw new RangeError("segment past the end of the image");
    for (let i = 0; i < len; i++) x ^= out[p + i]!;
    p += len;
  }
  const checksumAt = p + (15 - (p % 16));
  out[checksumAt] = x;
  if (hashAppended) out.set(createHash("sha256").update(out.subarray(0, checksumAt + 1)).digest(), checksumAt + 1);
  if (hashAppended && checksumAt + 1 + HASH_LEN !== out.length) throw new RangeError("bytes after the appended SHA-256");
  return out;
}
