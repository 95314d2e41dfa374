/*
 * The fuzz's machinery (Node side): a seeded PRNG, the keys, a CryptoPort that spends real
 * verification only where a signature could possibly verify, the mutators (byte-level and
 * structure-aware, recursing into base64-wrapped documents), and the oracle.
 *
 * The oracle, for every input: a refusal is a named OtaError code (never another exception);
 * an acceptance acted only on payload bytes a trusted key signed (an original's, or one the
 * mutator itself re-signed with a trusted key), with the meaning the original had, and passes
 * the document type's own semantic check (addressed to this device, newer than the last...).
 */
import { createPublicKey, verify as nodeVerify, type KeyObject } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import type { CryptoPort } from "../../modules/ports";
import { isErrorCode } from "../../modules/errors";
import { fromBase64, toBase64, toHex, utf8Encode } from "../../modules/bytes";
import { ecdsaDerToRaw } from "../../modules/der";
import { nodeCrypto, sha256 } from "../../backend/crypto";
import { generateKey, keyConfigOf, signMessage, type SigningKey } from "../../backend/release/keys";
import type { KeyConfigInput } from "../../modules/keys";
import type { Target, TargetContext, Verdict } from "./fuzz-targets";

// ---------------------------------------------------------------------------------------------
// PRNG

/** mulberry32: small, seeded, the same sequence on every run. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, chance: (p: number) => next() < p, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]! };
}
export type Rng = ReturnType<typeof rng>;

// ---------------------------------------------------------------------------------------------
// Keys

export type KeyRole = "trusted-ec" | "trusted-rsa" | "revoked-ec" | "stranger-ec" | "stranger-rsa";
/** Roles mode (modules/roles.ts): root v1's root keys a, b, c (2 of 3), d (added by v2), the release, rollout and commands keys. */
export type RoleKey = "root-a" | "root-b" | "root-c" | "root-d" | "release-1" | "release-2" | "rollout-1" | "commands-1";

export interface FuzzKeys {
  byRole: Record<KeyRole, SigningKey>;
  /** Roles mode's keys (never in the single-key configuration). */
  roles: Record<RoleKey, SigningKey>;
  /** The device's configuration: the two trusted keys and the revoked one. */
  configs: KeyConfigInput[];
  /** Keys whose signature makes bytes trusted. */
  trusted: SigningKey[];
  /** Roles mode: the keys whose signature makes bytes trusted as that kind ("root", "release", "rollout"); other kinds: `trusted`. */
  trustedFor: Record<string, SigningKey[]>;
  /**
   * The keys the mutator re-signs a changed payload of that kind with: a thief's (one root key of
   * a 2-of-3, the online rollout key signing a release); other kinds: the trusted keys.
   */
  resignWith: Record<string, SigningKey[]>;
}

/** Keys generated at test time: two trusted (ECDSA P-256, RSA-2048), one revoked, two the device never heard of. */
export function fuzzKeys(): FuzzKeys {
  const byRole: Record<KeyRole, SigningKey> = {
    "trusted-ec": generateKey("ecdsa-p256"),
    "trusted-rsa": generateKey("rsa-2048"),
    "revoked-ec": generateKey("ecdsa-p256"),
    "stranger-ec": generateKey("ecdsa-p256"),
    "stranger-rsa": generateKey("rsa-2048"),
  };
  const ec = () => generateKey("ecdsa-p256");
  const roles: Record<RoleKey, SigningKey> = {
    "root-a": ec(), "root-b": ec(), "root-c": ec(), "root-d": ec(),
    "release-1": ec(), "release-2": ec(), "rollout-1": ec(), "commands-1": ec(),
  };
  return {
    byRole,
    roles,
    configs: [keyConfigOf(byRole["trusted-ec"]), keyConfigOf(byRole["trusted-rsa"]), keyConfigOf(byRole["revoked-ec"], true)],
    trusted: [byRole["trusted-ec"], byRole["trusted-rsa"]],
    trustedFor: {
      root: [roles["root-a"], roles["root-b"], roles["root-c"], roles["root-d"]],
      release: [roles["release-1"], roles["release-2"]],
      rollout: [roles["rollout-1"]],
    },
    resignWith: {
      root: [roles["root-a"], roles["root-d"], roles["rollout-1"]],
      release: [roles["rollout-1"], roles["commands-1"]],
      // the stolen online key: what it signs may stage, halt or force, never name another image
      rollout: [roles["rollout-1"], roles["rollout-1"], roles["release-1"]],
    },
  };
}

