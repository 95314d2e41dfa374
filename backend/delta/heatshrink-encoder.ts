/*
 * Heatshrink (LZSS) encoder for the build server, in the bit format of
 * atomicobject/heatshrink that modules/delta/heatshrink.ts and detools' C decoder read:
 * MSB first; 1 + 8 bits literal; 0 + (distance - 1) in window bits + (length - 1) in
 * lookahead bits. Greedy longest match over hash chains of 2-byte prefixes; a match pays
 * from 2 bytes (1 + 8 + 7 = 16 bits against 2 x 9). Matches stay inside the bytes already
 * encoded (never into the decoder's zeroed backlog), so any heatshrink decoder agrees.
 */
export interface HeatshrinkParams {
  windowBits: number;
  lookaheadBits: number;
}

export const ESP_DELTA_HEATSHRINK: HeatshrinkParams = { windowBits: 8, lookaheadBits: 7 };

class BitWriter {
  private buf: Uint8Array;
  private len = 0;
  private acc = 0;
  private nbits = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(Math.max(64, capacity));
  }
  put(value: number, count: number): void {
    this.acc = (this.acc << count) | (value & ((1 << count) - 1));
    this.nbits += count;
    while (this.nbits >= 8) {
      this.nbits -= 8;
      this.byte((this.acc >>> this.nbits) & 0xff);
    }
    this.acc &= (1 << this.nbits) - 1;
  }
  private byte(b: number): void {
    if (this.len === this.buf.length) {
      const grown = new Uint8Array(this.buf.length * 2);
      grown.set(this.buf);
      this.buf = grown;
    }
    this.buf[this.len++] = b;
  }
  /** Pads the last byte with zero bits, as heatshrink_encoder_finish does. */
  finish(): Uint8Array {
    if (this.nbits > 0) this.byte((this.acc << (8 - this.nbits)) & 0xff);
    this.nbits = 0;
    return this.buf.slice(0, this.len);
  }
}

export function heatshrinkEncode(input: Uint8Array, p: HeatshrinkParams = ESP_DELTA_HEATSHRINK): Uint8Array {
  const { windowBits, lookaheadBits } = p;
  if (windowBits < 4 || windowBits > 15 || lookaheadBits < 3 || lookaheadBits >= windowBits) {
    throw new RangeError(`heatshrink window ${windowBits} / lookahead ${lookaheadBits}`);
  }
  const window = 1 << windowBits;
  const maxLen = 1 << lookaheadBits;
  const n = input.length;
  const head = new Int32Array(65536).fill(-1);
  const prev = new Int32Array(n);
  const out = new BitWriter(n >> 2);
  const insert = (i: number) => {
    if (i + 1 >= n) return;
    const key = (input[i]! << 8) | input[i + 1]!;
    prev[i] = head[key]!;
    head[key] = i;
  };
  let i = 0;
  while (i < n) {
    let bestLen = 0;
    let bestDist = 0;
    if (i + 1 < n) {
      const limit = Math.min(maxLen, n - i);
      let j = head[(input[i]! << 8) | input[i + 1]!]!;
      while (j >= 0 && i - j <= window) {
        if (input[j + bestLen] === input[i + bestLen]) {
          let len = 0;
          while (len < limit && input[j + len] === input[i + len]) len++;
          if (len > bestLen) {
            bestLen = len;
            bestDist = i - j;
            if (len === limit) break;
          }
        }
        j = prev[j]!;
      }
    }
    if (bestLen >= 2) {
      out.put(0, 1);
      out.put(bestDist - 1, windowBits);
      out.put(bestLen - 1, lookaheadBits);
      for (let k = 0; k < bestLen; k++) insert(i + k);
      i += bestLen;
    } else {
      out.put(1, 1);
      out.put(input[i]!, 8);
      insert(i);
      i++;
    }
  }
  return out.finish();
}
