/*
 * The ESP app image format, read side (ESP-IDF components/bootloader_support/include/esp_app_format.h,
 * components/esp_app_format/include/esp_app_desc.h, src/esp_image_format.c; esptool bin_image.py):
 *
 *   esp_image_header_t (24 bytes, little-endian):
 *     u8 magic 0xE9 @0, u8 segment_count @1, u8 spi_mode @2, u8 spi_speed:4|spi_size:4 @3,
 *     u32 entry_addr @4, u8 wp_pin @8, u8 spi_pin_drv[3] @9, u16 chip_id @12, u8 min_chip_rev @14,
 *     u16 min_chip_rev_full @15, u16 max_chip_rev_full @17, u8 reserved[4] @19, u8 hash_appended @23
 *   then segment_count x { u32 load_addr; u32 data_len } + data (data_len % 4 == 0)
 *   then zero padding so that (length + 1) % 16 == 0, the XOR checksum byte (seed 0xEF) last,
 *   then, if hash_appended, SHA-256 of every byte before it.
 *   esp_app_desc_t (256 bytes) opens segment 0, so it sits at image offset 0x20:
 *     u32 magic 0xABCD5432 @0, u32 secure_version @4, reserv1[2], version[32] @16,
 *     project_name[32] @48, time[16] @80, date[16] @96, idf_ver[32] @112, app_elf_sha256[32] @144 ...
 */
import type { CryptoPort } from "./ports";
import { OtaError } from "./errors";
import { utf8Decode } from "./bytes";
import { constant } from "./constant";

export const IMAGE_MAGIC = 0xe9;
export const APP_DESC_MAGIC = 0xabcd5432;
export const IMAGE_HEADER_SIZE = 24;
export const SEGMENT_HEADER_SIZE = 8;
export const APP_DESC_OFFSET = 0x20;
export const APP_DESC_SIZE = 256;
export const MAX_SEGMENTS = 16;
export const CHECKSUM_SEED = 0xef;
export const HASH_LEN = 32;
/** ESP_IMAGE_MAX_FLASH_ADDR_SIZE: a segment length at or above 16 MB is refused. */
const MAX_SEGMENT_LEN = 16 * 1024 * 1024;
const MMU_PAGE = 0x10000;

export const ChipId = constant({ ESP32: 0, ESP32S2: 2, ESP32C3: 5, ESP32S3: 9, ESP32C2: 0xc, ESP32C6: 0xd, ESP32H2: 0x10 } as const);

export interface ImageHeader {
  magic: 0xe9;
  segmentCount: number;
  spiMode: number;
  spiSpeedSize: number;
  entryAddr: number;
  chipId: number;
  minChipRev: number;
  hashAppended: boolean;
}

export interface AppDesc {
  magic: number;
  secureVersion: number;
  version: string;
  projectName: string;
  time: string;
  date: string;
  idfVer: string;
  appElfSha256: Uint8Array;
}

export interface ImageInfo {
  header: ImageHeader;
  appDesc: AppDesc;
  /** bytes incl. checksum padding and appended SHA */
  length: number;
}

function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/** A C char[n] field: up to the first NUL; bytes that are not UTF-8 become U+FFFD (IDF does not care). */
function cString(b: Uint8Array, start: number, size: number): string {
  let end = start;
  while (end < start + size && b[end] !== 0) end++;
  try {
    return utf8Decode(b, start, end);
  } catch {
    let s = "";
    for (let i = start; i < end; i++) s += b[i]! < 0x80 ? String.fromCharCode(b[i]!) : "\ufffd";
    return s;
  }
}

/** Decode the 24-byte esp_image_header_t. Throws IMAGE_TRUNCATED, IMAGE_MAGIC, IMAGE_SEGMENTS. */
export function parseImageHeader(b: Uint8Array): ImageHeader {
  if (b.length < IMAGE_HEADER_SIZE) throw new OtaError("IMAGE_TRUNCATED", `header needs ${IMAGE_HEADER_SIZE} bytes, have ${b.length}`);
  if (b[0] !== IMAGE_MAGIC) throw new OtaError("IMAGE_MAGIC", `first byte 0x${b[0]!.toString(16)}`);
  const segmentCount = b[1]!;
  if (segmentCount === 0 || segmentCount > MAX_SEGMENTS) throw new OtaError("IMAGE_SEGMENTS", `segment count ${segmentCount} (1..${MAX_SEGMENTS})`);
  return {
    magic: IMAGE_MAGIC,
    segmentCount,
    spiMode: b[2]!,
    spiSpeedSize: b[3]!,
    entryAddr: u32(b, 4),
    chipId: b[12]! | (b[13]! << 8),
    minChipRev: b[14]!,
    hashAppended: b[23] === 1,
  };
}

