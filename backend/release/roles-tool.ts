/*
 * Writing trust metadata (the build-server and fleet side of modules/roles.ts): root files
 * (offline root keys, k of n), release manifests (offline release keys: modules/manifest-fields.ts
 * payload) and rollout documents (online rollout keys) that bind a release by the SHA-256 of its
 * payload. Each is checked with the device's own parser before it is handed out.
 */
import { X509Certificate } from "node:crypto";
import { OtaError } from "../../modules/errors";
import { fromBase64, toBase64, toHex, utf8Decode, utf8Encode } from "../../modules/bytes";
import { parseEnvelope } from "../../modules/manifest";
import { rootFromJson, storedRoot, ROLE_NAMES, ROOT_LIMITS, type RoleName } from "../../modules/roles";
import { sha256, nodeCrypto } from "../crypto";
import { keyConfigOf, type SigningKey } from "./keys";
import { signPayload, DEFAULT_EXPIRY_MS } from "./manifest-tool";

export interface PublicKeyLike {
  type: SigningKey["type"];
  id: string;
  spki: Uint8Array;
}

export interface RootInput {
  version: number;
  /** Default: signedAt + 365 days. */
  expires?: number;
  signedAt?: number;
  /** Keys per role (public parts suffice); a key may serve several roles. */
  roles: Record<RoleName, { keys: readonly PublicKeyLike[]; threshold?: number }>;
  /** TLS trust anchors (CA certificates, PEM) for the update host: each one is trusted (in any order; on Moddable each in its validity period). */
  anchors?: readonly { id: string; pem: string }[];
}

/** A CA certificate (PEM) as a root anchor: its DER and notAfter. */
export function anchorOf(id: string, pem: string): { id: string; der: string; notAfter: number } {
  const cert = new X509Certificate(pem);
  return { id, der: toBase64(new Uint8Array(cert.raw)), notAfter: Date.parse(cert.validTo) };
}

/** The root payload bytes (compact JSON). Throws ROOT_INVALID when the device would refuse it. */
export function rootPayload(input: RootInput): Uint8Array {
  const at = input.signedAt ?? Date.now();
  const keys = new Map<string, { id: string; type: string; spki: string }>();
  const roles: Record<string, { keys: string[]; threshold: number }> = {};
  for (const name of ROLE_NAMES) {
    const r = input.roles[name];
    for (const k of r.keys) keys.set(k.id, { ...keyConfigOf(k), id: k.id } as { id: string; type: string; spki: string });
    roles[name] = { keys: r.keys.map((k) => k.id), threshold: r.threshold ?? 1 };
  }
  const doc: Record<string, unknown> = { type: "root", version: input.version, expires: input.expires ?? at + DEFAULT_EXPIRY_MS, keys: [...keys.values()], roles };
  if (input.anchors?.length) doc.anchors = input.anchors.map((a) => anchorOf(a.id, a.pem));
  rootFromJson(doc, nodeCrypto);
  const payload = utf8Encode(JSON.stringify(doc));
  // what the device refuses, refused here: the payload's size, and its size as NVS keeps it
  if (payload.length > ROOT_LIMITS.payloadBytes) throw new OtaError("ROOT_INVALID", `root payload ${payload.length} bytes > ${ROOT_LIMITS.payloadBytes}: fewer or smaller keys or anchors`);
  storedRoot(payload, nodeCrypto);
  return payload;
}

/** A root envelope signed by `signers` (the new root's root keys, and for a rotation the previous root's too). */
export function signRoot(input: RootInput, signers: readonly SigningKey[]): Uint8Array {
  return signPayload(rootPayload(input), signers, undefined, ROOT_LIMITS);
}

export interface RolloutInput {
  /** The release envelope (release role signed; modules/manifest.ts). */
  release: Uint8Array;
  rollout?: { id: string; percent: number };
  groups?: string[];
  regions?: string[];
  force?: boolean;
  notBefore?: number;
  /** Default: signedAt (ms): it only grows. */
  metaVersion?: number;
  /** Default: signedAt + 30 days (online metadata is short-lived). */
  expires?: number;
  signedAt?: number;
  /** Root envelopes to carry (a rotation chain, oldest first). */
  roots?: readonly Uint8Array[];
  keys: readonly SigningKey[];
}

export const ROLLOUT_EXPIRY_MS = 30 * 24 * 3600 * 1000;

/** The wire object devices fetch in roles mode: the rollout envelope with its release (and roots). Throws MANIFEST_*. */
export function createRollout(o: RolloutInput): Uint8Array {
  const inner = parseEnvelope(o.release);
  const release = JSON.parse(utf8Decode(inner.payload)) as { product: string; channel: string };
  const at = o.signedAt ?? Date.now();
  const doc: Record<string, unknown> = {
    type: "rollout", product: release.product, channel: release.channel,
    metaVersion: o.metaVersion ?? at, expires: o.expires ?? at + ROLLOUT_EXPIRY_MS, release: toHex(sha256(inner.payload)),
  };
  if (o.rollout) doc.rollout = o.rollout;
  if (o.groups) doc.groups = o.groups;
  if (o.regions) doc.regions = o.regions;
  if (o.force !== undefined) doc.force = o.force;
  if (o.notBefore !== undefined) doc.notBefore = o.notBefore;
  const signed = JSON.parse(utf8Decode(signPayload(utf8Encode(JSON.stringify(doc)), o.keys))) as Record<string, unknown>;
  signed.release = toBase64(o.release);
  if (o.roots?.length) signed.roots = o.roots.map((r) => toBase64(r));
  const out = utf8Encode(JSON.stringify(signed) + "\n");
  if (out.length > ROOT_LIMITS.bundleBytes) throw new OtaError("MANIFEST_TOO_LARGE", `rollout bundle ${out.length} bytes > ${ROOT_LIMITS.bundleBytes}${o.roots?.length ? ": carry only the newest root (devices fetch the ones before it as root.<n>.json beside the manifest)" : ""}`);
  return out;
}

/** The release envelope a rollout bundle carries (for display and re-signing). */
export function releaseOf(bundle: Uint8Array): Uint8Array {
  const o = JSON.parse(utf8Decode(bundle)) as { release?: string };
  if (typeof o.release !== "string") throw new OtaError("MANIFEST_FIELD", "release: missing");
  return fromBase64(o.release);
}

/** Anchors of a root (its envelope) that expire within `days` of `now` (or have expired), soonest first. */
export function expiringAnchors(rootEnvelope: Uint8Array, now: number, days = 90): { id: string; notAfter: number; days: number }[] {
  const doc = JSON.parse(utf8Decode(parseEnvelope(rootEnvelope, ROOT_LIMITS).payload)) as Record<string, unknown>;
  const root = rootFromJson(doc, nodeCrypto);
  const day = 24 * 3600 * 1000;
  return root.anchors
    .filter((a) => a.notAfter - now < days * day)
    .map((a) => ({ id: a.id, notAfter: a.notAfter, days: Math.floor((a.notAfter - now) / day) }))
    .sort((a, b) => a.notAfter - b.notAfter);
}
