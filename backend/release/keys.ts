/*
 * Signing keys on the build server: generate, read and write PEM (espsecure's "EC PRIVATE
 * KEY" SEC1 form for ECDSA, PKCS#8 for RSA; any form OpenSSL writes is read), SPKI export,
 * key ids, and signing. ECDSA signatures over a digest use RFC 6979 deterministic k (as
 * espsecure's v1 does), so the same key and image give the same bytes as espsecure.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as nodeSign, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { p256 } from "@noble/curves/nist.js";
import { OtaError } from "../../modules/errors";
import { toBase64 } from "../../modules/bytes";
import { keyId, parsePublicKeyDer, type KeyType, type TrustedKey, type KeyConfigInput } from "../../modules/keys";
import { nodeCrypto } from "../crypto";

export interface SigningKey {
  type: KeyType;
  id: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** DER SubjectPublicKeyInfo */
  spki: Uint8Array;
}

export interface PublicKeyInfo {
  type: KeyType;
  id: string;
  spki: Uint8Array;
  /** ECDSA: 0x04||X||Y */
  point?: Uint8Array;
}

function spkiOf(pub: KeyObject): Uint8Array {
  return new Uint8Array(pub.export({ type: "spki", format: "der" }));
}

function describe(pub: KeyObject, id?: string): PublicKeyInfo {
  const spki = spkiOf(pub);
  const parsed = parsePublicKeyDer(spki); // KEY_TYPE for other curves / sizes
  const info: PublicKeyInfo = { type: parsed.type, id: id ?? keyId(spki, nodeCrypto), spki };
  if (parsed.type === "ecdsa-p256") info.point = parsed.point;
  return info;
}

/** A new key pair. */
export function generateKey(type: KeyType): SigningKey {
  const pair = type === "ecdsa-p256"
    ? generateKeyPairSync("ec", { namedCurve: "prime256v1" })
    : generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 0x10001 });
  return { type, id: describe(pair.publicKey).id, privateKey: pair.privateKey, publicKey: pair.publicKey, spki: spkiOf(pair.publicKey) };
}

export function privateKeyPem(k: SigningKey): string {
  return k.type === "ecdsa-p256"
    ? (k.privateKey.export({ type: "sec1", format: "pem" }) as string)
    : (k.privateKey.export({ type: "pkcs8", format: "pem" }) as string);
}

export function publicKeyPem(k: { publicKey: KeyObject } | { spki: Uint8Array }): string {
  const pub = "publicKey" in k ? k.publicKey : createPublicKey({ key: Buffer.from(k.spki), format: "der", type: "spki" });
  return pub.export({ type: "spki", format: "pem" }) as string;
}

function readText(pemOrPath: string): string {
  if (pemOrPath.includes("-----BEGIN")) return pemOrPath;
  try {
    return readFileSync(pemOrPath, "utf8");
  } catch {
    throw new OtaError("FILE_NOT_FOUND", pemOrPath);
  }
}

/** A private key from PEM text or a file path. Throws KEY_FORMAT, KEY_TYPE, FILE_NOT_FOUND. */
export function loadPrivateKey(pemOrPath: string): SigningKey {
  const text = readText(pemOrPath);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(text);
  } catch (e) {
    throw new OtaError("KEY_FORMAT", `not a private key PEM (${(e as Error).message})`);
  }
  const publicKey = createPublicKey(privateKey);
  const info = describe(publicKey);
  return { type: info.type, id: info.id, privateKey, publicKey, spki: info.spki };
}

/**
 * A public key from PEM text or a file path (a private key PEM gives its public half; a 64-byte
 * file is the raw X||Y that `espsecure.py extract_public_key --version 1` writes).
 * Throws KEY_FORMAT, KEY_TYPE, FILE_NOT_FOUND.
 */
export function loadPublicKey(pemOrPath: string, id?: string): PublicKeyInfo {
  if (!pemOrPath.includes("-----BEGIN")) {
    let raw: Buffer;
    try {
      raw = readFileSync(pemOrPath);
    } catch {
      throw new OtaError("FILE_NOT_FOUND", pemOrPath);
    }
    if (raw.length === 64 && !raw.includes("-----BEGIN")) {
      try {
        const jwk = { kty: "EC", crv: "P-256", x: raw.subarray(0, 32).toString("base64url"), y: raw.subarray(32).toString("base64url") };
        return describe(createPublicKey({ key: jwk, format: "jwk" }), id);
      } catch (e) {
        throw new OtaError("KEY_FORMAT", `64-byte raw key is not a P-256 point (${(e as Error).message})`);
      }
    }
  }
  const text = readText(pemOrPath);
  let pub: KeyObject;
  try {
    pub = createPublicKey(text);
  } catch (e) {
    throw new OtaError("KEY_FORMAT", `not a public or private key PEM (${(e as Error).message})`);
  }
  return describe(pub, id);
}

/** The device's configuration entry for a public key (modules/config.ts KeyConfig). */
export function keyConfigOf(info: { type: KeyType; id: string; spki: Uint8Array }, revoked = false): KeyConfigInput {
  const c: KeyConfigInput = { id: info.id, type: info.type, spki: toBase64(info.spki) };
  if (revoked) c.revoked = true;
  return c;
}

/** The device's TrustedKey for a public key. */
export function trustedKeyOf(info: { type: KeyType; id: string; spki: Uint8Array }, revoked = false): TrustedKey {
  const parsed = parsePublicKeyDer(info.spki);
  const k: TrustedKey = parsed.type === "ecdsa-p256" ? { id: info.id, type: parsed.type, point: parsed.point } : { id: info.id, type: parsed.type, modulus: parsed.modulus, exponent: parsed.exponent };
  if (revoked) k.revoked = true;
  return k;
}

/** ECDSA P-256 private scalar (32 bytes). */
function ecScalar(k: SigningKey): Uint8Array {
  const jwk = k.privateKey.export({ format: "jwk" });
  if (!jwk.d) throw new OtaError("KEY_FORMAT", "EC key without a private scalar");
  return new Uint8Array(Buffer.from(jwk.d, "base64url"));
}

/** Deterministic (RFC 6979, SHA-256) ECDSA P-256 over a SHA-256 digest -> raw r||s. High S kept, as espsecure does. */
export function signDigestEcdsa(k: SigningKey, digest: Uint8Array): Uint8Array {
  if (k.type !== "ecdsa-p256") throw new OtaError("KEY_TYPE", "an ECDSA P-256 key is needed");
  return p256.sign(digest, ecScalar(k), { prehash: false, lowS: false, format: "compact" });
}

/** Sign a message: ES256 -> raw r||s (64 bytes); RS256 -> PKCS#1 v1.5 SHA-256 (256 bytes). */
export function signMessage(k: SigningKey, data: Uint8Array): Uint8Array {
  if (k.type === "ecdsa-p256") return new Uint8Array(nodeSign("sha256", data, { key: k.privateKey, dsaEncoding: "ieee-p1363" }));
  return new Uint8Array(nodeSign("sha256", data, k.privateKey));
}

export function writeKeyFiles(k: SigningKey, privatePath: string, publicPath?: string): void {
  writeFileSync(privatePath, privateKeyPem(k), { mode: 0o600 });
  if (publicPath) writeFileSync(publicPath, publicKeyPem(k));
}
