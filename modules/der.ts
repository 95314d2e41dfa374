/*
 * A tiny DER reader/writer: just enough for SubjectPublicKeyInfo (ECDSA P-256, RSA) and
 * ECDSA-Sig-Value. Untrusted input: every length is checked against its container, only
 * definite lengths up to 4 bytes, no indefinite forms. Errors are TypeError; callers map
 * them to their own OtaError code (KEY_FORMAT, SIG_FORMAT).
 */

export interface Tlv {
  tag: number;
  /** Offset of the content inside the source bytes. */
  start: number;
  /** Offset just past the content. */
  end: number;
}

/** Read one TLV at `offset`, bounded by `limit`. Throws TypeError when malformed. */
export function readTlv(bytes: Uint8Array, offset: number, limit: number = bytes.length): Tlv {
  if (offset + 2 > limit) throw new TypeError("DER: truncated header");
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new TypeError("DER: multi-byte tags not supported");
  let len = bytes[offset + 1]!;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new TypeError("DER: bad length form");
    if (p + n > limit) throw new TypeError("DER: truncated length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[p + i]!;
    if (len < 0x80 || (n > 1 && bytes[p] === 0)) throw new TypeError("DER: non-minimal length");
    p += n;
  }
  if (p + len > limit) throw new TypeError("DER: content overruns its container");
  return { tag, start: p, end: p + len };
}

/** Read the children of a constructed TLV; the content must be consumed exactly. */
export function readChildren(bytes: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = parent.start;
  while (p < parent.end) {
    const t = readTlv(bytes, p, parent.end);
    out.push(t);
    p = t.end;
    if (out.length > 16) throw new TypeError("DER: too many elements");
  }
  return out;
}

/** Unsigned big-endian integer content of an INTEGER, leading zero stripped. Throws on negative. */
export function integerBytes(bytes: Uint8Array, t: Tlv): Uint8Array {
  if (t.tag !== 0x02 || t.end <= t.start) throw new TypeError("DER: expected INTEGER");
  let s = t.start;
  if (bytes[s]! & 0x80) throw new TypeError("DER: negative INTEGER");
  if (bytes[s] === 0 && t.end - s > 1) {
    if (!(bytes[s + 1]! & 0x80)) throw new TypeError("DER: non-minimal INTEGER");
    s++;
  }
  return bytes.slice(s, t.end);
}

export function contentEquals(bytes: Uint8Array, t: Tlv, expected: readonly number[]): boolean {
  if (t.end - t.start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[t.start + i] !== expected[i]) return false;
  return true;
}

/** ECDSA-Sig-Value DER -> raw r||s (`size` bytes each). Throws TypeError when malformed. */
export function ecdsaDerToRaw(der: Uint8Array, size = 32): Uint8Array {
  const seq = readTlv(der, 0);
  if (seq.tag !== 0x30 || seq.end !== der.length) throw new TypeError("DER: expected one SEQUENCE");
  const kids = readChildren(der, seq);
  if (kids.length !== 2) throw new TypeError("DER: expected r and s");
  const out = new Uint8Array(size * 2);
  for (let k = 0; k < 2; k++) {
    const v = integerBytes(der, kids[k]!);
    if (v.length > size) throw new TypeError("DER: integer too large");
    out.set(v, k * size + size - v.length);
  }
  return out;
}