export const algOf = (k: SigningKey) => (k.type === "ecdsa-p256" ? "ES256" : "RS256");

// ---------------------------------------------------------------------------------------------
// Crypto

/**
 * A CryptoPort for the fuzz, exact where it matters and fast elsewhere:
 * - SHA-256 is real.
 * - A signature over a digest of bytes nobody ever signed (every mutated payload) cannot verify
 *   unless ECDSA or RSA is broken: answered false at once (counted as `shortcut`). This is what
 *   makes 100,000 inputs fit in seconds; the cross-check in fuzz.test.ts runs a sample through
 *   host-sim's nodeCrypto as well and requires the same verdicts.
 * - Over a digest of signed bytes, each (key, digest, signature) is really verified, once
 *   (OpenSSL through node:crypto, with the same input rules as backend/crypto.ts: raw r||s or DER,
 *   high S accepted, RSA signature exactly the modulus' length), and the answer cached.
 */
export class FuzzCrypto implements CryptoPort {
  private messages = new Map<string, Uint8Array>();
  private verdicts = new Map<string, boolean>();
  private keyObjects = new Map<string, KeyObject>();
  stats = { shortcut: 0, cached: 0, computed: 0 };

  private permanent = new Set<string>();

  /** Bytes that were signed (by anyone): signatures over their digest are really checked. `forget` drops a temporary one. */
  know(message: Uint8Array, temporary = false): void {
    const hex = toHex(sha256(message));
    this.messages.set(hex, message);
    if (!temporary) this.permanent.add(hex);
  }

  forget(message: Uint8Array): void {
    const hex = toHex(sha256(message));
    if (!this.permanent.has(hex)) this.messages.delete(hex);
  }

  sha256() {
    return nodeCrypto.sha256();
  }

  private lookup(kind: string, key: string, digest: Uint8Array, signature: Uint8Array, run: (message: Uint8Array) => boolean): boolean {
    const message = this.messages.get(toHex(digest));
    if (!message) {
      this.stats.shortcut++;
      return false;
    }
    const id = `${kind}:${key}:${toHex(digest)}:${toHex(signature)}`;
    const hit = this.verdicts.get(id);
    if (hit !== undefined) {
      this.stats.cached++;
      return hit;
    }
    this.stats.computed++;
    let ok: boolean;
    try {
      ok = run(message);
    } catch {
      ok = false;
    }
    this.verdicts.set(id, ok);
    return ok;
  }

  private keyObject(id: string, jwk: object): KeyObject {
    let k = this.keyObjects.get(id);
    if (!k) this.keyObjects.set(id, (k = createPublicKey({ key: jwk as never, format: "jwk" })));
    return k;
  }

  verifyEcdsaP256(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
    if (digest.length !== 32 || publicKey.length !== 65 || publicKey[0] !== 4) return false;
    const id = toHex(publicKey);
    return this.lookup("e", id, digest, signature, (message) => {
      const raw = signature.length === 64 ? signature : ecdsaDerToRaw(signature);
      const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");
      const key = this.keyObject(id, { kty: "EC", crv: "P-256", x: b64u(publicKey.subarray(1, 33)), y: b64u(publicKey.subarray(33)) });
      return nodeVerify("sha256", message, { key, dsaEncoding: "ieee-p1363" }, raw);
    });
  }

