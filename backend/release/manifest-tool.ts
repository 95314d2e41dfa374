/*
 * Writing signed manifests (the build-server side of modules/manifest.ts). The payload is
 * checked with the device's own field validator before it is signed, so the tool refuses
 * what a device would refuse; the envelope is checked with the device's size limit.
 */
import { OtaError } from "../../modules/errors";
import { toBase64, toHex, utf8Encode, utf8Decode } from "../../modules/bytes";
import { manifestFromJson, parseEnvelope, MANIFEST_LIMITS, type Manifest, type ManifestDelta, type DeltaCompression, type SignatureAlg } from "../../modules/manifest";
import { parseImageStart } from "../../modules/image";
import { COMPRESSION_HEATSHRINK, COMPRESSION_NONE, ESP_DELTA_HEADER_SIZE, ESP_DELTA_MAGIC } from "../../modules/delta/patch";
import { sha256 } from "../crypto";
import { signMessage, type SigningKey } from "./keys";

export type ManifestInput = Omit<Manifest, "schema" | "size" | "sha256" | "metaVersion" | "expires" | "channel"> & {
  /** The image as published (signed bytes): size and sha256 are computed from it. */
  image?: Uint8Array;
  size?: number;
  sha256?: string;
  /** Default: the signing time (`signedAt`), ms: it only grows. */
  metaVersion?: number;
  /** Default: the signing time + DEFAULT_EXPIRY_MS. */
  expires?: number;
  /** Default: "stable" (the device's default channel). */
  channel?: string;
  /** The signing time, ms (default Date.now()): the defaults of metaVersion and expires. */
  signedAt?: number;
};

/** Default lifetime of a signed manifest: 365 days (re-sign before it runs out). */
export const DEFAULT_EXPIRY_MS = 365 * 24 * 3600 * 1000;

/**
 * A manifest's delta entry for a patch from `base` (the image as the device runs it, signed
 * bytes included): from.version from the base's esp_app_desc_t, sizes and SHA-256s computed.
 * Throws IMAGE_* when the base is not an app image.
 */
export function deltaEntry(o: { base: Uint8Array; patch: Uint8Array; url: string; compression?: DeltaCompression }): ManifestDelta {
  const { appDesc } = parseImageStart(o.base.subarray(0, Math.min(o.base.length, 4096)));
  return {
    from: { version: appDesc.version, size: o.base.length, sha256: toHex(sha256(o.base)) },
    url: o.url, size: o.patch.length, sha256: toHex(sha256(o.patch)), compression: o.compression ?? patchCompression(o.patch),
  };
}

/**
 * The compression a detools sequential patch declares (its first byte, after esp_delta_ota's
 * 64-byte header when there is one). Throws DELTA_FORMAT, DELTA_COMPRESSION.
 */
export function patchCompression(patch: Uint8Array): DeltaCompression {
  const esp = patch.length >= ESP_DELTA_HEADER_SIZE && ((patch[0]! | (patch[1]! << 8) | (patch[2]! << 16) | (patch[3]! << 24)) >>> 0) === ESP_DELTA_MAGIC;
  const b = patch[esp ? ESP_DELTA_HEADER_SIZE : 0];
  if (b === undefined || (b >> 4) & 7) throw new OtaError("DELTA_FORMAT", "not a detools sequential patch");
  if ((b & 0xf) === COMPRESSION_NONE) return "none";
  if ((b & 0xf) === COMPRESSION_HEATSHRINK) return "heatshrink";
  throw new OtaError("DELTA_COMPRESSION", `compression ${b & 0xf}; only none (0) and heatshrink (4)`);
}

/** Fill size/sha256 from the image and validate. Throws MANIFEST_FIELD naming the bad field. */
export function buildManifest(input: ManifestInput): Manifest {
  const { image, signedAt, ...rest } = input;
  const at = signedAt ?? Date.now();
  const candidate: Record<string, unknown> = { schema: 1, ...rest };
  candidate.channel ??= "stable";
  candidate.metaVersion ??= at;
  candidate.expires ??= at + DEFAULT_EXPIRY_MS;
  if (image) {
    candidate.size = image.length;
    candidate.sha256 = toHex(sha256(image));
  }
  for (const k of Object.keys(candidate)) if (candidate[k] === undefined) delete candidate[k];
  return manifestFromJson(candidate);
}

const algOf = (k: SigningKey): SignatureAlg => (k.type === "ecdsa-p256" ? "ES256" : "RS256");

/** Sign payload bytes with each key -> envelope bytes. Throws MANIFEST_TOO_LARGE, MANIFEST_UNSIGNED. */
export function signPayload(payload: Uint8Array, keys: readonly SigningKey[], keyIds?: readonly (string | undefined)[], limits: { envelopeBytes: number; payloadBytes: number } = MANIFEST_LIMITS): Uint8Array {
  if (!keys.length) throw new OtaError("MANIFEST_UNSIGNED", "no signing key given");
  if (payload.length > limits.payloadBytes) throw new OtaError("MANIFEST_TOO_LARGE", `payload ${payload.length} bytes > ${limits.payloadBytes}`);
  const signatures = keys.map((k, i) => ({ keyId: keyIds?.[i] ?? k.id, alg: algOf(k), sig: toBase64(signMessage(k, payload)) }));
  const envelope = utf8Encode(JSON.stringify({ payload: toBase64(payload), signatures }, null, 1) + "\n");
  if (envelope.length > limits.envelopeBytes) throw new OtaError("MANIFEST_TOO_LARGE", `envelope ${envelope.length} bytes > ${limits.envelopeBytes}`);
  return envelope;
}

/** The exact payload bytes of a manifest (compact JSON, fields in a fixed order). */
export function manifestPayload(m: Manifest): Uint8Array {
  return utf8Encode(JSON.stringify(m));
}

/** Manifest fields + image + keys -> signed envelope bytes. */
export function createManifest(input: ManifestInput & { keys: readonly SigningKey[]; keyIds?: readonly (string | undefined)[] }): Uint8Array {
  const { keys, keyIds, ...fields } = input;
  return signPayload(manifestPayload(buildManifest(fields)), keys, keyIds);
}

/** Add a signature to an existing envelope (key rotation: countersign with the new key). */
export function addSignature(envelope: Uint8Array, key: SigningKey, id?: string): Uint8Array {
  const env = parseEnvelope(envelope);
  const signatures = env.signatures.map((s) => ({ keyId: s.keyId, alg: s.alg, sig: toBase64(s.sig) }));
  signatures.push({ keyId: id ?? key.id, alg: algOf(key), sig: toBase64(signMessage(key, env.payload)) });
  const out = utf8Encode(JSON.stringify({ payload: toBase64(env.payload), signatures }, null, 1) + "\n");
  if (out.length > MANIFEST_LIMITS.envelopeBytes) throw new OtaError("MANIFEST_TOO_LARGE", `envelope ${out.length} bytes > ${MANIFEST_LIMITS.envelopeBytes}`);
  return out;
}

/** Read an envelope WITHOUT verifying it (for display): payload JSON and signer ids. */
export function inspectEnvelope(envelope: Uint8Array): { manifest: unknown; signatures: { keyId: string; alg: SignatureAlg }[] } {
  const env = parseEnvelope(envelope);
  let manifest: unknown;
  try {
    manifest = JSON.parse(utf8Decode(env.payload));
  } catch (e) {
    throw new OtaError("MANIFEST_SYNTAX", `payload: ${(e as Error).message}`);
  }
  return { manifest, signatures: env.signatures.map((s) => ({ keyId: s.keyId, alg: s.alg })) };
}
