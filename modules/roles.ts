/*
 * Roles and thresholds (issue 29, item 1): TUF's root/targets/timestamp split, sized for a
 * microcontroller. Every document travels in the manifest envelope (modules/manifest.ts: payload
 * + up to 8 detached signatures); what differs is who must sign it and how many of them.
 *
 * Root (signed by k of its own root keys, and for a rotation also by k of the previous root's):
 *   { "type": "root", "version": 1, "expires": <ms>,
 *     "keys": [ { "id": "rel-1", "type": "ecdsa-p256" | "rsa-2048", "spki": "<base64 DER>" }, ... ],   <= 16
 *     "roles": { "root":     { "keys": ["root-1", "root-2", "root-3"], "threshold": 2 },
 *                "release":  { "keys": ["rel-1"], "threshold": 1 },     offline: what may be installed
 *                "rollout":  { "keys": ["roll-1"], "threshold": 1 },    online: who, when, how many
 *                "commands": { "keys": ["cmd-1"], "threshold": 1 } } }  online: per-device control
 * A key not named by the current root is trusted for nothing: revocation is a new root without it.
 *
 * Release (signed by the release role's threshold): the manifest payload of modules/manifest-fields.ts;
 *   its rollout, force, groups, regions and notBefore are NOT taken from it (the rollout role's).
 * Rollout document (signed by the rollout role's threshold), the envelope devices fetch:
 *   { "payload": <base64 of the rollout JSON>, "signatures": [...],
 *     "release": "<base64 of the release envelope>",
 *     "roots": ["<base64 of root envelope n+1>", ...] }            optional: a rotation chain
 *   rollout JSON: { "type": "rollout", "product", "channel", "metaVersion", "expires",
 *     "release": "<SHA-256 hex of the release payload>",
 *     "rollout"?: {id, percent}, "groups"?, "regions"?, "force"?, "notBefore"? }
 * The device installs only what both verify: a stolen rollout key can halt, delay, re-target or
 * force a release the release role signed, never name an image it did not (the hash binds them).
 * Freshness (modules/freshness.ts) uses the rollout document's metaVersion; the expiry is the
 * earlier of the two documents'.
 *
 * Root "anchors" (optional, <= 3): [{ "id", "der": "<base64 DER of a CA certificate>", "notAfter": <ms> }]:
 * the TLS trust anchors for the update host and the broker (item 6). When the current root lists
 * anchors, the device's HTTPS requests and secure MQTT connections trust them in place of the
 * firmware's pinned CAs, on every engine (on Moddable, src/tls-chain.ts: each in its validity
 * period, in any order): a CA change is a new root that adds the next CA, both
 * overlap, a later root retires the old one (then no longer trusted). A root without anchors
 * leaves the pinned CAs in force.
 *
 * The current root lives in NVS (DOMAINS.trust "root": its verified payload as text, each anchor's DER
 * under a key of its own: storedRoot), the configuration's `root` (the one the firmware ships) until
 * the first rotation. A rotation takes
 * only version n + 1, signed by the threshold of root n AND of itself (ROOT_VERSION, ROLE_THRESHOLD).
 */
import { OtaError } from "./errors";
import { fromBase64, toHex, utf8Decode, utf8Encode } from "./bytes";
import { parseJsonBytes, isPlainObject, own } from "./json";
import { keyFromConfig, validKeyId, verifyWithKey, type TrustedKey } from "./keys";
import { parseEnvelope, type Envelope } from "./manifest";
import { manifestFromJson, MANIFEST_LIMITS, type Manifest } from "./manifest-fields";
import type { CryptoPort, HttpPort, MqttPort, StorePort } from "./ports";
import { DOMAINS } from "./nvs-domains";
import { constant } from "./constant";

export type RoleName = "root" | "release" | "rollout" | "commands";
export const ROLE_NAMES: readonly RoleName[] = constant(["root", "release", "rollout", "commands"]);

export interface Role {
  keys: string[];
  threshold: number;
}

/** A TLS trust anchor for the update host and broker (item 6: CA rollover without new firmware). */
export interface Anchor {
  id: string;
  /** base64 DER of the CA certificate. */
  der: string;
  /** The certificate's notAfter, ms (the tools read it; `fleet status` warns 90 days ahead). */
  notAfter: number;
}

export interface Root {
  version: number;
  expires: number;
  keys: TrustedKey[];
  roles: Record<RoleName, Role>;
  /** Empty: the firmware's pinned CA alone. */
  anchors: Anchor[];
}