/** Decode esp_app_desc_t from its 256 bytes. Throws IMAGE_APP_DESC when the magic word is wrong. */
export function parseAppDesc(b: Uint8Array, o = 0): AppDesc {
  if (b.length - o < APP_DESC_SIZE) throw new OtaError("IMAGE_TRUNCATED", "esp_app_desc_t needs 256 bytes");
  const magic = u32(b, o);
  if (magic !== APP_DESC_MAGIC) throw new OtaError("IMAGE_APP_DESC", `magic 0x${magic.toString(16)}, want 0xabcd5432`);
  return {
    magic,
    secureVersion: u32(b, o + 4),
    version: cString(b, o + 16, 32),
    projectName: cString(b, o + 48, 32),
    time: cString(b, o + 80, 16),
    date: cString(b, o + 96, 16),
    idfVer: cString(b, o + 112, 32),
    appElfSha256: b.slice(o + 144, o + 176),
  };
}

/** From the first bytes of an image (>= 0x20 + 256). Throws IMAGE_MAGIC, IMAGE_SEGMENTS, IMAGE_APP_DESC, IMAGE_TRUNCATED. */
export function parseImageStart(first: Uint8Array): { header: ImageHeader; appDesc: AppDesc } {
  const header = parseImageHeader(first);
  if (first.length < APP_DESC_OFFSET + APP_DESC_SIZE) {
    throw new OtaError("IMAGE_TRUNCATED", `need ${APP_DESC_OFFSET + APP_DESC_SIZE} bytes to read esp_app_desc_t, have ${first.length}`);
  }
  checkSegmentHeader(0, u32(first, 24), u32(first, 28), APP_DESC_OFFSET);
  return { header, appDesc: parseAppDesc(first, APP_DESC_OFFSET) };
}

/** ESP32 flash-mapped ranges (DROM, IROM): their load address must match the flash offset modulo the 64 KB MMU page. */
function isMapped(addr: number): boolean {
  return (addr >= 0x3f400000 && addr < 0x3f800000) || (addr >= 0x400d0000 && addr < 0x40400000);
}

/** verify_segment_header of esp_image_format.c. `dataOffset` is the segment data's offset in the image. */
function checkSegmentHeader(index: number, loadAddr: number, len: number, dataOffset: number): void {
  if (len % 4 !== 0 || len >= MAX_SEGMENT_LEN) throw new OtaError("IMAGE_SEGMENTS", `segment ${index}: invalid length 0x${len.toString(16)}`);
  if (index === 0 && len < APP_DESC_SIZE) throw new OtaError("IMAGE_APP_DESC", `segment 0 is ${len} bytes, too short for esp_app_desc_t`);
  if (isMapped(loadAddr) && loadAddr % MMU_PAGE !== dataOffset % MMU_PAGE) {
    throw new OtaError("IMAGE_SEGMENTS", `segment ${index}: load address 0x${loadAddr.toString(16)} does not match data offset 0x${dataOffset.toString(16)}`);
  }
}

/**
 * XOR of `len` bytes of `b` from 0 into `acc` (the image checksum), folded word-wise when aligned.
 * Four accumulators: the loop runs a quarter as many times (half the time on V8, and a quarter
 * less compute in XS, which pays for every loop test and increment).
 */
export function xorBytes(b: Uint8Array, len: number, acc: number): number {
  if ((b.byteOffset & 3) === 0 && (len & 3) === 0) {
    const w = new Int32Array(b.buffer, b.byteOffset, len >> 2);
    const n = w.length;
    const n4 = n & ~3;
    let x0 = 0, x1 = 0, x2 = 0, x3 = 0;
    let i = 0;
    for (; i < n4; i += 4) {
      x0 ^= w[i]!;
      x1 ^= w[i + 1]!;
      x2 ^= w[i + 2]!;
      x3 ^= w[i + 3]!;
    }
    for (; i < n; i++) x0 ^= w[i]!;
    const x = x0 ^ x1 ^ x2 ^ x3;
    return acc ^ ((x ^ (x >>> 8) ^ (x >>> 16) ^ (x >>> 24)) & 0xff);
  }
  for (let i = 0; i < len; i++) acc ^= b[i]!;
  return acc;
}

