/*
 * Apply a detools "sequential" patch as it streams in, as detools' c/detools.c does on
 * MCUs and esp_delta_ota wraps it:
 *
 *   [esp_delta_ota header, optional: u32 LE 0xFCCDDE10, 32-byte base SHA-256, 28 zero bytes]
 *   u8    0 | type(3) = 0 sequential | compression(4): 0 none, 4 heatshrink
 *   size  to_size (the output length)
 *   body, compressed as the header says (heatshrink: one byte (window-4)<<4 | (lookahead-3),
 *   then the LZSS stream), which decodes to:
 *     size dfpatch_size (0: no data-format patch)
 *     repeat until to_size bytes are out:
 *       size diff_size,  diff_size bytes each added (mod 256) to the base at from_offset
 *       size extra_size, extra_size bytes copied
 *       size adjustment, added to from_offset (signed)
 *
 *   size: byte 0 = more(1) | negative(1) | 6 low bits; then more(1) | 7 bits, little end first.
 *
 * Memory (fixed at construction, independent of the image): the output buffer (`scratch`,
 * 4 KB by default), a 512-byte base cache, a 256-byte decode buffer, a 64-byte header and
 * the heatshrink window (256 bytes for 8/7). The base is read sequentially, in 512-byte reads.
 */
import { OtaError, type ErrorCode } from "../errors";
import { HeatshrinkDecoder } from "./heatshrink";

/** The image the patch was made against (the running slot). `read` fills all of `target`. */
export interface DeltaBase {
  readonly size: number;
  read(offset: number, target: Uint8Array): void;
}

/** Output bytes in order. `data` is the applier's own buffer: use or copy it before returning. */
export interface DeltaSink {
  write(data: Uint8Array): void;
}

export interface PatchApplierOptions {
  base: DeltaBase;
  sink: DeltaSink;
  /** The most output accepted (the slot size): a larger to_size fails at the header. */
  maxOutput: number;
  /** Output buffer; the sink receives it whole when full. Default 4096 bytes (one flash block). */
  scratch?: Uint8Array;
  /** "auto" (default) accepts both; "esp" requires the esp_delta_ota header; "detools" refuses it. */
  container?: "auto" | "esp" | "detools";
}

export const ESP_DELTA_MAGIC = 0xfccdde10;
export const ESP_DELTA_HEADER_SIZE = 64;
export const COMPRESSION_NONE = 0;
export const COMPRESSION_HEATSHRINK = 4;

const BASE_CACHE = 512;
const DECODE_BUFFER = 256;

// Header states
const H_FIRST = 0;
const H_ESP = 1;
const H_TYPE = 2;
const H_TO_SIZE = 3;
const H_HEATSHRINK = 4;
const H_BODY = 5;
// Body states
const B_DFPATCH = 0;
const B_DIFF_SIZE = 1;
const B_DIFF = 2;
const B_EXTRA_SIZE = 3;
const B_EXTRA = 4;
const B_ADJUST = 5;
const B_DONE = 6;

export class PatchApplier {
  private readonly base: DeltaBase;
  private readonly sink: DeltaSink;
  private readonly maxOutput: number;
  private readonly container: "auto" | "esp" | "detools";
  private readonly out: Uint8Array;
  private outPos = 0;
  /** Output then base cache in one buffer (when the applier owns the output), for copyWithin. */
  private readonly mem: Uint8Array | undefined;
  private readonly cache: Uint8Array;
  private readonly zero = new Uint8Array(1);
  private cacheStart = 0;
  private cacheEnd = 0;
  private readonly decoded = new Uint8Array(DECODE_BUFFER);
  private readonly header = new Uint8Array(ESP_DELTA_HEADER_SIZE);
  private headerPos = 0;
  private hstate = H_FIRST;
  private bstate = B_DFPATCH;
  private decoder: HeatshrinkDecoder | undefined;
  // size field in progress
  private sizeValue = 0;
  private sizeScale = 1;
  private sizeNegative = false;
  private sizeBytes = 0;
  private remaining = 0;
  private fromOffset = 0;
  private toOffset = 0;
  private failed: ErrorCode | undefined;
  private finished = false;

  /** Output length from the patch header; -1 until the header is in. */
  outputSize = -1;
  /** 0 none, 4 heatshrink; -1 until the header is in. */
  compression = -1;
  /** The base SHA-256 an esp_delta_ota header carries (esp_partition_get_sha256 of the running app); else undefined. */
  baseDigest: Uint8Array | undefined;
  /** Patch bytes taken so far. */
  patchBytes = 0;
  /** Output bytes handed to the sink so far. */
  written = 0;