  verifyRsaPkcs1Sha256(modulus: Uint8Array, exponent: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
    let m = modulus;
    while (m.length > 1 && m[0] === 0) m = m.subarray(1);
    if (digest.length !== 32 || signature.length !== m.length) return false;
    const id = `${toHex(m)}:${toHex(exponent)}`;
    return this.lookup("r", id, digest, signature, (message) => {
      const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");
      const key = this.keyObject(id, { kty: "RSA", n: b64u(m), e: b64u(exponent) });
      return nodeVerify("sha256", message, key, signature);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The world: what was signed, by whom, and what it means

export interface SigEntry {
  keyId: string;
  alg: string;
  sig: string;
}

export interface World {
  keys: FuzzKeys;
  crypto: FuzzCrypto;
  /** hex of payload bytes a trusted key signed -> the kinds of document it was signed as. */
  trusted: Map<string, Set<string>>;
  /** base64 payload -> signatures made over it (by whichever keys the generator used). */
  sigPool: Map<string, SigEntry[]>;
  /** hex of every payload signed (by any key) -> the kind of document it was made as. */
  kinds: Map<string, string>;
  /** Every signature entry made, for grafting onto other payloads. */
  allSigs: SigEntry[];
  /** Strings of the originals, by the key they stood under, for splicing across documents. */
  valuePool: Map<string, unknown[]>;
}

export function newWorld(keys: FuzzKeys): World {
  return { keys, crypto: new FuzzCrypto(), trusted: new Map(), kinds: new Map(), sigPool: new Map(), allSigs: [], valuePool: new Map() };
}

/**
 * Sign `payload` as a document of `kind` with `signers` -> envelope bytes (modules/manifest.ts's
 * format), registering the bytes (trusted if a trusted key signed) and the signatures in the pools.
 */
export function sign(world: World, kind: string, payload: Uint8Array, signers: readonly SigningKey[], pretty = true): Uint8Array {
  const b64 = toBase64(payload);
  world.crypto.know(payload);
  world.kinds.set(toHex(payload), kind);
  try {
    poolValues(world, JSON.parse(Buffer.from(payload).toString("utf8")));
  } catch {
    // not JSON: nothing to pool
  }
  const entries = signers.map((k) => ({ keyId: k.id, alg: algOf(k), sig: toBase64(signMessage(k, payload)) }));
  const pool = world.sigPool.get(b64) ?? [];
  pool.push(...entries);
  world.sigPool.set(b64, pool);
  world.allSigs.push(...entries);
  const trust = world.keys.trustedFor[kind] ?? world.keys.trusted;
  if (signers.some((k) => trust.includes(k))) {
    const hex = toHex(payload);
    const kinds = world.trusted.get(hex) ?? new Set<string>();
    kinds.add(kind);
    world.trusted.set(hex, kinds);
  }
  return utf8Encode(JSON.stringify({ payload: b64, signatures: entries }, null, pretty ? 1 : undefined) + (pretty ? "\n" : ""));
}

export function poolValues(world: World, doc: unknown): void {
  const walk = (v: unknown, key: string) => {
    if (v !== null && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) walk(x, Array.isArray(v) ? key : k);
      return;
    }
    const list = world.valuePool.get(key) ?? [];
    if (list.length < 64 && !list.includes(v)) list.push(v);
    world.valuePool.set(key, list);
  };
  walk(doc, "");
}

// ---------------------------------------------------------------------------------------------
// Mutators

/** One input: its bytes, what the mutator re-signed with a trusted key (hex -> kind), and the steps, for a failure report. */
export interface Mutant {
  bytes: Uint8Array;
  resigned: Map<string, string>;
  steps: string[];
}

const TOKENS = ["{", "}", "[", "]", ",", ":", '"', "\\", "null", "true", "false", "1e999", "-0", "0.0", "\u0000", "\uffff", "\ud800", "\u2028", "\ufeff",
  '"payload"', '"signatures"', '"__proto__"', '"keyId"', '"alg"', '"sig"', '"cmd"', '"envelope"', '"manifest"', '"url"', "AAAA", "=", "==", "\xff", "\xc0\x80", " ", "\n", "\t", "[".repeat(40)];

/** Raw byte sequences no UTF-8 encoder makes: overlong NUL, a CESU-8 surrogate, past U+10FFFF, truncated, a BOM, bare continuation bytes. */
const RAW: number[][] = [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xef, 0xbb, 0xbf], [0xff], [0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x00]];

const HOSTILE: unknown[] = [
  null, true, false, 0, -0, -1, 1, 1.5, 0.1, 1e21, 1e308, -1e308, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 4294967296,
  "", " ", "0", "1", "true", "null", "ES256", "RS256", "es256", "none", "HS256", "force", "check", "pause", "cancel", "install", "download-only", "resume", "reboot",
  "x".repeat(65), "x".repeat(2049), "A".repeat(401), "A".repeat(8000), "\u0000", "\ud800", "\udfff", "\ud83d\ude00", "e\u0301", "\u00e9", "\u200b", "\u202e", "\ufeff", "\uffff",
  "https://evil.example/x.bin", "http://updates.example/x.bin", "https://h/a b", "../../etc", "AAAA", "AA==", "AB==", "A===", "====", "QUFB\n", "_-_-", "YQ",
  [], {}, [null], [[]], [{}], { payload: "" }, { __proto__: null }, ["a", 1], new Array(40).fill("g"), nest(6), nest(9), nest(64),
];

/** `depth` nested arrays around 1. */
export function nest(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

function byteMutate(r: Rng, src: Uint8Array, steps: string[]): Uint8Array {
  let b = Array.from(src);
  const rounds = 1 + r.int(3);
  for (let i = 0; i < rounds; i++) {
    const at = r.int(b.length + 1);
    const op = r.int(10);
    switch (op) {
      case 0: if (at < b.length) b[at] = b[at]! ^ (1 << r.int(8)); steps.push(`flip@${at}`); break;
      case 1: if (at < b.length) b[at] = r.int(256); steps.push(`set@${at}`); break;
      case 2: { const n = 1 + r.int(r.chance(0.2) ? 200 : 8); b.splice(at, n); steps.push(`del@${at}+${n}`); break; }
      case 3: {
        if (r.chance(0.3)) { const t = r.pick(RAW); b.splice(r.chance(0.2) ? 0 : at, 0, ...t); steps.push(`raw@${at}:${t.join(".")}`); break; }
        const t = r.pick(TOKENS);
        b.splice(at, 0, ...utf8(t));
        steps.push(`ins@${at}:${JSON.stringify(t).slice(0, 20)}`);
        break;
      }
      case 4: { const s = r.int(b.length), n = r.int(64); b.splice(at, 0, ...b.slice(s, s + n)); steps.push(`dup@${at}<${s}+${n}`); break; }
      case 5: b = b.slice(0, at); steps.push(`trunc@${at}`); break;
      case 6: { const n = r.chance(0.1) ? 9000 + r.int(6000) : 1 + r.int(64); for (let k = 0; k < n; k++) b.push(r.chance(0.5) ? 0x20 : r.int(256)); steps.push(`extend+${n}`); break; }
      case 7: { const s = r.int(b.length), n = 1 + r.int(16); if (s + n <= b.length && at + n <= b.length) { const x = b.slice(s, s + n), y = b.slice(at, at + n); b.splice(s, n, ...y); b.splice(at, n, ...x); } steps.push(`swap@${s},${at}`); break; }
      case 8: { const n = 1 + r.int(4); for (let k = 0; k < n && b.length; k++) { const j = r.int(b.length); b[j] = b[j]! ^ 0x80; } steps.push(`hibit*${n}`); break; }
      default: { const j = r.int(Math.max(1, b.length)); if (j < b.length) { const c = b[j]!; b[j] = c >= 0x61 && c <= 0x7a ? c - 32 : c >= 0x41 && c <= 0x5a ? c + 32 : c; } steps.push(`case@${j}`); break; }
    }
  }
  return Uint8Array.from(b);
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface Slot { parent: Json[] | { [k: string]: Json }; key: string | number; value: Json }

function slots(doc: Json): Slot[] {
  const out: Slot[] = [];
  const walk = (v: Json) => {
    if (v === null || typeof v !== "object") return;
    if (Array.isArray(v)) v.forEach((x, i) => { out.push({ parent: v, key: i, value: x }); walk(x); });
    else for (const k of Object.keys(v)) { out.push({ parent: v, key: k, value: v[k]! }); walk(v[k]!); }
  };
  walk(doc);
  return out;
}

function set(s: Slot, value: Json | undefined): void {
  if (Array.isArray(s.parent)) {
    if (value === undefined) s.parent.splice(s.key as number, 1);
    else s.parent[s.key as number] = value;
  } else if (value === undefined) delete s.parent[s.key as string];
  else s.parent[s.key as string] = value;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** The bytes of a strict (padded, standard alphabet) base64 string of at least 4 characters. */
function strictBase64(s: string): Uint8Array | undefined {
  return s.length >= 4 && BASE64.test(s) ? new Uint8Array(Buffer.from(s, "base64")) : undefined;
}
const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
const utf8 = (t: string) => new Uint8Array(Buffer.from(t, "utf8"));

const P256_N = p256.Point.CURVE().n;

function bigBytes(n: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) { out[i] = Number(n & 0xffn); n >>= 8n; }
  return out;
}
function bytesBig(b: Uint8Array): bigint {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
}
function derInt(b: Uint8Array): number[] {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = Array.from(b.subarray(i));
  if (v[0]! & 0x80) v.unshift(0);
  return [0x02, v.length, ...v];
}

/** Alternative encodings of a signature, valid or not: DER, high/low S swapped, r/s zero or n, truncated, padded. */
function sigVariant(r: Rng, sig: Uint8Array, steps: string[]): Uint8Array {
  const op = r.int(7);
  if (sig.length === 64 && op < 3) {
    const rr = sig.subarray(0, 32), s = sig.subarray(32);
    if (op === 0) { const body = [...derInt(rr), ...derInt(s)]; steps.push("sig:der"); return Uint8Array.from([0x30, body.length, ...body]); }
    if (op === 1) { steps.push("sig:malleate-s"); const out = new Uint8Array(sig); out.set(bigBytes(P256_N - bytesBig(s), 32), 32); return out; }
    steps.push("sig:r-or-s-edge");
    const out = new Uint8Array(sig);
    out.set(r.chance(0.5) ? new Uint8Array(32) : bigBytes(P256_N + (r.chance(0.5) ? 0n : bytesBig(r.chance(0.5) ? rr : s)), 32), r.chance(0.5) ? 0 : 32);
    return out;
  }
  if (op === 3) { steps.push("sig:trunc"); return sig.subarray(0, r.int(sig.length)); }
  if (op === 4) { steps.push("sig:pad"); const out = new Uint8Array(sig.length + 1 + r.int(4)); out.set(sig, r.chance(0.5) ? 0 : out.length - sig.length); return out; }
  if (op === 5) { steps.push("sig:zero-lead"); const out = new Uint8Array(sig); out[0] = 0; return out; }
  steps.push("sig:bytes");
  return byteMutate(r, sig, steps);
}

/** Operations on an envelope's signature list: the interesting part of a signed document. */
function mutateSignatures(r: Rng, world: World, env: { [k: string]: Json }, steps: string[]): void {
  const list = Array.isArray(env.signatures) ? (env.signatures as Json[]) : [];
  const pool = typeof env.payload === "string" ? world.sigPool.get(env.payload) ?? [] : [];
  const ids = [...Object.values(world.keys.byRole).map((k) => k.id), ...Object.values(world.keys.roles).map((k) => k.id), "x", "a".repeat(64), "a".repeat(65), "ROOT", "../k"];
  const anyEntry = () => ({ ...r.pick(pool.length && r.chance(0.6) ? pool : world.allSigs) }) as { [k: string]: Json };
  switch (r.int(11)) {
    case 0: list.push(anyEntry()); steps.push("sigs:add"); break;
    case 1: { const n = 2 + r.int(9); for (let i = 0; i < n; i++) list.push(anyEntry()); steps.push(`sigs:add*${n}`); break; }
    case 2: if (list.length) list.splice(r.int(list.length), 1); steps.push("sigs:remove"); break;
    case 3: list.reverse(); steps.push("sigs:reverse"); break;
    case 4: { if (!list.length) break; const e = list[r.int(list.length)]; if (e && typeof e === "object" && !Array.isArray(e)) { e.keyId = r.pick(ids); steps.push(`sigs:keyId=${String(e.keyId).slice(0, 16)}`); } break; }
    case 5: { if (!list.length) break; const e = list[r.int(list.length)]; if (e && typeof e === "object" && !Array.isArray(e)) { e.alg = e.alg === "ES256" ? "RS256" : "ES256"; steps.push("sigs:alg-swap"); } break; }
    case 6: { // a signature from one key under another key's id (and maybe algorithm): key-type confusion, spoofed ids
      if (!list.length) break;
      const e = list[r.int(list.length)];
      const donor = anyEntry();
      if (e && typeof e === "object" && !Array.isArray(e)) { e.sig = donor.sig!; if (r.chance(0.5)) e.alg = donor.alg!; steps.push("sigs:graft"); }
      break;
    }
    case 7: { // an alternative encoding of one signature
      if (!list.length) break;
      const e = list[r.int(list.length)];
      if (e && typeof e === "object" && !Array.isArray(e) && typeof e.sig === "string") {
        const raw = strictBase64(e.sig);
        if (raw) e.sig = b64(sigVariant(r, raw, steps));
      }
      break;
    }
    case 8: env.signatures = r.pick([[], {}, null, "", list.slice(0, 1), [list[0] ?? null, list[0] ?? null]] as Json[]); steps.push("sigs:shape"); return;
    case 9: { // another payload this document's signatures may fit: cross-document signature swap
      const other = r.pick([...world.sigPool.keys()]);
      env.payload = other;
      if (r.chance(0.5)) env.signatures = world.sigPool.get(other)!.map((e) => ({ ...e }));
      steps.push("sigs:payload-swap");
      return;
    }
    default: for (const e of list) if (e && typeof e === "object" && !Array.isArray(e)) for (const k of Object.keys(e)) if (r.chance(0.3)) { const v = e[k]; delete e[k]; e[k.toUpperCase()] = v!; } steps.push("sigs:key-case"); break;
  }
  if (Array.isArray(env.signatures) || !("signatures" in env)) env.signatures = list;
}

/** Sign a changed payload with a trusted key: what the device must still refuse or accept well-formed. */
function resign(r: Rng, world: World, env: { [k: string]: Json }, mutant: Mutant, payload: Uint8Array): void {
  // The kind it was signed as before; "any" for bytes the mutator changed without signing (the type's own checks still apply).
  const before = toHex(fromBase64(env.payload as string));
  const kind = world.kinds.get(before) ?? mutant.resigned.get(before) ?? "any";
  const fallback = r.chance(0.85) ? world.keys.byRole["trusted-ec"] : world.keys.byRole["trusted-rsa"];
  const choices = world.keys.resignWith[kind];
  const key = choices ? r.pick(choices) : fallback;
  world.crypto.know(payload, true);
  // a roles kind re-signed by a key its role does not hold is marked so: never bytes "signed as" that kind
  mutant.resigned.set(toHex(payload), !choices || world.keys.trustedFor[kind]?.includes(key) ? kind : "untrusted");
  env.payload = b64(payload);
  env.signatures = [{ keyId: key.id, alg: algOf(key), sig: b64(signMessage(key, payload)) }];
  mutant.steps.push(`resign:${kind}:${algOf(key)}`);
}

/** Mutate a parsed JSON document in place (or return a replacement). */
function treeMutate(r: Rng, world: World, doc: Json, mutant: Mutant, depth: number): Json {
  const steps = mutant.steps;
  const all = slots(doc);
  const isEnvelope = doc !== null && typeof doc === "object" && !Array.isArray(doc) && "payload" in doc;
  const op = r.int(isEnvelope ? 12 : 9);
  if (op >= 9) {
    const env = doc as { [k: string]: Json };
    if (op === 11 && typeof env.payload === "string") {
      // signed-hostile: change the payload's JSON and re-sign it with a trusted key
      const p = strictBase64(env.payload);
      let inner: Json | undefined;
      try { inner = p ? (JSON.parse(Buffer.from(p).toString("utf8")) as Json) : undefined; } catch { inner = undefined; }
      if (inner !== undefined) {
        const changed = treeMutate(r, world, inner, { bytes: new Uint8Array(0), resigned: mutant.resigned, steps }, 99);
        resign(r, world, env, mutant, utf8(encode(r, changed, steps)));
        return doc;
      }
    }
    mutateSignatures(r, world, env, steps);
    return doc;
  }
  if (!all.length || op === 8) {
    // the whole document: another type, deep nesting around it, an array of it
    steps.push("doc:wrap");
    return r.pick([[doc], { payload: doc } as Json, nest(r.pick([3, 8, 9, 40, 300])) as Json, { x: doc, y: nest(12) as Json }, "payload", 0]);
  }
  const s = r.pick(all);
  switch (op) {
    case 0: case 1: { const v = r.pick(HOSTILE) as Json; set(s, structuredClone(v)); steps.push(`val:${String(s.key)}=${JSON.stringify(v)?.slice(0, 24)}`); break; }
    case 2: set(s, undefined); steps.push(`del:${String(s.key)}`); break;
    case 3: { // a value some original had under the same key: splice across documents
      const pool = world.valuePool.get(String(s.key)) ?? world.valuePool.get(r.pick([...world.valuePool.keys()]))!;
      set(s, structuredClone(r.pick(pool)) as Json);
      steps.push(`splice:${String(s.key)}`);
      break;
    }
    case 4: { // clones: swapping an ancestor with its descendant must not make a cycle
      const t = r.pick(all);
      const a = structuredClone(s.value), b = structuredClone(t.value);
      set(s, b);
      set(t, a);
      steps.push(`swap:${String(s.key)}<->${String(t.key)}`);
      break;
    }
    case 5: { // an extra member
      const objs = all.map((x) => x.value).filter((v): v is { [k: string]: Json } => v !== null && typeof v === "object" && !Array.isArray(v));
      const target = objs.length && r.chance(0.6) ? r.pick(objs) : doc;
      if (target && typeof target === "object" && !Array.isArray(target)) {
        const k = r.pick(["x", "__proto__", "constructor", "toString", "PAYLOAD", "payload ", "signatures\u0000", "p\u0430yload", "\uff53ignatures", "payload\u200b", "hasOwnProperty", "schema", "cmd", "device", "force"]);
        target[k] = structuredClone(r.pick(HOSTILE)) as Json;
        steps.push(`add:${JSON.stringify(k)}`);
      }
      break;
    }
    case 6: case 7: {
      // a base64 string holding bytes: mutate what is inside (a payload, a signature, a nested envelope)
      const wrapped = all.filter((x) => typeof x.value === "string" && x.value.length >= 4 && BASE64.test(x.value));
      if (!wrapped.length || depth > 3) { set(s, structuredClone(r.pick(HOSTILE)) as Json); steps.push(`val:${String(s.key)}`); break; }
      const t = r.pick(wrapped);
      steps.push(`into:${String(t.key)}`);
      const inner = mutateBytes(r, world, strictBase64(t.value as string)!, mutant, depth + 1);
      const text = b64(inner);
      set(t, r.chance(0.9) ? text : r.pick([text.replace(/=+$/, ""), text.replace(/\+/g, "-"), ` ${text}`, text + "\n"]));
      break;
    }
  }
  return doc;
}

/** Re-encode a JSON value: compact or indented, maybe \u-escaped keys, other number spellings, a duplicate key. */
export function encode(r: Rng, doc: Json, steps: string[]): string {
  const style = r.int(10);
  if (style < 5) return JSON.stringify(doc);
  if (style === 5) { steps.push("enc:indent"); return JSON.stringify(doc, null, r.pick([1, 2, "\t"])); }
  const dupAt = style === 6 ? r.int(8) : -1;
  let objects = 0;
  const ws = () => (style === 7 ? r.pick(["", " ", "\n", "\t", "\r\n  "]) : "");
  const key = (k: string) => (style === 8 && r.chance(0.5) ? `"${[...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")}"` : JSON.stringify(k));
  const num = (n: number) => (style === 9 && Number.isInteger(n) && r.chance(0.5) ? r.pick([`${n}.0`, `${n}e0`, `${n}.000`]) : JSON.stringify(n));
  const enc = (v: Json): string => {
    if (typeof v === "number") return num(v);
    if (v === null || typeof v !== "object") return JSON.stringify(v);
    if (Array.isArray(v)) return `[${ws()}${v.map(enc).join(`,${ws()}`)}${ws()}]`;
    const parts = Object.keys(v).map((k) => `${ws()}${key(k)}${ws()}:${ws()}${enc(v[k]!)}`);
    if (objects++ === dupAt && parts.length) {
      // a duplicate key: JSON.parse keeps the last; the first is what a naive scanner might read
      const k = r.pick(Object.keys(v));
      const dup = `${JSON.stringify(k)}:${enc(structuredClone(r.pick(HOSTILE)) as Json)}`;
      if (r.chance(0.5)) parts.unshift(dup);
      else parts.push(dup);
      steps.push(`enc:dup:${k}`);
    }
    return `{${parts.join(",")}${ws()}}`;
  };
  if (style === 7) steps.push("enc:ws");
  if (style === 8) steps.push("enc:\\u-keys");
  if (style === 9) steps.push("enc:numbers");
  return enc(doc);
}

/** Bytes -> mutated bytes: byte-level, or (when they are JSON) structure-aware, recursing into base64 members. */
export function mutateBytes(r: Rng, world: World, src: Uint8Array, mutant: Mutant, depth = 0): Uint8Array {
  let doc: Json | undefined;
  if (r.chance(0.7)) {
    try {
      doc = JSON.parse(Buffer.from(src).toString("utf8")) as Json;
    } catch {
      doc = undefined;
    }
  }
  if (doc === undefined || (typeof doc !== "object" || doc === null)) return byteMutate(r, src, mutant.steps);
  const rounds = 1 + (r.chance(0.3) ? r.int(3) : 0);
  for (let i = 0; i < rounds; i++) doc = treeMutate(r, world, doc, mutant, depth);
  return utf8(encode(r, doc, mutant.steps));
}

export function mutate(r: Rng, world: World, original: Uint8Array): Mutant {
  const m: Mutant = { bytes: original, resigned: new Map(), steps: [] };
  const rounds = r.chance(0.8) ? 1 : 2;
  for (let i = 0; i < rounds; i++) m.bytes = mutateBytes(r, world, m.bytes, m);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Document types and the oracle

export interface Original {
  /** What a label in a report says. */
  name: string;
  bytes: Uint8Array;
  /** True: the device must accept it as it is; a code: it must refuse it with that code. */
  expect: true | string;
}

/**
 * One document type of the fuzz: how its valid signed objects are made, which verifier takes
 * them, and the type's own checks on anything accepted. Adding a document type is one entry.
 */
export interface DocType {
  name: string;
  /** Its share of the inputs, in turns per cycle (default 1; test/security/fuzz.test.ts). */
  weight?: number;
  /** The verifier (test/security/fuzz-targets.ts TARGETS, XS-safe: it also runs inside xsnap). */
  target: keyof typeof import("./fuzz-targets").TARGETS;
  /** The kind of document each entry of an accepted verdict's `signed` must have been signed as. */
  signedKinds: readonly string[];
  /** Valid (and deliberately invalid) signed objects, from keys generated at test time. */
  originals(world: World, setup: import("./fuzz-targets").TargetSetup): Original[];
  /** Refusal pseudo-codes the target may give besides OtaError codes: a reason when this one is wrong. */
  pseudo?(v: { code: string; detail: string }, input: Uint8Array): string | undefined;
  /** Semantic checks on an acceptance, from the signed bytes themselves (and the acceptable originals'): a reason when it must not have been accepted. */
  check?(v: { signed: string[]; out: string; stored?: string }, setup: import("./fuzz-targets").TargetSetup, p: Prepared): string | undefined;
  /**
   * A refusal that wrote NVS (`wrote`): a reason when that write is wrong. Without it every such
   * write is. (A rollout bundle's root chain is applied before the rollout is checked, by design:
   * the chain is signed by root keys whatever carries it; it may only ever be an acceptable root.)
   */
  wrote?(wrote: string, p: Prepared): string | undefined;
}

export interface Prepared {
  type: DocType;
  originals: Original[];
  /** `signed.join()` of each acceptable original -> its verdict's `out`. */
  expected: Map<string, string>;
}

/** Why a verdict breaks the oracle, or undefined. */
export function judge(p: Prepared, world: World, v: Verdict, m: Pick<Mutant, "bytes" | "resigned">, setup: import("./fuzz-targets").TargetSetup): string | undefined {
  if (!v.ok) {
    if (v.code === "NON-OTA") return `not an OtaError: ${v.detail}`;
    if (v.wrote) {
      const why = p.type.wrote ? p.type.wrote(v.wrote, p) : "what the device keeps for acceptances moved";
      if (why) return `refused (${v.code}: ${v.detail.slice(0, 120)}) but wrote ${v.wrote.slice(0, 200)}: ${why}`;
    }
    if (isErrorCode(v.code)) return undefined;
    if (!p.type.pseudo) return `unknown refusal code ${v.code}`;
    return p.type.pseudo(v, m.bytes);
  }
  if (v.signed.length < 1 || v.signed.length > p.type.signedKinds.length) return `accepted with ${v.signed.length} signed parts`;
  for (let i = 0; i < v.signed.length; i++) {
    const kind = p.type.signedKinds[i]!;
    const resigned = m.resigned.get(v.signed[i]!);
    if (!(world.trusted.get(v.signed[i]!)?.has(kind) || resigned === kind || resigned === "any")) return `accepted ${kind} bytes no trusted key signed as a ${kind}: ${Buffer.from(v.signed[i]!, "hex").toString("utf8").slice(0, 160)}`;
  }
  const want = p.expected.get(v.signed.join(","));
  if (want !== undefined && want !== v.out) return `accepted the signed bytes of an original with another meaning: ${v.out} (original: ${want})`;
  return p.type.check?.(v, setup, p);
}

export function prepare(type: DocType, world: World, setup: import("./fuzz-targets").TargetSetup, run: Target, ctx: TargetContext): Prepared {
  const originals = type.originals(world, setup);
  const expected = new Map<string, string>();
  const prepared = { type, originals, expected };
  // the acceptable ones first: a refused one's write is judged against them
  for (const o of [...originals.filter((x) => x.expect === true), ...originals.filter((x) => x.expect !== true)]) {
    poolValues(world, JSON.parse(Buffer.from(o.bytes).toString("utf8")));
    const v = run(o.bytes, ctx);
    if (o.expect === true) {
      if (!v.ok) throw new Error(`${type.name} original ${o.name} refused: ${v.code} ${v.detail}`);
      expected.set(v.signed.join(","), v.out);
    } else if (v.ok || v.code !== o.expect || (v.wrote && (!type.wrote || type.wrote(v.wrote, prepared)))) throw new Error(`${type.name} original ${o.name}: expected ${o.expect}, got ${JSON.stringify(v)}`);
  }
  return prepared;
}