/**
 * Full ROM/bootloader validation (esp_image_verify) reading through `read(offset, target)`; `scratch`
 * (caller-owned, >= 512 bytes, a multiple of 4 is fastest) is the read buffer. `limit` = bytes
 * available (slot size or file length). Chip id is not checked here: compare `header.chipId` yourself.
 * The image is read once, in order from offset 0. `prefixDigest`, when given, supplies the SHA-256
 * of the first `length` bytes for the appended-hash check (a caller already hashing those same
 * reads); without it the image is hashed here. It may use `scratch`.
 * Throws IMAGE_MAGIC, IMAGE_SEGMENTS, IMAGE_APP_DESC, IMAGE_TRUNCATED, IMAGE_CHECKSUM, IMAGE_HASH;
 * RangeError for a scratch buffer under 512 bytes.
 */
export function validateImage(read: (offset: number, target: Uint8Array) => void, limit: number, crypto: CryptoPort, scratch: Uint8Array, prefixDigest?: (length: number) => Uint8Array): ImageInfo {
  if (scratch.length < 512) throw new RangeError("scratch must be at least 512 bytes");
  const chunkMax = scratch.length & ~3;
  const need = (offset: number, n: number, what: string) => {
    if (offset + n > limit) throw new OtaError("IMAGE_TRUNCATED", `${what} at ${offset}+${n} exceeds ${limit} bytes`);
  };
  need(0, IMAGE_HEADER_SIZE, "image header");
  const hdrBytes = scratch.subarray(0, IMAGE_HEADER_SIZE);
  read(0, hdrBytes);
  const header = parseImageHeader(hdrBytes);
  const sha = header.hashAppended && !prefixDigest ? crypto.sha256() : undefined;
  sha?.write(hdrBytes);

  let checksum = CHECKSUM_SEED;
  let pos = IMAGE_HEADER_SIZE;
  let appDesc: AppDesc | undefined;
  for (let i = 0; i < header.segmentCount; i++) {
    need(pos, SEGMENT_HEADER_SIZE, `segment ${i} header`);
    const sh = scratch.subarray(0, SEGMENT_HEADER_SIZE);
    read(pos, sh);
    sha?.write(sh);
    const loadAddr = u32(sh, 0);
    const len = u32(sh, 4);
    pos += SEGMENT_HEADER_SIZE;
    checkSegmentHeader(i, loadAddr, len, pos);
    need(pos, len, `segment ${i} data`);
    let done = 0;
    while (done < len) {
      const n = Math.min(chunkMax, len - done);
      const chunk = n === scratch.length ? scratch : scratch.subarray(0, n);
      read(pos + done, chunk);
      if (i === 0 && done === 0) appDesc = parseAppDesc(chunk, 0);
      checksum = xorBytes(chunk, n, checksum);
      sha?.write(chunk);
      done += n;
    }
    pos += len;
  }

  const padded = (pos + 1 + 15) & ~15;
  need(pos, padded - pos, "checksum");
  const tail = scratch.subarray(0, padded - pos);
  read(pos, tail);
  const stored = tail[tail.length - 1]!;
  if (stored !== checksum) throw new OtaError("IMAGE_CHECKSUM", `calculated 0x${checksum.toString(16)}, stored 0x${stored.toString(16)}`);
  let length = padded;
  if (header.hashAppended) {
    sha?.write(tail);
    need(padded, HASH_LEN, "appended SHA-256");
    const digest = sha ? sha.close() : prefixDigest!(padded);
    const storedHash = scratch.subarray(0, HASH_LEN);
    read(padded, storedHash);
    let diff = 0;
    for (let i = 0; i < HASH_LEN; i++) diff |= digest[i]! ^ storedHash[i]!;
    if (diff !== 0) throw new OtaError("IMAGE_HASH", "appended SHA-256 does not match the image");
    length += HASH_LEN;
  }
  return { header, appDesc: appDesc!, length };
}
