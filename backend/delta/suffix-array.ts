/*
 * Suffix array by prefix doubling with counting sorts (Manber-Myers), O(n log n).
 * npm has no maintained suffix-array package (the "suffix-array" name is an unrelated
 * array helper; bsdiff-node is a native addon writing bsdiff40, not detools chunks), and
 * detools itself uses libdivsufsort/sais in C. For images up to a few MB this takes
 * about a second on Node, which a build server can spend.
 *
 * The result has n + 1 entries, the empty suffix first, as bsdiff's qsufsort leaves it
 * (its search runs over [0, n]).
 */
export function suffixArray(s: Uint8Array): Int32Array {
  const n = s.length;
  const out = new Int32Array(n + 1);
  out[0] = n;
  if (n === 0) return out;
  let sa = new Int32Array(n);
  let rank = new Int32Array(n);
  let tmp = new Int32Array(n);
  const count = new Int32Array(Math.max(256, n) + 1);
  for (let i = 0; i < n; i++) count[s[i]!]!++;
  for (let i = 1; i < 256; i++) count[i]! += count[i - 1]!;
  for (let i = n - 1; i >= 0; i--) sa[--count[s[i]!]!] = i;
  // ranks = the byte's class among distinct first bytes
  let classes = 1;
  rank[sa[0]!] = 0;
  for (let j = 1; j < n; j++) {
    if (s[sa[j]!] !== s[sa[j - 1]!]) classes++;
    rank[sa[j]!] = classes - 1;
  }
  for (let k = 1; classes < n; k <<= 1) {
    // order by the second key: suffixes without one first, then by the rank at i + k
    let p = 0;
    for (let i = n - k; i < n; i++) tmp[p++] = i;
    for (let j = 0; j < n; j++) if (sa[j]! >= k) tmp[p++] = sa[j]! - k;
    count.fill(0, 0, classes);
    for (let i = 0; i < n; i++) count[rank[i]!]!++;
    for (let i = 1; i < classes; i++) count[i]! += count[i - 1]!;
    for (let j = n - 1; j >= 0; j--) {
      const i = tmp[j]!;
      sa[--count[rank[i]!]!] = i;
    }
    tmp[sa[0]!] = 0;
    classes = 1;
    for (let j = 1; j < n; j++) {
      const a = sa[j - 1]!;
      const b = sa[j]!;
      const same = rank[a] === rank[b] && (a + k < n ? rank[a + k]! : -1) === (b + k < n ? rank[b + k]! : -1);
      if (!same) classes++;
      tmp[b] = classes - 1;
    }
    const swap = rank;
    rank = tmp;
    tmp = swap;
  }
  out.set(sa, 1);
  sa = tmp = rank = new Int32Array(0);
  return out;
}
