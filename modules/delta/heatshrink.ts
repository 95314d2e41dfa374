/*
 * Heatshrink (LZSS) decoder, streaming, in the bit format of atomicobject/heatshrink:
 * MSB-first bits; tag 1 + 8 bits = literal, tag 0 + index (window bits, offset - 1)
 * + count (lookahead bits, length - 1) = back-reference into the last 2^window output
 * bytes. The window starts zeroed, as heatshrink_decoder_reset leaves it: the encoder
 * may match against that zero backlog at the start of a stream.
 *
 * Memory: the window (2^windowBits bytes, 256 for esp_delta_ota's 8/7) and a few numbers.
 * Nothing is allocated per call.
 *
 * Zero runs: a back-reference whose source lies in the zeros that end the history (the bulk
 * of a bsdiff diff stream) is not copied byte by byte: `decode` returns 0 and says how many
 * zero bytes follow in `zeros`, and the window is zero-filled natively. On XS that is most of
 * the work of a patch (about 120 -> 20 compute per output byte).
 */
import { OtaError } from "../errors";

/** Parameters esp_delta_ota's detools build accepts (HEATSHRINK_STATIC_WINDOW_BITS 8, LOOKAHEAD 7). */
export const HEATSHRINK_WINDOW_BITS = 8;
export const HEATSHRINK_LOOKAHEAD_BITS = 7;
/** The largest window this decoder allocates (4 KB); detools' tool writes 8 unless told otherwise. */
export const HEATSHRINK_MAX_WINDOW_BITS = 12;

const TAG = 0;
const LITERAL = 1;
const INDEX = 2;
const COUNT = 3;
const BACKREF = 4;

export class HeatshrinkDecoder {
  readonly windowBits: number;
  readonly lookaheadBits: number;
  private readonly window: Uint8Array;
  private readonly mask: number;
  private head = 0;
  private state = TAG;
  private bits = 0;
  private nbits = 0;
  private index = 0;
  private count = 0;
  /** Input bytes taken from the last `decode` call's chunk. */
  consumed = 0;
  /** Zero bytes the last `decode` call produced instead of writing output (then it returned 0). */
  zeros = 0;
  /** Zero bytes that end the history (the window starts zeroed), at most the window size. */
  private zrun: number;
  /** Input bytes taken in all, and the bit position where the last complete item ended. */
  private taken = 0;
  private itemEnd = 0;

  /** Throws DELTA_COMPRESSION for parameters outside window 4..12, lookahead 3..window-1. */
  constructor(windowBits: number, lookaheadBits: number) {
    if (windowBits < 4 || windowBits > HEATSHRINK_MAX_WINDOW_BITS || lookaheadBits < 3 || lookaheadBits >= windowBits) {
      throw new OtaError("DELTA_COMPRESSION", `heatshrink window ${windowBits} / lookahead ${lookaheadBits} not supported`);
    }
    this.windowBits = windowBits;
    this.lookaheadBits = lookaheadBits;
    this.window = new Uint8Array(1 << windowBits);
    this.mask = (1 << windowBits) - 1;
    this.zrun = 1 << windowBits;
  }

  /** The byte detools writes before the stream: (window - 4) << 4 | (lookahead - 3). */
  static fromHeader(byte: number): HeatshrinkDecoder {
    return new HeatshrinkDecoder(((byte >> 4) & 0xf) + 4, (byte & 0xf) + 3);
  }

  /**
   * Decode from input[inOff, inEnd) into out[outOff, outEnd). Returns the number of bytes
   * written; `consumed` says how many input bytes were taken. Stops when the output is
   * full or the input cannot complete the next field (the partial bits are kept). A zero run
   * comes alone: the call returns 0 with `zeros` > 0 (at most outEnd - outOff) and writes nothing.
   */
  decode(input: Uint8Array, inOff: number, inEnd: number, out: Uint8Array, outOff: number, outEnd: number): number {
    const window = this.window;
    const mask = this.mask;
    let pos = inOff;
    let o = outOff;
    let bits = this.bits;
    let nbits = this.nbits;
    let state = this.state;
    let head = this.head;
    let zrun = this.zrun;
    const size = mask + 1;
    let zeros = 0;
    const room = outEnd - outOff;
    while (o < outEnd && zeros < room) {
      if (state === BACKREF) {
        const back = this.index;
        if (back <= zrun) {
          // every byte copied is zero: report the run instead of writing it
          if (o > outOff) break;
          let n = this.count;
          if (n > room - zeros) n = room - zeros;
          const at = head & mask;
          if (n >= size) window.fill(0);
          else if (at + n <= size) window.fill(0, at, at + n);
          else {
            window.fill(0, at);
            window.fill(0, 0, at + n - size);
          }
          head += n;
          zeros += n;
          zrun = zrun + n > size ? size : zrun + n;
          this.count -= n;
          if (this.count === 0) state = TAG;
          continue;
        }
        if (zeros > 0) break;
        let n = this.count;
        if (n > outEnd - o) n = outEnd - o;
        const stop = o + n;
        while (o < stop) {
          const c = window[(head - back) & mask]!;
          window[head++ & mask] = c;
          out[o++] = c;
          zrun = c === 0 ? zrun + 1 : 0;
        }
        if (zrun > size) zrun = size;
        this.count -= n;
        if (this.count === 0) state = TAG;
        continue;
      }
      if (state === LITERAL && zeros > 0) break;
      const need = state === TAG ? 1 : state === LITERAL ? 8 : state === INDEX ? this.windowBits : this.lookaheadBits;
      while (nbits < need) {
        if (pos >= inEnd) break;
        bits = ((bits << 8) | input[pos++]!) & 0xffffff;
        nbits += 8;
      }
      if (nbits < need) break;
      nbits -= need;
      const value = (bits >>> nbits) & ((1 << need) - 1);
      if (state === TAG) {
        state = value ? LITERAL : INDEX;
      } else if (state === LITERAL) {
        window[head & mask] = value;
        head++;
        out[o++] = value;
        zrun = value === 0 ? (zrun < size ? zrun + 1 : size) : 0;
        state = TAG;
        this.itemEnd = (this.taken + pos - inOff) * 8 - nbits;
      } else if (state === INDEX) {
        this.index = value + 1;
        state = COUNT;
      } else {
        this.count = value + 1;
        state = BACKREF;
        this.itemEnd = (this.taken + pos - inOff) * 8 - nbits;
      }
    }
    this.bits = bits;
    this.nbits = nbits;
    this.state = state;
    this.head = head;
    this.zrun = zrun;
    this.zeros = zeros;
    this.consumed = pos - inOff;
    this.taken += pos - inOff;
    return o - outOff;
  }

  /** True while a back-reference is only partly emitted. */
  get pending(): boolean {
    return this.state === BACKREF;
  }

  /**
   * Bits taken after the last complete item. The encoder pads its last byte with zeros, so
   * a stream that ends where its last item does leaves fewer than 8; a whole byte more is
   * a stream that goes on past its end.
   */
  get trailingBits(): number {
    return this.taken * 8 - this.itemEnd;
  }
}