  constructor(o: PatchApplierOptions) {
    if (!o || !o.base || !o.sink) throw new TypeError("PatchApplier needs base and sink");
    if (!(o.maxOutput >= 0)) throw new RangeError("maxOutput must be >= 0");
    this.base = o.base;
    this.sink = o.sink;
    this.maxOutput = o.maxOutput;
    this.container = o.container ?? "auto";
    if (o.scratch) {
      if (o.scratch.length < 16) throw new RangeError("scratch must hold at least 16 bytes");
      this.out = o.scratch;
      this.cache = new Uint8Array(BASE_CACHE);
    } else {
      this.mem = new Uint8Array(4096 + BASE_CACHE);
      this.out = this.mem.subarray(0, 4096);
      this.cache = this.mem.subarray(4096);
    }
  }

  /** True once the header is parsed (outputSize, compression and baseDigest are known). */
  get headerComplete(): boolean {
    return this.hstate === H_BODY;
  }

  /** True when every output byte has been produced (finish() still checks the trailer). */
  get done(): boolean {
    return this.bstate === B_DONE && this.hstate === H_BODY;
  }

  /**
   * Feed the next patch bytes. Output goes to the sink as it is produced.
   * Throws DELTA_FORMAT, DELTA_COMPRESSION, DELTA_OVERRUN, DELTA_BASE; after a throw every
   * call throws the same code.
   */
  write(chunk: Uint8Array): void {
    this.enter();
    try {
      this.feed(chunk, 0, chunk.length);
      this.patchBytes += chunk.length;
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * After the last patch byte: flushes the output and checks it is complete.
   * Returns the output size. Throws DELTA_TRUNCATED when the patch ended early.
   */
  finish(): number {
    this.enter();
    try {
      if (this.hstate !== H_BODY) throw new OtaError("DELTA_TRUNCATED", `patch ended in its header after ${this.patchBytes} bytes`);
      if (this.bstate !== B_DONE) {
        throw new OtaError("DELTA_TRUNCATED", `patch ended after ${this.patchBytes} bytes with ${this.toOffset} of ${this.outputSize} output bytes`);
      }
      if (this.decoder && (this.decoder.pending || this.decoder.trailingBits >= 8)) throw new OtaError("DELTA_COMPRESSION", "heatshrink stream decodes past the patch's end");
      this.flush();
    } catch (e) {
      this.fail(e);
    }
    this.finished = true;
    return this.written;
  }

  private enter(): void {
    if (this.failed) throw new OtaError(this.failed, "the patch already failed");
    if (this.finished) throw new Error("patch already finished");
  }

  private fail(e: unknown): never {
    this.failed = e instanceof OtaError ? e.code : "INTERNAL";
    throw e;
  }

  private feed(data: Uint8Array, off: number, end: number): void {
    while (off < end && this.hstate !== H_BODY) off = this.headerByte(data[off]!, off + 1);
    if (off >= end) return;
    const dec = this.decoder;
    if (!dec) {
      this.body(data, off, end);
      return;
    }
    while (off < end || dec.pending) {
      const n = dec.decode(data, off, end, this.decoded, 0, DECODE_BUFFER);
      off += dec.consumed;
      if (n > 0) this.body(this.decoded, 0, n);
      else if (dec.zeros > 0) this.zeros(dec.zeros);
      else {
        if (off < end) throw new OtaError("INTERNAL", "heatshrink decoder stalled");
        break;
      }
    }
  }

  /** `count` zero bytes of the decompressed body, without a buffer of them. */
  private zeros(count: number): void {
    while (count > 0) {
      if (this.bstate === B_DIFF) count -= this.diffZeros(count);
      else if (this.bstate === B_EXTRA) {
        let n = count;
        if (n > this.remaining) n = this.remaining;
        if (n > this.out.length - this.outPos) n = this.out.length - this.outPos;
        this.out.fill(0, this.outPos, this.outPos + n);
        this.advance(n);
        count -= n;
        if (this.remaining === 0) this.bstate = B_ADJUST;
      } else {
        this.body(this.zero, 0, 1);
        count--;
      }
    }
  }

  /** A diff of zeros is the base itself: copied natively when output and cache share a buffer. */
  private diffZeros(count: number): number {
    const out = this.out;
    const cache = this.cache;
    const mem = this.mem;
    let done = 0;
    while (done < count && this.remaining > 0) {
      if (this.fromOffset < this.cacheStart || this.fromOffset >= this.cacheEnd) this.fill(this.fromOffset);
      let n = count - done;
      if (n > this.remaining) n = this.remaining;
      if (n > out.length - this.outPos) n = out.length - this.outPos;
      if (n > this.cacheEnd - this.fromOffset) n = this.cacheEnd - this.fromOffset;
      const c = this.fromOffset - this.cacheStart;
      if (mem) mem.copyWithin(this.outPos, out.length + c, out.length + c + n);
      else {
        let o = this.outPos;
        let k = c;
        const stop = c + n;
        while (k < stop) out[o++] = cache[k++]!;
      }
      this.advance(n);
      this.fromOffset += n;
      done += n;
    }
    if (this.remaining === 0) this.bstate = B_EXTRA_SIZE;
    return done;
  }

  /** One header byte; returns the next offset. */
  private headerByte(b: number, next: number): number {
    switch (this.hstate) {
      case H_FIRST:
        if (this.container !== "detools" && b === (ESP_DELTA_MAGIC & 0xff)) {
          this.header[0] = b;
          this.headerPos = 1;
          this.hstate = H_ESP;
          return next;
        }
        if (this.container === "esp") throw new OtaError("DELTA_FORMAT", "no esp_delta_ota header (magic 0xFCCDDE10)");
        return this.typeByte(b, next);
      case H_ESP:
        this.header[this.headerPos++] = b;
        if (this.headerPos === 4) {
          const magic = (this.header[0]! | (this.header[1]! << 8) | (this.header[2]! << 16) | (this.header[3]! << 24)) >>> 0;
          if (magic !== ESP_DELTA_MAGIC) {
            throw new OtaError("DELTA_FORMAT", `bad magic 0x${magic.toString(16)}: not an esp_delta_ota patch, and detools in-place patches are not supported`);
          }
        }
        if (this.headerPos === ESP_DELTA_HEADER_SIZE) {
          this.baseDigest = this.header.subarray(4, 36);
          this.hstate = H_TYPE;
        }
        return next;
      case H_TYPE:
        return this.typeByte(b, next);
      case H_TO_SIZE:
        if (this.sizeByte(b)) {
          const size = this.sizeValue;
          if (this.sizeNegative) throw new OtaError("DELTA_FORMAT", "negative output size");
          if (size > this.maxOutput) throw new OtaError("DELTA_OVERRUN", `patch output ${size} bytes, the slot takes ${this.maxOutput}`);
          this.outputSize = size;
          this.hstate = this.compression === COMPRESSION_HEATSHRINK ? H_HEATSHRINK : H_BODY;
          if (size === 0) {
            this.hstate = H_BODY;
            this.bstate = B_DONE;
          }
        }
        return next;
      case H_HEATSHRINK:
        this.decoder = HeatshrinkDecoder.fromHeader(b);
        this.hstate = H_BODY;
        return next;
      default:
        throw new OtaError("INTERNAL", `header state ${this.hstate}`);
    }
  }

  private typeByte(b: number, next: number): number {
    const type = (b >> 4) & 7;
    if (type !== 0) throw new OtaError("DELTA_FORMAT", `patch type ${type} (${type === 1 ? "in-place" : type === 2 ? "hdiffpatch" : "unknown"}); only sequential (0) is supported`);
    const compression = b & 0xf;
    if (compression !== COMPRESSION_NONE && compression !== COMPRESSION_HEATSHRINK) {
      throw new OtaError("DELTA_COMPRESSION", `compression ${compression}; only none (0) and heatshrink (4) are supported`);
    }
    this.compression = compression;
    this.hstate = H_TO_SIZE;
    return next;
  }

  /** One byte of a size field; true when the field is complete (sizeValue, sizeNegative). */
  private sizeByte(b: number): boolean {
    if (this.sizeBytes === 0) {
      this.sizeNegative = (b & 0x40) !== 0;
      this.sizeValue = b & 0x3f;
      this.sizeScale = 64;
    } else {
      this.sizeValue += (b & 0x7f) * this.sizeScale;
      this.sizeScale *= 128;
    }
    this.sizeBytes++;
    if (this.sizeValue > 0x7fffffff || (this.sizeBytes >= 5 && (b & 0x80) !== 0)) {
      throw new OtaError("DELTA_FORMAT", "size field overflows 31 bits");
    }
    if ((b & 0x80) !== 0) return false;
    this.sizeBytes = 0;
    return true;
  }

  /** Decompressed patch body bytes data[off, end). */
  private body(data: Uint8Array, off: number, end: number): void {
    while (off < end) {
      switch (this.bstate) {
        case B_DFPATCH:
          if (this.sizeByte(data[off++]!)) {
            if (this.sizeValue !== 0) throw new OtaError("DELTA_FORMAT", "data-format patches (detools --data-format) are not supported");
            this.bstate = B_DIFF_SIZE;
          }
          break;
        case B_DIFF_SIZE:
        case B_EXTRA_SIZE:
          if (this.sizeByte(data[off++]!)) this.chunkSize();
          break;
        case B_DIFF:
          off = this.diff(data, off, end);
          break;
        case B_EXTRA:
          off = this.extra(data, off, end);
          break;
        case B_ADJUST:
          if (this.sizeByte(data[off++]!)) {
            this.fromOffset += this.sizeNegative ? -this.sizeValue : this.sizeValue;
            this.bstate = this.toOffset === this.outputSize ? B_DONE : B_DIFF_SIZE;
          }
          break;
        default:
          throw this.decoder
            ? new OtaError("DELTA_COMPRESSION", "heatshrink stream decodes past the patch's end")
            : new OtaError("DELTA_FORMAT", "bytes after the patch's end");
      }
    }
  }

  private chunkSize(): void {
    const size = this.sizeValue;
    const diff = this.bstate === B_DIFF_SIZE;
    if (this.sizeNegative && size !== 0) throw new OtaError("DELTA_FORMAT", `negative ${diff ? "diff" : "extra"} size`);
    if (this.toOffset + size > this.outputSize) {
      throw new OtaError("DELTA_OVERRUN", `${diff ? "diff" : "extra"} of ${size} bytes at output ${this.toOffset} passes the header's ${this.outputSize}`);
    }
    if (diff && size > 0 && (this.fromOffset < 0 || this.fromOffset + size > this.base.size)) {
      throw new OtaError("DELTA_BASE", `diff reads base [${this.fromOffset}, ${this.fromOffset + size}) of a ${this.base.size}-byte base`);
    }
    this.remaining = size;
    this.bstate = diff ? (size ? B_DIFF : B_EXTRA_SIZE) : size ? B_EXTRA : B_ADJUST;
  }

  private diff(data: Uint8Array, off: number, end: number): number {
    const out = this.out;
    const cache = this.cache;
    while (off < end && this.remaining > 0) {
      if (this.fromOffset < this.cacheStart || this.fromOffset >= this.cacheEnd) this.fill(this.fromOffset);
      let n = end - off;
      if (n > this.remaining) n = this.remaining;
      if (n > out.length - this.outPos) n = out.length - this.outPos;
      if (n > this.cacheEnd - this.fromOffset) n = this.cacheEnd - this.fromOffset;
      let o = this.outPos;
      let c = this.fromOffset - this.cacheStart;
      const stop = off + n;
      while (off < stop) out[o++] = (data[off++]! + cache[c++]!) & 0xff;
      this.advance(n);
      this.fromOffset += n;
    }
    if (this.remaining === 0) this.bstate = B_EXTRA_SIZE;
    return off;
  }

  private extra(data: Uint8Array, off: number, end: number): number {
    const out = this.out;
    while (off < end && this.remaining > 0) {
      let n = end - off;
      if (n > this.remaining) n = this.remaining;
      if (n > out.length - this.outPos) n = out.length - this.outPos;
      let o = this.outPos;
      const stop = off + n;
      while (off < stop) out[o++] = data[off++]!;
      this.advance(n);
    }
    if (this.remaining === 0) this.bstate = B_ADJUST;
    return off;
  }

  private advance(n: number): void {
    this.outPos += n;
    this.toOffset += n;
    this.remaining -= n;
    if (this.outPos === this.out.length) this.flush();
  }

  private fill(at: number): void {
    const size = this.base.size;
    const n = size - at < BASE_CACHE ? size - at : BASE_CACHE;
    try {
      this.base.read(at, n === BASE_CACHE ? this.cache : this.cache.subarray(0, n));
    } catch (e) {
      if (e instanceof OtaError) throw e;
      throw new OtaError("DELTA_BASE", `reading the base at ${at}: ${(e as Error).message}`);
    }
    this.cacheStart = at;
    this.cacheEnd = at + n;
  }

  private flush(): void {
    if (this.outPos === 0) return;
    const n = this.outPos;
    this.outPos = 0;
    this.sink.write(n === this.out.length ? this.out : this.out.subarray(0, n));
    this.written += n;
  }
}