/**
 * Sizes. A root file (envelope <= 12 KB, payload <= 9,000 bytes) may carry two CA anchors of an
 * RSA-4096 CA's size (<= 2,000 bytes of DER each) next to 16 keys; NVS keeps it in pieces of
 * less than its 4,000-byte string limit (RootStore). A roles-mode bundle (the rollout envelope
 * with its release and root chain) may be 16 KB: only a bundle that carries roots gets near it,
 * and the device holds it only while it checks.
 */
export const ROOT_LIMITS = constant({ keys: 16, roleKeys: 8, storedBytes: 3999, chain: 4, anchors: 3, anchorDer: 2000, envelopeBytes: 12288, payloadBytes: 9000, bundleBytes: 16384, walk: 16 } as const);
const ROOT_KEY = "root";
const ROOT_ENVELOPE = constant({ envelopeBytes: ROOT_LIMITS.envelopeBytes, payloadBytes: ROOT_LIMITS.payloadBytes });
const BUNDLE_ENVELOPE = constant({ envelopeBytes: ROOT_LIMITS.bundleBytes, payloadBytes: MANIFEST_LIMITS.payloadBytes });
/** NVS key of a stored anchor: "a." and the first 12 hex digits of its DER's SHA-256 (anchorKey). */
function isAnchorKey(key: string): boolean {
  return key.length === 14 && key.charCodeAt(0) === 0x61 && key.charCodeAt(1) === 0x2e;
}

function bad(why: string): never {
  throw new OtaError("ROOT_INVALID", why);
}

function parseJson(bytes: Uint8Array, what: string, limit: number = MANIFEST_LIMITS.payloadBytes): Record<string, unknown> {
  let v: unknown;
  try {
    v = parseJsonBytes(bytes, limit, 5, utf8Decode);
  } catch (e) {
    throw new OtaError("MANIFEST_SYNTAX", `${what}: ${(e as Error).message}`);
  }
  if (!isPlainObject(v)) throw new OtaError("MANIFEST_FIELD", `${what}: expected a JSON object`);
  return v;
}

function int(v: unknown, what: string, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > Number.MAX_SAFE_INTEGER) bad(`${what}: expected an integer >= ${min}`);
  return v;
}

/** Root payload JSON -> Root (structure only). Throws ROOT_INVALID, KEY_FORMAT, KEY_TYPE. */
export function rootFromJson(v: Record<string, unknown>, crypto: CryptoPort): Root {
  if (own(v, "type") !== "root") bad("type: expected root");
  const version = int(own(v, "version"), "version", 1);
  const expires = int(own(v, "expires"), "expires", 0);
  const list = own(v, "keys");
  if (!Array.isArray(list) || list.length < 1 || list.length > ROOT_LIMITS.keys) bad(`keys: expected 1..${ROOT_LIMITS.keys}`);
  const keys = list.map((k, i) => {
    if (!isPlainObject(k)) bad(`keys[${i}]: expected {id, type, spki}`);
    const id = own(k, "id");
    const type = own(k, "type");
    const spki = own(k, "spki");
    if (!validKeyId(id) || (type !== "ecdsa-p256" && type !== "rsa-2048") || typeof spki !== "string") bad(`keys[${i}]: expected {id, type, spki}`);
    return keyFromConfig({ id, type, spki }, crypto);
  });
  for (let i = 0; i < keys.length; i++) for (let j = 0; j < i; j++) if (keys[i]!.id === keys[j]!.id) bad(`keys: ${keys[i]!.id} twice`);
  const rolesV = own(v, "roles");
  if (!isPlainObject(rolesV)) bad("roles: expected an object");
  const roles = {} as Record<RoleName, Role>;
  for (const name of ROLE_NAMES) {
    const r = own(rolesV, name);
    if (!isPlainObject(r)) bad(`roles.${name}: missing`);
    const ids = own(r, "keys");
    if (!Array.isArray(ids) || ids.length < 1 || ids.length > ROOT_LIMITS.roleKeys) bad(`roles.${name}.keys: expected 1..${ROOT_LIMITS.roleKeys} key ids`);
    const names: string[] = [];
    for (const id of ids) {
      if (typeof id !== "string" || !keys.some((k) => k.id === id)) bad(`roles.${name}.keys: ${String(id)} is not in keys`);
      if (names.indexOf(id) >= 0) bad(`roles.${name}.keys: ${id} twice`);
      names.push(id);
    }
    const threshold = own(r, "threshold");
    if (typeof threshold !== "number" || !Number.isInteger(threshold) || threshold < 1 || threshold > names.length) bad(`roles.${name}.threshold: expected 1..${names.length}`);
    roles[name] = { keys: names, threshold };
  }
  const anchors: Anchor[] = [];
  const a = own(v, "anchors");
  if (a !== undefined) {
    if (!Array.isArray(a) || a.length > ROOT_LIMITS.anchors) bad(`anchors: expected at most ${ROOT_LIMITS.anchors}`);
    for (let i = 0; i < a.length; i++) {
      const x: unknown = a[i];
      if (!isPlainObject(x)) bad(`anchors[${i}]: expected {id, der, notAfter}`);
      const id = own(x, "id");
      const der = own(x, "der");
      if (!validKeyId(id) || typeof der !== "string" || der.length < 16 || der.length > Math.ceil(ROOT_LIMITS.anchorDer / 3) * 4) bad(`anchors[${i}]: expected {id, der (base64, <= ${ROOT_LIMITS.anchorDer} bytes), notAfter}`);
      try {
        fromBase64(der);
      } catch {
        bad(`anchors[${i}].der: not base64`);
      }
      anchors.push({ id, der, notAfter: int(own(x, "notAfter"), `anchors[${i}].notAfter`, 0) });
    }
  }
  return { version, expires, keys, roles, anchors };
}

