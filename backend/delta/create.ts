/*
 * The build server's patch writer: a detools "sequential" patch (what
 * `detools create_patch -t sequential` writes and modules/delta/patch.ts applies), with
 * compression none or heatshrink (window 8, lookahead 7: esp_delta_ota's), optionally
 * behind esp_delta_ota's 64-byte header (magic 0xFCCDDE10, the base's image digest).
 */
import { OtaError } from "../../modules/errors";
import { validateImage, HASH_LEN } from "../../modules/image";
import { concatBytes } from "../../modules/bytes";
import { COMPRESSION_HEATSHRINK, COMPRESSION_NONE, ESP_DELTA_HEADER_SIZE, ESP_DELTA_MAGIC } from "../../modules/delta/patch";
import { nodeCrypto, sha256 } from "../crypto";
import { bsdiff } from "./bsdiff";
import { heatshrinkEncode, ESP_DELTA_HEATSHRINK, type HeatshrinkParams } from "./heatshrink-encoder";

export type Compression = "none" | "heatshrink";

export interface CreatePatchOptions {
  compression?: Compression;
  /** Prefix esp_delta_ota's 64-byte header; the base must then be an ESP app image. */
  espHeader?: boolean;
  heatshrink?: HeatshrinkParams;
}

export interface PatchInfo {
  patch: Uint8Array;
  compression: Compression;
  fromSize: number;
  toSize: number;
  chunks: number;
  /** Bytes of the uncompressed body (sizes, diff and extra bytes). */
  bodySize: number;
  /** The esp_delta_ota header's base digest, when written. */
  baseDigest?: Uint8Array;
}

/** detools' size encoding: more(1) | negative(1) | 6 bits, then more(1) | 7 bits, low first. */
export function packSize(value: number): Uint8Array {
  if (!Number.isInteger(value) || Math.abs(value) > 0x7fffffff) throw new RangeError(`size ${value}`);
  if (value === 0) return Uint8Array.of(0);
  const bytes: number[] = [];
  let v = Math.abs(value);
  bytes.push((value < 0 ? 0x40 : 0) | 0x80 | (v & 0x3f));
  v = Math.floor(v / 64);
  while (v > 0) {
    bytes.push(0x80 | (v & 0x7f));
    v = Math.floor(v / 128);
  }
  bytes[bytes.length - 1]! &= 0x7f;
  return Uint8Array.from(bytes);
}

/**
 * The digest esp_delta_ota puts in its header: esp_partition_get_sha256 of the running app,
 * which is the image's appended SHA-256 (esptool's "Validation Hash"). Throws IMAGE_* when
 * `image` is not a valid ESP app image.
 */
export function espImageDigest(image: Uint8Array): Uint8Array {
  const info = validateImage((o, t) => t.set(image.subarray(o, o + t.length)), image.length, nodeCrypto, new Uint8Array(4096));
  if (info.header.hashAppended) return image.slice(info.length - HASH_LEN, info.length);
  return sha256(image.subarray(0, info.length));
}

export function espDeltaHeader(baseDigest: Uint8Array): Uint8Array {
  const h = new Uint8Array(ESP_DELTA_HEADER_SIZE);
  new DataView(h.buffer).setUint32(0, ESP_DELTA_MAGIC, true);
  h.set(baseDigest, 4);
  return h;
}

/** Throws DELTA_COMPRESSION for an unknown compression, IMAGE_* with espHeader on a non-image base. */
export function createPatch(from: Uint8Array, to: Uint8Array, o: CreatePatchOptions = {}): PatchInfo {
  const compression = o.compression ?? "heatshrink";
  if (compression !== "none" && compression !== "heatshrink") throw new OtaError("DELTA_COMPRESSION", `compression ${String(compression)}: use heatshrink or none`);
  const parts: Uint8Array[] = [];
  let baseDigest: Uint8Array | undefined;
  if (o.espHeader) {
    baseDigest = espImageDigest(from);
    parts.push(espDeltaHeader(baseDigest));
  }
  parts.push(Uint8Array.of(compression === "heatshrink" ? COMPRESSION_HEATSHRINK : COMPRESSION_NONE), packSize(to.length));
  let chunks = 0;
  let bodySize = 0;
  if (to.length > 0) {
    const body: Uint8Array[] = [packSize(0)];
    for (const c of bsdiff(from, to)) {
      body.push(packSize(c.diff.length), c.diff, packSize(c.extra.length), c.extra, packSize(c.adjustment));
      chunks++;
    }
    const plain = concatBytes(body);
    bodySize = plain.length;
    if (compression === "heatshrink") {
      const p = o.heatshrink ?? ESP_DELTA_HEATSHRINK;
      parts.push(Uint8Array.of(((p.windowBits - 4) << 4) | (p.lookaheadBits - 3)), heatshrinkEncode(plain, p));
    } else {
      parts.push(plain);
    }
  }
  const info: PatchInfo = { patch: concatBytes(parts), compression, fromSize: from.length, toSize: to.length, chunks, bodySize };
  if (baseDigest) info.baseDigest = baseDigest;
  return info;
}
