/*
 * Test firmware: valid ESP32 app images as esptool elf2image lays them out, with the simulated
 * behaviour embedded so that the bootloader result carries it.
 *
 *   header (24) | seg0 DROM 0x3F400020: esp_app_desc_t (256) + behaviour marker (64) + rodata filler
 *               | seg1 DRAM 0x3FFB0000 (64) | seg2 IRAM 0x40080000 (256, "code")
 *               | zero padding, XOR checksum byte (seed 0xEF) at a 16-byte boundary | SHA-256
 *
 * The marker is ASCII "XSOTA-BEHAVIOR:" + the name, NUL-padded to 64 bytes, right after the app
 * descriptor (image offset 0x120). An image without it (a real IDF build) behaves "healthy".
 * Filler bytes are a deterministic function of (project, version, secure version, chip, behaviour),
 * so two builds of one spec are byte-identical and two versions differ everywhere.
 */
import { createHash } from "node:crypto";
import type { FirmwareBoot } from "../engines/engine";
import { APP_DESC_MAGIC, APP_DESC_OFFSET, APP_DESC_SIZE, CHECKSUM_SEED, IMAGE_MAGIC } from "../../modules/image";

export type Behavior = FirmwareBoot["behavior"];
export const BEHAVIORS: readonly Behavior[] = ["healthy", "fail-diagnostics", "crash-on-boot", "hang"];
/** A regression that shows on one board revision only: its self-test fails there, passes elsewhere. */
const REVISION_SPECIFIC = /^fail-diagnostics@[A-Za-z0-9._-]{1,30}$/;

/** One of BEHAVIORS, or `fail-diagnostics@<revision>` (revision up to 30 of [A-Za-z0-9._-]). */
export function isBehavior(name: string): name is Behavior {
  return (BEHAVIORS as readonly string[]).includes(name) || REVISION_SPECIFIC.test(name);
}
export const BEHAVIOR_OFFSET = APP_DESC_OFFSET + APP_DESC_SIZE;
export const BEHAVIOR_SIZE = 64;
const MARKER = "XSOTA-BEHAVIOR:";

export interface ImageSpec {
  version: string;
  secureVersion?: number;
  project?: string;
  /** Total image size in bytes (rounded up to a multiple of 16: an image always ends on one). Default 64 KB. */
  size?: number;
  behavior?: Behavior;
  /** esp_image_header_t chip id (ESP32 = 0). */
  chipId?: number;
  /** Append the SHA-256 (default true, as IDF builds do). */
  hashAppended?: boolean;
  time?: string;
  date?: string;
  idfVer?: string;
}

const SEG1 = 64;
const SEG2 = 256;
const FIXED = 24 + 3 * 8 + SEG1 + SEG2;
/** Smallest image: segment 0 holds the descriptor and the marker. */
export const MIN_IMAGE_SIZE = (((FIXED + APP_DESC_SIZE + BEHAVIOR_SIZE + 1 + 15) & ~15) + 32);

function putString(out: Uint8Array, offset: number, size: number, text: string, what: string): void {
  const b = new TextEncoder().encode(text);
  if (b.length >= size) throw new RangeError(`${what} '${text}' is longer than ${size - 1} bytes`);
  out.set(b, offset);
}

function fill(out: Uint8Array, seed: Uint8Array): void {
  const n = out.length >> 2;
  const w = new Uint32Array(out.buffer, out.byteOffset, n);
  let s = (seed[0]! | (seed[1]! << 8) | (seed[2]! << 16) | (seed[3]! << 24)) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    w[i] = s >>> 0;
  }
}