/** The anchors as PEM text, one certificate after the other ("" when none). */
export function anchorsPem(root: Root): string {
  let out = "";
  for (const a of root.anchors) {
    out += "-----BEGIN CERTIFICATE-----\n";
    for (let i = 0; i < a.der.length; i += 64) out += a.der.slice(i, i + 64) + "\n";
    out += "-----END CERTIFICATE-----\n";
  }
  return out;
}

/**
 * The key ids of `role` whose signatures over env.payload verify; throws ROLE_THRESHOLD when
 * fewer than its threshold do. A key counts once, however many signatures name it.
 */
export function verifyRole(env: Envelope, root: Root, role: RoleName, crypto: CryptoPort): string[] {
  const spec = root.roles[role];
  const h = crypto.sha256();
  h.write(env.payload);
  const digest = h.close();
  const good: string[] = [];
  const detail: string[] = [];
  for (const s of env.signatures) {
    if (spec.keys.indexOf(s.keyId) < 0) {
      detail.push(`${s.keyId}: not a ${role} key of root ${root.version}`);
      continue;
    }
    if (good.indexOf(s.keyId) >= 0) continue;
    const key = root.keys.find((k) => k.id === s.keyId)!;
    const alg = key.type === "ecdsa-p256" ? "ES256" : "RS256";
    if (s.alg === alg && verifyWithKey(key, digest, s.sig, crypto)) good.push(s.keyId);
    else detail.push(`${s.keyId}: does not verify`);
  }
  if (good.length < spec.threshold) throw new OtaError("ROLE_THRESHOLD", `${role}: ${good.length} of ${spec.threshold} needed${detail.length ? ` (${detail.join("; ")})` : ""}`);
  return good;
}

/** A root envelope signed by its own root threshold (the shipped one, or one read back from NVS). Throws ROOT_INVALID, ROLE_THRESHOLD, MANIFEST_*. */
export function selfSignedRoot(envelope: Uint8Array, crypto: CryptoPort): Root {
  const env = parseEnvelope(envelope, ROOT_ENVELOPE);
  const root = rootFromJson(parseJson(env.payload, "root", ROOT_LIMITS.payloadBytes), crypto);
  verifyRole(env, root, "root", crypto);
  return root;
}

/**
 * Rotate from `current` to the root in `envelope`: version current + 1 exactly, signed by the
 * threshold of current's root role and of its own. Returns the new Root; does not store it.
 * Throws ROOT_VERSION, ROLE_THRESHOLD, ROOT_INVALID, MANIFEST_*.
 */
export function nextRoot(current: Root, envelope: Uint8Array, crypto: CryptoPort): Root {
  const env = parseEnvelope(envelope, ROOT_ENVELOPE);
  return takeRoot(current, env, rootFromJson(parseJson(env.payload, "root", ROOT_LIMITS.payloadBytes), crypto), crypto);
}

