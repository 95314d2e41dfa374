/*
 * The signed update manifest, device side. The same code verifies in the tools.
 *
 * Envelope (UTF-8 JSON, at most 8 KB):
 *   { "payload": "<base64 of the manifest JSON bytes>",
 *     "signatures": [ { "keyId": "<id>", "alg": "ES256" | "RS256", "sig": "<base64>" }, ... ] }
 * Each signature is detached, over the exact payload bytes (SHA-256 of them):
 *   ES256 = ECDSA P-256; `sig` is raw r||s (64 bytes, as in JWS); DER is accepted too.
 *   RS256 = RSA-2048 PKCS#1 v1.5 with SHA-256 (no PSS: Moddable's crypt lacks it).
 * Several signatures allow key rotation: one valid signature by a trusted, non-revoked key
 * suffices. Signatures are checked before the payload is parsed. Unknown fields are ignored.
 */
import { OtaError, type ErrorCode } from "./errors";
import { fromBase64, utf8Decode } from "./bytes";
import { parseJsonBytes, isPlainObject, own } from "./json";
import { verifyWithKey, validKeyId, type TrustedKey } from "./keys";
import { manifestFromJson, MANIFEST_LIMITS, type Manifest } from "./manifest-fields";
import type { CryptoPort } from "./ports";
import { constant } from "./constant";

export type { Manifest, ManifestDelta, DeltaCompression, ManifestEncryption, EncryptionScheme } from "./manifest-fields";
export { MANIFEST_LIMITS, manifestFromJson } from "./manifest-fields";

export type SignatureAlg = "ES256" | "RS256";
export interface EnvelopeSignature {
  keyId: string;
  alg: SignatureAlg;
  sig: Uint8Array;
}
export interface Envelope {
  payload: Uint8Array;
  signatures: EnvelopeSignature[];
}

export const MAX_SIGNATURES = 8;
const MAX_SIG_BASE64 = 400; // RSA-2048: 256 bytes -> 344 characters

function syntax(why: string): never {
  throw new OtaError("MANIFEST_SYNTAX", why);
}
function field(why: string): never {
  throw new OtaError("MANIFEST_FIELD", why);
}

function b64(v: unknown, max: number, what: string): Uint8Array {
  if (typeof v !== "string" || v.length > max) field(`${what}: expected base64 of at most ${max} characters`);
  try {
    return fromBase64(v);
  } catch {
    return field(`${what}: not base64`);
  }
}

function decode(b: Uint8Array): string {
  return utf8Decode(b);
}

/**
 * Envelope bytes -> payload bytes and signatures, structure only (no crypto). `limits`: a root
 * file's and a roles-mode bundle's are larger (modules/roles.ts ROOT_LIMITS).
 * Throws MANIFEST_TOO_LARGE, MANIFEST_SYNTAX, MANIFEST_FIELD, MANIFEST_UNSIGNED.
 */
export function parseEnvelope(envelope: Uint8Array, limits: { envelopeBytes: number; payloadBytes: number } = MANIFEST_LIMITS): Envelope {
  if (envelope.length > limits.envelopeBytes) throw new OtaError("MANIFEST_TOO_LARGE", `${envelope.length} bytes > ${limits.envelopeBytes}`);
  let doc: unknown;
  try {
    doc = parseJsonBytes(envelope, limits.envelopeBytes, 4, decode);
  } catch (e) {
    syntax(`envelope: ${(e as Error).message}`);
  }
  if (!isPlainObject(doc)) field("envelope: expected a JSON object");
  const payload = b64(own(doc, "payload"), Math.ceil(limits.payloadBytes / 3) * 4, "payload");
  if (payload.length === 0) field("payload: empty");
  const list = own(doc, "signatures");
  if (list === undefined || (Array.isArray(list) && list.length === 0)) throw new OtaError("MANIFEST_UNSIGNED", "no signatures");
  if (!Array.isArray(list) || list.length > MAX_SIGNATURES) field(`signatures: expected an array of 1..${MAX_SIGNATURES}`);
  const signatures = list.map((s, i): EnvelopeSignature => {
    if (!isPlainObject(s)) field(`signatures[${i}]: expected an object`);
    const keyId = own(s, "keyId");
    if (!validKeyId(keyId)) field(`signatures[${i}].keyId: expected 1..64 characters of [A-Za-z0-9._:-]`);
    const alg = own(s, "alg");
    if (alg !== "ES256" && alg !== "RS256") field(`signatures[${i}].alg: expected ES256 or RS256`);
    const sig = b64(own(s, "sig"), MAX_SIG_BASE64, `signatures[${i}].sig`);
    if (sig.length === 0) field(`signatures[${i}].sig: empty`);
    return { keyId, alg, sig };
  });
  return { payload, signatures };
}

const ALG_OF_TYPE = constant({ "ecdsa-p256": "ES256", "rsa-2048": "RS256" } as const);

/**
 * Find one signature over `payload` by a trusted, non-revoked key. Returns its key id.
 * Throws SIG_INVALID (a trusted key's signature failed, or algorithm/key mismatch),
 * SIG_REVOKED_KEY (only revoked keys signed), SIG_UNKNOWN_KEY (no signer is trusted).
 */
export function verifyEnvelopeSignatures(env: Envelope, keys: readonly TrustedKey[], crypto: CryptoPort): string {
  const h = crypto.sha256();
  h.write(env.payload);
  const digest = h.close();
  let worst: ErrorCode = "SIG_UNKNOWN_KEY";
  const detail: string[] = [];
  for (const s of env.signatures) {
    const key = keys.find((k) => k.id === s.keyId);
    if (!key) {
      detail.push(`${s.keyId}: not trusted`);
      continue;
    }
    if (key.revoked) {
      if (worst === "SIG_UNKNOWN_KEY") worst = "SIG_REVOKED_KEY";
      detail.push(`${s.keyId}: revoked`);
      continue;
    }
    if (ALG_OF_TYPE[key.type] === s.alg && verifyWithKey(key, digest, s.sig, crypto)) return key.id;
    worst = "SIG_INVALID";
    detail.push(`${s.keyId}: ${ALG_OF_TYPE[key.type] === s.alg ? "does not verify" : `alg ${s.alg} for a ${key.type} key`}`);
  }
  throw new OtaError(worst, detail.join("; "));
}

/**
 * Envelope bytes -> verified Manifest. Checks structure and at least one valid signature by a
 * trusted, non-revoked key. Does NOT check time, versions or targeting (AGENT/FLEET do).
 * Throws MANIFEST_SYNTAX/FIELD/TOO_LARGE/UNSIGNED, SIG_INVALID/UNKNOWN_KEY/REVOKED_KEY.
 */
export function verifyManifest(envelope: Uint8Array, keys: readonly TrustedKey[], crypto: CryptoPort): { manifest: Manifest; keyId: string; payload: Uint8Array } {
  const env = parseEnvelope(envelope);
  const keyId = verifyEnvelopeSignatures(env, keys, crypto);
  let json: unknown;
  try {
    json = parseJsonBytes(env.payload, MANIFEST_LIMITS.payloadBytes, 4, decode);
  } catch (e) {
    syntax(`payload: ${(e as Error).message}`);
  }
  return { manifest: manifestFromJson(json), keyId, payload: env.payload };
}
