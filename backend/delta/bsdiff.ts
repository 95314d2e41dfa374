/*
 * bsdiff's scan (Colin Percival's bsdiff 4.3, BSD-2-Clause, as detools/bsdiff.c runs it),
 * written again in TypeScript: find approximate matches of `to` in `from` through the
 * suffix array, and emit for each stretch a diff (to - from, bytewise), an extra (bytes
 * copied) and an adjustment (the jump in `from`). The chunks are detools' sequential body.
 */
import { suffixArray } from "./suffix-array";

export interface BsdiffChunk {
  /** to[scan..] - from[pos..] over the diff's length (mod 256). */
  diff: Uint8Array;
  extra: Uint8Array;
  adjustment: number;
}

function matchLength(from: Uint8Array, fromStart: number, to: Uint8Array, toStart: number): number {
  const max = Math.min(from.length - fromStart, to.length - toStart);
  let i = 0;
  while (i < max && from[fromStart + i] === to[toStart + i]) i++;
  return i;
}

/** -1, 0 or 1 as from[a..] compares with to[b..] over their common length. */
function compare(from: Uint8Array, a: number, to: Uint8Array, b: number): number {
  const max = Math.min(from.length - a, to.length - b);
  for (let i = 0; i < max; i++) {
    const d = from[a + i]! - to[b + i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Longest match of to[scan..] in from, by binary search of the suffix array; [length, pos]. */
function search(sa: Int32Array, from: Uint8Array, to: Uint8Array, scan: number, found: { pos: number }): number {
  let lo = 0;
  let hi = from.length;
  while (hi - lo >= 2) {
    const mid = lo + ((hi - lo) >> 1);
    if (compare(from, sa[mid]!, to, scan) < 0) lo = mid;
    else hi = mid;
  }
  const x = matchLength(from, sa[lo]!, to, scan);
  const y = matchLength(from, sa[hi]!, to, scan);
  if (x > y) {
    found.pos = sa[lo]!;
    return x;
  }
  found.pos = sa[hi]!;
  return y;
}

export function bsdiff(from: Uint8Array, to: Uint8Array): BsdiffChunk[] {
  const chunks: BsdiffChunk[] = [];
  const sa = suffixArray(from);
  const fromSize = from.length;
  const toSize = to.length;
  const found = { pos: 0 };
  let scan = 0;
  let len = 0;
  let pos = 0;
  let lastScan = 0;
  let lastPos = 0;
  let lastOffset = 0;
  while (scan < toSize) {
    let oldScore = 0;
    scan += len;
    let scsc = scan;
    for (; scan < toSize; scan++) {
      len = search(sa, from, to, scan, found);
      pos = found.pos;
      for (; scsc < scan + len; scsc++) {
        if (scsc + lastOffset < fromSize && from[scsc + lastOffset] === to[scsc]) oldScore++;
      }
      if ((len === oldScore && len !== 0) || len > oldScore + 8) break;
      if (scan + lastOffset < fromSize && from[scan + lastOffset] === to[scan]) oldScore--;
    }
    if (len === oldScore && scan !== toSize) continue;

    // forward extension from the last match
    let s = 0;
    let sf = 0;
    let lenf = 0;
    for (let i = 0; lastScan + i < scan && lastPos + i < fromSize; ) {
      if (from[lastPos + i] === to[lastScan + i]) s++;
      i++;
      if (s * 2 - i > sf * 2 - lenf) {
        sf = s;
        lenf = i;
      }
    }
    // backward extension of the new match
    let lenb = 0;
    if (scan < toSize) {
      s = 0;
      let sb = 0;
      for (let i = 1; scan >= lastScan + i && pos >= i; i++) {
        if (from[pos - i] === to[scan - i]) s++;
        if (s * 2 - i > sb * 2 - lenb) {
          sb = s;
          lenb = i;
        }
      }
    }
    // split an overlap where it scores best
    const overlap = lastScan + lenf - (scan - lenb);
    if (overlap > 0) {
      s = 0;
      let ss = 0;
      let lens = 0;
      for (let i = 0; i < overlap; i++) {
        if (to[lastScan + lenf - overlap + i] === from[lastPos + lenf - overlap + i]) s++;
        if (to[scan - lenb + i] === from[pos - lenb + i]) s--;
        if (s > ss) {
          ss = s;
          lens = i + 1;
        }
      }
      lenf += lens - overlap;
      lenb -= lens;
    }

    const diff = new Uint8Array(lenf);
    for (let i = 0; i < lenf; i++) diff[i] = (to[lastScan + i]! - from[lastPos + i]!) & 0xff;
    const extraStart = lastScan + lenf;
    const extra = to.slice(extraStart, scan - lenb);
    chunks.push({ diff, extra, adjustment: pos - lenb - (lastPos + lenf) });
    lastScan = scan - lenb;
    lastPos = pos - lenb;
    lastOffset = pos - scan;
  }
  return chunks;
}