/** nextRoot's checks on an envelope already parsed into `next`. */
function takeRoot(current: Root, env: Envelope, next: Root, crypto: CryptoPort): Root {
  if (next.version !== current.version + 1) throw new OtaError("ROOT_VERSION", `root ${next.version} after root ${current.version}: only ${current.version + 1} is taken`);
  verifyRole(env, current, "root", crypto);
  verifyRole(env, next, "root", crypto);
  return next;
}

/** The device's root of trust: the configuration's until a rotation, then NVS's. */
export class RootStore {
  private root: Root | undefined;
  constructor(private readonly store: StorePort, private readonly shipped: string, private readonly crypto: CryptoPort) {}

  /** The current root (verified once per boot). Throws ROOT_INVALID, ROLE_THRESHOLD, MANIFEST_*, KEY_*. */
  current(): Root {
    if (this.root) return this.root;
    const stored = this.store.get(DOMAINS.trust, ROOT_KEY);
    let shipped: Root;
    try {
      shipped = selfSignedRoot(fromBase64(this.shipped), this.crypto);
    } catch (e) {
      throw new OtaError("ROOT_INVALID", `the configuration's root: ${(e as Error).message}`);
    }
    this.root = shipped;
    if (typeof stored === "string") {
      // a root verified at its rotation (NVS is trusted as for the journal and floor), its anchors
      // stored under their own keys and checked against the hashes it names
      const kept = rootFromJson(this.withAnchors(parseJson(utf8Encode(stored), "stored root", ROOT_LIMITS.storedBytes)), this.crypto);
      // a root the firmware ships newer than the stored one wins (a firmware update may carry it)
      if (kept.version > shipped.version) this.root = kept;
    }
    return this.root;
  }

  /**
   * Apply a chain of root envelopes in order (each the next version); the ones at or below the
   * current version are skipped (already applied). Stores the last one. Returns the current root.
   * Throws ROOT_VERSION, ROLE_THRESHOLD, ROOT_INVALID, MANIFEST_*: nothing is stored then.
   */
  rotate(chain: readonly Uint8Array[], wallNow: number): Root {
    let root = this.current();
    let last: Uint8Array | undefined; // the payload of the last root taken
    if (chain.length > ROOT_LIMITS.chain) throw new OtaError("ROOT_INVALID", `a chain of ${chain.length} roots, at most ${ROOT_LIMITS.chain} at once`);
    for (const envelope of chain) {
      // each root parsed once (its keys decoded once), then skipped when already taken
      const env = parseEnvelope(envelope, ROOT_ENVELOPE);
      const next = rootFromJson(parseJson(env.payload, "root", ROOT_LIMITS.payloadBytes), this.crypto);
      if (next.version <= root.version) continue;
      root = takeRoot(root, env, next, this.crypto);
      last = env.payload;
    }
    if (wallNow > 0 && wallNow >= root.expires) throw new OtaError("ROOT_EXPIRED", `root ${root.version} expired at ${root.expires}`);
    if (last) {
      const { text, anchors } = storedRoot(last, this.crypto);
      // the anchors first, the root last (the commit), then the anchors no root names: a power cut
      // at any point leaves the old root whole (its anchors still there) or the new one whole
      for (const [key, der] of anchors) if (this.store.get(DOMAINS.trust, key) !== der) this.store.set(DOMAINS.trust, key, der);
      this.store.set(DOMAINS.trust, ROOT_KEY, text);
      this.root = root;
      for (const key of this.store.keys(DOMAINS.trust)) if (isAnchorKey(key) && !anchors.some(([k]) => k === key)) this.store.delete(DOMAINS.trust, key);
    }
    return root;
  }

  /** The stored form back to a root payload: each anchor's "sha" replaced by the DER stored under anchorKey(sha). Throws ROOT_INVALID. */
  private withAnchors(v: Record<string, unknown>): Record<string, unknown> {
    const list = own(v, "anchors");
    if (!Array.isArray(list)) return v;
    const anchors = list.map((a: unknown, i) => {
      if (!isPlainObject(a) || typeof own(a, "sha") !== "string") return a;
      const sha = own(a, "sha") as string;
      const der = this.store.get(DOMAINS.trust, anchorKey(sha));
      if (typeof der !== "string" || digestHex(fromBase64(der), this.crypto) !== sha) bad(`stored anchors[${i}]: its certificate is missing or altered in NVS`);
      return { id: own(a, "id"), der, notAfter: own(a, "notAfter") };
    });
    return { ...v, anchors };
  }

