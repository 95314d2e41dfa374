/*
 * The update manifest's fields, checked strictly: each known field has one type and a bound,
 * unknown fields are ignored (dropped from the result, so later code never sees them).
 */
import { OtaError } from "./errors";
import { isPlainObject, own } from "./json";
import { isSemver } from "./semver";
import { constant } from "./constant";

export interface Manifest {
  schema: 1;
  product: string;
  version: string;
  secureVersion: number;
  url: string;
  size: number;
  /** lower-case hex */
  sha256: string;
  /**
   * Metadata version: only grows per product and channel (the tools default it to the signing
   * time, ms). The device refuses one lower than it has accepted (MANIFEST_REPLAY).
   */
  metaVersion: number;
  /** ms since the epoch; mandatory (freshness: a frozen mirror cannot serve it forever). */
  expires: number;
  /** Checked against the device's configured channel (MANIFEST_CHANNEL). */
  channel: string;
  chip?: number;
  hardware?: string[];
  groups?: string[];
  regions?: string[];
  rollout?: { id: string; percent: number };
  force?: boolean;
  minVersion?: string;
  notBefore?: number;
  signedImage?: boolean;
  notes?: string;
  /** Bandwidth cap for this release's download, bytes/s (the lower of it and the device's applies). */
  maxBytesPerSec?: number;
  /** Patches to this release from older images (modules/delta-download.ts); the full image above stays the fallback. */
  deltas?: ManifestDelta[];
  /**
   * The published object is an esp_encrypted_img file (modules/enc-image.ts): `url`, `size` and
   * `sha256` above are the encrypted file's, as downloaded; these are the plain image's, checked
   * after decryption. Not offered with `deltas` (a plain patch would give the image away).
   */
  encryption?: ManifestEncryption;
}

export type EncryptionScheme = "rsa3072" | "ecies-p256";

export interface ManifestEncryption {
  format: "esp_encrypted_img";
  /** How the AES-GCM key is wrapped: the device key it needs. */
  scheme: EncryptionScheme;
  /** The plain image: its size (= size - 512) and SHA-256 (lower-case hex). */
  plainSize: number;
  plainSha256: string;
}

export type DeltaCompression = "none" | "heatshrink";

/**
 * A detools sequential patch from one base image to this release. Taken only when the running
 * image's first `from.size` bytes hash to `from.sha256`; signed with the rest of the manifest.
 */
export interface ManifestDelta {
  from: { version: string; size: number; sha256: string };
  /** https: URL of the patch (relative to the manifest URL allowed). */
  url: string;
  /** Patch bytes on the wire and their SHA-256 (lower-case hex). */
  size: number;
  sha256: string;
  compression: DeltaCompression;
}

/** Bounds, shared by the tool that writes manifests (so it refuses what devices would). */
export const MANIFEST_LIMITS = constant({
  envelopeBytes: 8192,
  payloadBytes: 6000,
  name: 64,
  url: 1024,
  notes: 2048,
  listItems: 32,
  maxImageSize: 16 * 1024 * 1024,
  deltas: 4,
} as const);


function fail(field: string, why: string): never {
  throw new OtaError("MANIFEST_FIELD", `${field}: ${why}`);
}

// Names become path segments on the update host (products/<product>/<channel>/): no "." or "..".
// The RegExp is made where it is used, not at module level: a module-level RegExp of a module
// preloaded by xsl lives in ROM, and its exec crashed XS (SIGSEGV in fx_RegExp_prototype_exec,
// 2 to 9 boots in 15 on x-cli-lin; moddable-host/README.md).
function name(v: unknown, field: string): string {
  if (typeof v !== "string" || v.length < 1 || v.length > MANIFEST_LIMITS.name || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v)) fail(field, `expected 1..${MANIFEST_LIMITS.name} characters of [A-Za-z0-9._-], starting with a letter or digit`);
  return v;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) fail(field, `expected an integer in ${min}..${max}`);
  return v;
}

function list(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.length > MANIFEST_LIMITS.listItems) fail(field, `expected an array of at most ${MANIFEST_LIMITS.listItems} names`);
  return v.map((x, i) => name(x, `${field}[${i}]`));
}

function urlField(v: unknown, field: string): string {
  if (typeof v !== "string" || v.length < 1 || v.length > MANIFEST_LIMITS.url || /[\u0000-\u0020\u007f]/.test(v)) fail(field, `expected 1..${MANIFEST_LIMITS.url} characters without spaces or control characters`);
  return v;
}

function hex256(v: unknown, field: string): string {
  if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) fail(field, "expected 64 lower-case hex digits");
  return v;
}

function delta(v: unknown, field: string): ManifestDelta {
  if (!isPlainObject(v)) fail(field, "expected {from, url, size, sha256, compression}");
  const from = own(v, "from");
  if (!isPlainObject(from)) fail(`${field}.from`, "expected {version, size, sha256}");
  const compression = own(v, "compression");
  if (compression !== "none" && compression !== "heatshrink") fail(`${field}.compression`, "expected none or heatshrink");
  return {
    from: {
      version: semver(own(from, "version"), `${field}.from.version`),
      size: int(own(from, "size"), `${field}.from.size`, 1, MANIFEST_LIMITS.maxImageSize),
      sha256: hex256(own(from, "sha256"), `${field}.from.sha256`),
    },
    url: urlField(own(v, "url"), `${field}.url`),
    size: int(own(v, "size"), `${field}.size`, 1, MANIFEST_LIMITS.maxImageSize),
    sha256: hex256(own(v, "sha256"), `${field}.sha256`),
    compression,
  };
}