/** Build a valid image. Throws RangeError for a bad spec (size below MIN_IMAGE_SIZE, strings too long, unknown behaviour). */
export function buildImage(spec: ImageSpec): Uint8Array {
  const behavior = spec.behavior ?? "healthy";
  if (!isBehavior(behavior)) throw new RangeError(`unknown behavior '${behavior}'`);
  const secureVersion = spec.secureVersion ?? 0;
  if (!Number.isInteger(secureVersion) || secureVersion < 0 || secureVersion > 0xffffffff) throw new RangeError("secureVersion must be a u32");
  const chipId = spec.chipId ?? 0;
  if (!Number.isInteger(chipId) || chipId < 0 || chipId > 0xffff) throw new RangeError("chipId must be a u16");
  const hashAppended = spec.hashAppended ?? true;
  const project = spec.project ?? "xsota";
  const want = ((spec.size ?? 64 * 1024) + 15) & ~15;
  if (want < MIN_IMAGE_SIZE) throw new RangeError(`size ${spec.size} below the minimum ${MIN_IMAGE_SIZE}`);
  const tail = hashAppended ? 32 : 0;
  // (FIXED + seg0 + 1) rounded up to 16 must equal want - tail.
  const seg0 = (want - tail - 1 - FIXED) & ~3;
  const unpadded = FIXED + seg0;
  const padded = (unpadded + 1 + 15) & ~15;
  const total = padded + tail;

  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  out[0] = IMAGE_MAGIC;
  out[1] = 3;
  out[2] = 2; // DIO
  out[3] = 0x20; // 4 MB, 40 MHz
  v.setUint32(4, 0x40080000 + 4, true);
  out[8] = 0xee; // wp_pin disabled
  v.setUint16(12, chipId, true);
  out[14] = 0;
  v.setUint16(15, 0, true);
  v.setUint16(17, 399, true); // max_chip_rev_full v3.99
  out[23] = hashAppended ? 1 : 0;

  let p = 24;
  v.setUint32(p, 0x3f400020, true); v.setUint32(p + 4, seg0, true); p += 8;
  const seg0Start = p;
  const seed = createHash("sha256").update(JSON.stringify([project, spec.version, secureVersion, chipId, behavior])).digest();
  fill(out.subarray(seg0Start, seg0Start + seg0), seed);
  // esp_app_desc_t
  out.fill(0, seg0Start, seg0Start + APP_DESC_SIZE);
  v.setUint32(seg0Start, APP_DESC_MAGIC, true);
  v.setUint32(seg0Start + 4, secureVersion, true);
  putString(out, seg0Start + 16, 32, spec.version, "version");
  putString(out, seg0Start + 48, 32, project, "project");
  putString(out, seg0Start + 80, 16, spec.time ?? "12:00:00", "time");
  putString(out, seg0Start + 96, 16, spec.date ?? "Nov 24 2026", "date");
  putString(out, seg0Start + 112, 32, spec.idfVer ?? "v5.4-xsota-sim", "idf_ver");
  out.set(seed, seg0Start + 144); // app_elf_sha256
  v.setUint16(seg0Start + 178, 99, true); // max_efuse_blk_rev_full
  out[seg0Start + 180] = 16; // mmu_page_size: log2(64 KB)
  // behaviour marker
  out.fill(0, seg0Start + APP_DESC_SIZE, seg0Start + APP_DESC_SIZE + BEHAVIOR_SIZE);
  putString(out, seg0Start + APP_DESC_SIZE, BEHAVIOR_SIZE, MARKER + behavior, "behavior");
  p += seg0;
  v.setUint32(p, 0x3ffb0000, true); v.setUint32(p + 4, SEG1, true); p += 8;
  fill(out.subarray(p, p + SEG1), seed.subarray(4)); p += SEG1;
  v.setUint32(p, 0x40080000, true); v.setUint32(p + 4, SEG2, true); p += 8;
  fill(out.subarray(p, p + SEG2), seed.subarray(8)); p += SEG2;

  out[padded - 1] = checksumOf(out, seg0Start, seg0) ^ checksumOf(out, seg0Start + seg0 + 8, SEG1) ^ checksumOf(out, seg0Start + seg0 + 16 + SEG1, SEG2) ^ CHECKSUM_SEED;
  if (hashAppended) out.set(createHash("sha256").update(out.subarray(0, padded)).digest(), padded);
  return out;
}

function checksumOf(b: Uint8Array, start: number, len: number): number {
  const w = new Int32Array(b.buffer, b.byteOffset + start, len >> 2); // segment data is 4-aligned here
  let x = 0;
  for (let i = 0; i < w.length; i++) x ^= w[i]!;
  return (x ^ (x >>> 8) ^ (x >>> 16) ^ (x >>> 24)) & 0xff;
}

/**
 * The behaviour embedded in an image: from its bytes, or through a reader (e.g. a flash slot).
 * An image without our marker (a real ESP-IDF build) is "healthy".
 */
export function readBehavior(source: Uint8Array | ((offset: number, target: Uint8Array) => void)): Behavior {
  let m: Uint8Array;
  if (source instanceof Uint8Array) {
    if (source.length < BEHAVIOR_OFFSET + BEHAVIOR_SIZE) return "healthy";
    m = source.subarray(BEHAVIOR_OFFSET, BEHAVIOR_OFFSET + BEHAVIOR_SIZE);
  } else {
    m = new Uint8Array(BEHAVIOR_SIZE);
    source(BEHAVIOR_OFFSET, m);
  }
  let end = 0;
  while (end < m.length && m[end] !== 0) end++;
  const text = String.fromCharCode(...m.subarray(0, end));
  if (!text.startsWith(MARKER)) return "healthy";
  const name = text.slice(MARKER.length);
  return isBehavior(name) ? name : "healthy";
}