  /** The keys of a role, as the single-signature verifiers (control commands) take them. */
  roleKeys(role: RoleName): TrustedKey[] {
    const root = this.current();
    return root.keys.filter((k) => root.roles[role].keys.indexOf(k.id) >= 0);
  }
}

function digestHex(bytes: Uint8Array, crypto: CryptoPort): string {
  const h = crypto.sha256();
  h.write(bytes);
  return toHex(h.close());
}

function anchorKey(sha: string): string {
  return `a.${sha.slice(0, 12)}`;
}

/**
 * The form a verified root payload is kept in NVS (DOMAINS.trust): "root" holds its JSON with each
 * anchor's DER replaced by its SHA-256 ({id, sha, notAfter}), and each DER (base64 text, at most
 * 2,668 characters) has its own key, anchorKey(sha), so a root with two large CA certificates stays
 * within NVS's 4,000-byte strings. Throws ROOT_INVALID when even that is over storedBytes.
 * The tools call it too (backend/release/roles-tool.ts), to refuse a root devices could not keep.
 */
export function storedRoot(payload: Uint8Array, crypto: CryptoPort): { text: string; anchors: [key: string, der: string][] } {
  const v = parseJson(payload, "root", ROOT_LIMITS.payloadBytes);
  const out: [string, string][] = [];
  const list = own(v, "anchors");
  const doc = Array.isArray(list)
    ? { ...v, anchors: list.map((a: unknown) => {
        const x = a as Record<string, unknown>;
        const der = own(x, "der") as string;
        const sha = digestHex(fromBase64(der), crypto);
        out.push([anchorKey(sha), der]);
        return { id: own(x, "id"), sha, notAfter: own(x, "notAfter") };
      }) }
    : v;
  const text = JSON.stringify(doc);
  const size = utf8Encode(text).length;
  if (size > ROOT_LIMITS.storedBytes) throw new OtaError("ROOT_INVALID", `root of ${size} bytes as stored > ${ROOT_LIMITS.storedBytes} (NVS): fewer or smaller keys`);
  return { text, anchors: out };
}

function b64(v: unknown, what: string, limit: number = MANIFEST_LIMITS.envelopeBytes): Uint8Array {
  if (typeof v !== "string" || v.length > Math.ceil(limit / 3) * 4) throw new OtaError("MANIFEST_FIELD", `${what}: expected base64`);
  try {
    return fromBase64(v);
  } catch {
    throw new OtaError("MANIFEST_FIELD", `${what}: not base64`);
  }
}

/**
 * The root versions a bundle's chain skips for a device at root `current` (a device offline across
 * several rotations, the chain carrying only the newest roots): current + 1 up to the chain's
 * first root above current, exclusive. The agent fetches each as root.<n>.json beside the manifest,
 * one by one, as TUF's clients walk N+1.root.json. [] when none is missing, when more than
 * ROOT_LIMITS.walk would be, or when the bundle cannot be read (verifyBundle then says why).
 */
export function missingRoots(envelope: Uint8Array, current: number): number[] {
  try {
    const wire = parseJsonBytes(envelope, ROOT_LIMITS.bundleBytes, 4, utf8Decode);
    const chain = isPlainObject(wire) ? own(wire, "roots") : undefined;
    if (!Array.isArray(chain)) return [];
    let first = 0;
    for (let i = 0; i < chain.length && i < ROOT_LIMITS.chain; i++) {
      const v = own(parseJson(parseEnvelope(b64(chain[i], "roots", ROOT_LIMITS.envelopeBytes), ROOT_ENVELOPE).payload, "root", ROOT_LIMITS.payloadBytes), "version");
      if (typeof v === "number" && v > current && (first === 0 || v < first)) first = v;
    }
    const out: number[] = [];
    if (first - current - 1 > ROOT_LIMITS.walk) return out;
    for (let n = current + 1; n < first; n++) out.push(n);
    return out;
  } catch {
    return [];
  }
}

/**
 * A rollout envelope with its release (and any root chain) -> the Manifest to act on.
 * Order: roots rotated first (the chain is signed by root keys, whatever carries it), then the
 * rollout document verified with the rollout role, then the release with the release role, then
 * the binding (hash, product, channel). Throws ROLE_THRESHOLD, ROLLOUT_RELEASE, ROOT_*, MANIFEST_*, KEY_*.
 */
