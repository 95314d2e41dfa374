/*
 * The checks the crypto binding adds around Moddable's primitives, kept pure so they are tested
 * under Node against real signatures (test/device/bindings.test.ts).
 */

/** Order of the P-256 group (modules/crypt/etc/curve.js, secp256r1.n). */
export const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** DER DigestInfo prefix for SHA-256 (RFC 8017 9.2, note 1). */
const SHA256_PREFIX = Uint8Array.of(0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20);

function toBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** 0 < r < n and 0 < s < n for a raw 64-byte P-256 r||s (ecdsa.js checks neither). */
export function p256ScalarsInRange(raw: Uint8Array): boolean {
  if (raw.length !== 64) return false;
  const r = toBigInt(raw.subarray(0, 32));
  const s = toBigInt(raw.subarray(32));
  return r > 0n && r < P256_N && s > 0n && s < P256_N;
}

/**
 * EMSA-PKCS1-v1_5 with SHA-256 (RFC 8017 9.2): 00 01 FF..FF 00 DigestInfo H, `k` bytes.
 * RangeError when k is too small for 8 bytes of padding (or the digest is not 32 bytes).
 */
export function pkcs1Sha256Block(k: number, digest: Uint8Array): Uint8Array {
  const tLen = SHA256_PREFIX.length + 32;
  if (digest.length !== 32 || k < tLen + 11) throw new RangeError("PKCS#1 v1.5 block: k too small or digest not SHA-256");
  const em = new Uint8Array(k);
  em[1] = 0x01;
  em.fill(0xff, 2, k - tLen - 1);
  em.set(SHA256_PREFIX, k - tLen);
  em.set(digest, k - 32);
  return em;
}

/** `v` as `k` big-endian bytes; undefined when it does not fit (or is negative). */
export function bigintToBytes(v: bigint, k: number): Uint8Array | undefined {
  if (v < 0n) return undefined;
  const out = new Uint8Array(k);
  for (let i = k - 1; i >= 0 && v > 0n; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return v === 0n ? out : undefined;
}

/**
 * RFC 5280 BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER
 * OPTIONAL }, DER: whether `value` (the extension's value) says cA TRUE. Anything else (absent,
 * malformed, cA omitted = FALSE) is false: only a CA may issue a certificate in the chain.
 */
export function basicConstraintsCa(value: Uint8Array | undefined): boolean {
  if (!value || value.length < 2 || value[0] !== 0x30) return false;
  let i = 1;
  const first = value[i++]!;
  if (first & 0x80) i += first & 0x7f; // long-form length (never for this tiny SEQUENCE, but legal)
  return value[i] === 0x01 && value[i + 1] === 0x01 && value[i + 2] === 0xff;
}

/** One subjectAltName entry as SDK 8.2.3's X509.decodeSAN gives it: tag 2 dNSName (string), tag 7 iPAddress (bytes). */
export interface SanName {
  tag: number;
  value: string | ArrayBuffer;
}

/**
 * Whether a certificate's subjectAltName names `serverName`, by the rules of SDK 8.2.3's
 * ssl_cert.js verify() (which applies them only to certificates followed by another one): a
 * dNSName equal to it (case-insensitive) or a single leading wildcard label ("*.example.com"
 * matches "a.example.com", not "example.com" nor "a.b.example.com"), or an IPv4 iPAddress equal to
 * it. No SAN, or no server name, is no match.
 */
export function sanMatches(names: readonly SanName[] | undefined, serverName: string | undefined): boolean {
  const want = serverName?.toLowerCase();
  if (!want || !names) return false;
  for (const n of names) {
    if (n.tag === 2 && typeof n.value === "string") {
      const name = n.value.toLowerCase();
      if (name.startsWith("*")) {
        if (!name.startsWith("*.") || name.indexOf("*", 1) >= 0) continue;
        const dot = want.indexOf(".");
        if (dot > 0 && name.slice(1) === want.slice(dot)) return true;
      } else if (name === want) return true;
    } else if (n.tag === 7 && typeof n.value !== "string" && n.value.byteLength === 4) {
      if (Array.from(new Uint8Array(n.value)).join(".") === want) return true;
    }
  }
  return false;
}