function encryption(v: unknown, size: number): ManifestEncryption {
  if (!isPlainObject(v)) fail("encryption", "expected {format, scheme, plainSize, plainSha256}");
  if (own(v, "format") !== "esp_encrypted_img") fail("encryption.format", "expected esp_encrypted_img");
  const scheme = own(v, "scheme");
  if (scheme !== "rsa3072" && scheme !== "ecies-p256") fail("encryption.scheme", "expected rsa3072 or ecies-p256");
  const plainSize = int(own(v, "plainSize"), "encryption.plainSize", 1, MANIFEST_LIMITS.maxImageSize);
  // the format has no padding: the file is the 512-byte header and a ciphertext as long as the image
  if (size !== plainSize + 512) fail("encryption.plainSize", `expected size - 512 (${size - 512}): an esp_encrypted_img file is its image and a 512-byte header`);
  return { format: "esp_encrypted_img", scheme, plainSize, plainSha256: hex256(own(v, "plainSha256"), "encryption.plainSha256") };
}

function semver(v: unknown, field: string): string {
  if (!isSemver(v)) fail(field, "expected a semantic version (MAJOR.MINOR.PATCH)");
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") fail(field, "expected true or false");
  return v;
}

/** Verified payload JSON -> Manifest. Throws MANIFEST_FIELD naming the first bad field. */
export function manifestFromJson(v: unknown): Manifest {
  if (!isPlainObject(v)) fail("(payload)", "expected a JSON object");
  if (own(v, "schema") !== 1) fail("schema", "expected 1");
  const url = urlField(own(v, "url"), "url");
  const sha = hex256(own(v, "sha256"), "sha256");
  const m: Manifest = {
    schema: 1,
    product: name(own(v, "product"), "product"),
    version: semver(own(v, "version"), "version"),
    secureVersion: int(own(v, "secureVersion"), "secureVersion", 0, 0xffffffff),
    url,
    size: int(own(v, "size"), "size", 1, MANIFEST_LIMITS.maxImageSize),
    sha256: sha,
    metaVersion: int(own(v, "metaVersion"), "metaVersion", 1, Number.MAX_SAFE_INTEGER),
    expires: int(own(v, "expires"), "expires", 0, Number.MAX_SAFE_INTEGER),
    channel: name(own(v, "channel"), "channel"),
  };
  const opt = (key: string) => own(v, key);
  if (opt("chip") !== undefined) m.chip = int(opt("chip"), "chip", 0, 0xffff);
  if (opt("hardware") !== undefined) m.hardware = list(opt("hardware"), "hardware");
  if (opt("groups") !== undefined) m.groups = list(opt("groups"), "groups");
  if (opt("regions") !== undefined) m.regions = list(opt("regions"), "regions");
  const r = opt("rollout");
  if (r !== undefined) {
    if (!isPlainObject(r)) fail("rollout", "expected {id, percent}");
    const percent = own(r, "percent");
    if (typeof percent !== "number" || !Number.isFinite(percent) || percent < 0 || percent > 100) fail("rollout.percent", "expected a number in 0..100");
    m.rollout = { id: name(own(r, "id"), "rollout.id"), percent };
  }
  if (opt("force") !== undefined) m.force = bool(opt("force"), "force");
  if (opt("minVersion") !== undefined) m.minVersion = semver(opt("minVersion"), "minVersion");
  if (opt("notBefore") !== undefined) m.notBefore = int(opt("notBefore"), "notBefore", 0, Number.MAX_SAFE_INTEGER);
  if (opt("signedImage") !== undefined) m.signedImage = bool(opt("signedImage"), "signedImage");
  if (opt("maxBytesPerSec") !== undefined) m.maxBytesPerSec = int(opt("maxBytesPerSec"), "maxBytesPerSec", 512, 0xffffffff);
  const notes = opt("notes");
  if (notes !== undefined) {
    if (typeof notes !== "string" || notes.length > MANIFEST_LIMITS.notes) fail("notes", `expected a string of at most ${MANIFEST_LIMITS.notes} characters`);
    m.notes = notes;
  }
  const deltas = opt("deltas");
  if (deltas !== undefined) {
    if (!Array.isArray(deltas) || deltas.length > MANIFEST_LIMITS.deltas) fail("deltas", `expected an array of at most ${MANIFEST_LIMITS.deltas}`);
    m.deltas = deltas.map((d, i) => delta(d, `deltas[${i}]`));
  }
  const enc = opt("encryption");
  if (enc !== undefined) {
    if (m.deltas) fail("encryption", "not with deltas: a plain patch would give the encrypted image away");
    m.encryption = encryption(enc, m.size);
  }
  return m;
}