export function verifyBundle(envelope: Uint8Array, roots: RootStore, crypto: CryptoPort, wallNow: number): { manifest: Manifest; root: Root } {
  const outer = parseEnvelope(envelope, BUNDLE_ENVELOPE);
  let doc: unknown;
  try {
    doc = parseJsonBytes(envelope, ROOT_LIMITS.bundleBytes, 4, utf8Decode);
  } catch (e) {
    throw new OtaError("MANIFEST_SYNTAX", `envelope: ${(e as Error).message}`);
  }
  const wire = doc as Record<string, unknown>;
  const chain = own(wire, "roots");
  if (chain !== undefined && (!Array.isArray(chain) || chain.length > ROOT_LIMITS.chain)) throw new OtaError("MANIFEST_FIELD", `roots: expected an array of at most ${ROOT_LIMITS.chain}`);
  const root = chain ? roots.rotate(chain.map((c, i) => b64(c, `roots[${i}]`, ROOT_LIMITS.envelopeBytes)), wallNow) : roots.current();
  if (!chain && wallNow > 0 && wallNow >= root.expires) throw new OtaError("ROOT_EXPIRED", `root ${root.version} expired at ${root.expires}`);
  verifyRole(outer, root, "rollout", crypto);
  const ro = parseJson(outer.payload, "rollout");
  if (own(ro, "type") !== "rollout") throw new OtaError("MANIFEST_FIELD", "type: expected rollout");
  const inner = parseEnvelope(b64(own(wire, "release"), "release"));
  verifyRole(inner, root, "release", crypto);
  const release = manifestFromJson(parseJson(inner.payload, "release"));
  const h = crypto.sha256();
  h.write(inner.payload);
  const hash = toHex(h.close());
  if (own(ro, "release") !== hash) throw new OtaError("ROLLOUT_RELEASE", `the rollout names release ${String(own(ro, "release")).slice(0, 16)}, this one is ${hash.slice(0, 16)}`);
  if (own(ro, "product") !== release.product || own(ro, "channel") !== release.channel) throw new OtaError("ROLLOUT_RELEASE", "product or channel differ between the rollout and its release");
  // The rollout role's own fields, checked with the same validator (its release fields are the release's).
  const fields: Record<string, unknown> = { schema: 1, product: release.product, version: release.version, secureVersion: release.secureVersion, url: release.url, size: release.size, sha256: release.sha256, channel: release.channel };
  for (const k of ["metaVersion", "expires", "rollout", "groups", "regions", "force", "notBefore"]) if (own(ro, k) !== undefined) fields[k] = own(ro, k);
  const r = manifestFromJson(fields);
  const m: Manifest = { ...release, metaVersion: r.metaVersion, expires: Math.min(r.expires, release.expires) };
  delete m.rollout;
  delete m.force;
  delete m.groups;
  delete m.regions;
  delete m.notBefore;
  if (r.rollout) m.rollout = r.rollout;
  if (r.force !== undefined) m.force = r.force;
  if (r.groups) m.groups = r.groups;
  if (r.regions) m.regions = r.regions;
  if (r.notBefore !== undefined) m.notBefore = r.notBefore;
  return { manifest: m, root };
}

/**
 * The HTTP port with the current root's anchors on every request that names no CA of its own
 * (a redirect target's, modules/redirect.ts): the update host may move to a CA the root added.
 * A root that cannot be read leaves requests with the pinned CA alone.
 */
export function anchoredHttp(inner: HttpPort, roots: RootStore): HttpPort {
  return {
    request(options, handler) {
      if (options.ca !== undefined) return inner.request(options, handler);
      const pem = currentAnchors(roots);
      return inner.request(pem ? { ...options, ca: pem } : options, handler);
    },
  };
}

/**
 * The MQTT port with the current root's anchors on every `secure` connection that names no CA of
 * its own: the broker may move to a CA the root added, as the update host may (anchoredHttp).
 */
export function anchoredMqtt(inner: MqttPort, roots: RootStore): MqttPort {
  return {
    connect(options, handler) {
      if (!options.secure || options.ca !== undefined) return inner.connect(options, handler);
      const pem = currentAnchors(roots);
      return inner.connect(pem ? { ...options, ca: pem } : options, handler);
    },
  };
}

/** The current root's anchors as PEM; "" when it has none or cannot be read (the pinned CA then). */
function currentAnchors(roots: RootStore): string {
  try {
    return anchorsPem(roots.current());
  } catch {
    return "";
  }
}
