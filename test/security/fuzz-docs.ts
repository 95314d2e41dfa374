/*
 * The fuzz's document types, one entry each: the valid signed objects it starts from (keys
 * generated at test time), the verifier that takes them (test/security/fuzz-targets.ts), and
 * the type's own checks on an acceptance. A new document type is one more entry here and, when
 * it needs a new device call, one more verifier in TARGETS (as the root files and rollout bundles of
 * roles mode did: "root" and "bundle").
 */
import { toBase64, toHex, utf8Encode } from "../../modules/bytes";
import { SIGNED_COMMANDS } from "../../modules/control";
import { buildManifest, manifestPayload, type ManifestInput } from "../../backend/release/manifest-tool";
import { keyConfigOf, type SigningKey } from "../../backend/release/keys";
import { sha256 } from "../../backend/crypto";
import { sign, type DocType, type Original, type Prepared, type World } from "./fuzz-kit";
import { FUZZ_META, FUZZ_NOW, type TargetSetup } from "./fuzz-targets";

const text = (hex: string) => Buffer.from(hex, "hex").toString("utf8");

function manifestBytes(world: World, over: Partial<ManifestInput> & { product: string }, signers: readonly SigningKey[], pretty = true): Uint8Array {
  const m = buildManifest({ version: "1.2.3", secureVersion: 2, url: "https://updates.example/fw/1.2.3.bin", size: 4096, sha256: "ab".repeat(32), ...over });
  return sign(world, "manifest", manifestPayload(m), signers, pretty);
}

/** Signed releases: full-featured and minimal, one or both trusted keys, extra signatures; and the signed-by-the-wrong-key ones. */
function manifests(world: World, setup: TargetSetup): Original[] {
  const k = world.keys.byRole;
  const product = setup.product;
  const delta = { from: { version: "1.2.2", size: 4096, sha256: "cd".repeat(32) }, url: "https://updates.example/d.bin", size: 300, sha256: "ef".repeat(32), compression: "heatshrink" as const };
  return [
    { name: "full, ES256", expect: true, bytes: manifestBytes(world, { product, channel: setup.channel, groups: ["lab", "b"], regions: ["eu"], hardware: ["esp32-rev3"], rollout: { id: "r1", percent: 50 }, minVersion: "1.0.0", notBefore: 1, expires: 4_000_000_000_000, notes: "héllo ✓ 𝄞 \u2028", deltas: [delta], maxBytesPerSec: 4096 }, [k["trusted-ec"]]) },
    { name: "minimal, RS256", expect: true, bytes: manifestBytes(world, { product, version: "2.0.0" }, [k["trusted-rsa"]], false) },
    { name: "ES256 + RS256", expect: true, bytes: manifestBytes(world, { product, version: "1.3.0-rc.1+b7", chip: 0 }, [k["trusted-ec"], k["trusted-rsa"]]) },
    { name: "force, extra signatures", expect: true, bytes: manifestBytes(world, { product, version: "1.2.4", force: true }, [k["stranger-ec"], k["revoked-ec"], k["trusted-ec"]]) },
    { name: "encrypted", expect: true, bytes: manifestBytes(world, { product, version: "1.2.5", size: 4608, encryption: { format: "esp_encrypted_img", scheme: "ecies-p256", plainSize: 4096, plainSha256: "01".repeat(32) } }, [k["trusted-rsa"]]) },
    { name: "revoked key only", expect: "SIG_REVOKED_KEY", bytes: manifestBytes(world, { product, version: "9.9.9" }, [k["revoked-ec"]]) },
    { name: "stranger keys only", expect: "SIG_UNKNOWN_KEY", bytes: manifestBytes(world, { product, version: "9.9.8", force: true }, [k["stranger-ec"], k["stranger-rsa"]]) },
  ];
}

function controlBytes(world: World, cmd: string, device: string, issued: unknown, signer: SigningKey, pretty = false): Uint8Array {
  return sign(world, "control", utf8Encode(JSON.stringify({ schema: 1, cmd, device, issued })), [signer], pretty);
}

/** Signed control envelopes: every command for this device, newer than the last; and for another device, replayed, unknown. */
function controls(world: World, setup: TargetSetup): Original[] {
  const k = world.keys.byRole;
  const ok: Original[] = SIGNED_COMMANDS.map((cmd, i) => ({ name: cmd, expect: true, bytes: controlBytes(world, cmd, setup.deviceId, setup.lastIssued + 1 + i * 1000, i % 2 ? k["trusted-rsa"] : k["trusted-ec"], i % 3 === 0) }));
  return [
    ...ok,
    { name: "another device", expect: "ANNOUNCE_INVALID", bytes: controlBytes(world, "cancel", "bb0000000002", setup.lastIssued + 50, k["trusted-ec"]) },
    { name: "replayed", expect: "ANNOUNCE_INVALID", bytes: controlBytes(world, "install", setup.deviceId, setup.lastIssued, k["trusted-ec"]) },
    { name: "older", expect: "ANNOUNCE_INVALID", bytes: controlBytes(world, "resume", setup.deviceId, setup.lastIssued - 7, k["trusted-rsa"]) },
    { name: "unknown command", expect: "ANNOUNCE_INVALID", bytes: controlBytes(world, "reboot", setup.deviceId, setup.lastIssued + 60, k["trusted-ec"]) },
    { name: "fractional issued", expect: "MANIFEST_FIELD", bytes: controlBytes(world, "pause", setup.deviceId, setup.lastIssued + 0.5, k["trusted-ec"]) },
    { name: "stranger key", expect: "SIG_UNKNOWN_KEY", bytes: controlBytes(world, "force", setup.deviceId, setup.lastIssued + 70, k["stranger-ec"]) },
  ];
}

/** The control payload an acceptance acted on: addressed to this device, newer than the last, a known command. */
function controlPayloadCheck(hex: string, setup: TargetSetup, stored: string | undefined): { cmd?: string; why?: string } {
  let doc: { schema?: unknown; cmd?: unknown; device?: unknown; issued?: unknown };
  try {
    doc = JSON.parse(text(hex)) as typeof doc;
  } catch {
    return { why: "accepted a control payload that is not JSON" };
  }
  if (doc.schema !== 1) return { why: `accepted schema ${String(doc.schema)}` };
  if (doc.device !== setup.deviceId) return { why: `accepted a command for ${String(doc.device)}` };
  if (typeof doc.issued !== "number" || !Number.isInteger(doc.issued) || doc.issued <= setup.lastIssued) return { why: `accepted a replayed or bad issued ${String(doc.issued)} (last ${setup.lastIssued})` };
  if (typeof doc.cmd !== "string" || !SIGNED_COMMANDS.includes(doc.cmd as never)) return { why: `accepted unknown command ${String(doc.cmd)}` };
  // the replay guard now holds this command's issued: the same command again is a replay
  if (stored !== String(doc.issued)) return { why: `accepted issued ${doc.issued} but the replay guard holds ${String(stored)}` };
  return { cmd: doc.cmd };
}

/** MQTT messages on devices/<id>/cmd. */
function commands(world: World, setup: TargetSetup): Original[] {
  const k = world.keys.byRole;
  const env = (cmd: string, issued: number, signer = k["trusted-ec"], device = setup.deviceId) => toBase64(controlBytes(world, cmd, device, issued, signer));
  const force = manifestBytes(world, { product: setup.product, version: "1.2.9", force: true }, [k["trusted-ec"]], false);
  const notForce = manifestBytes(world, { product: setup.product, version: "1.2.8" }, [k["trusted-rsa"]], false);
  const msg = (o: object) => utf8Encode(JSON.stringify(o));
  const base = setup.lastIssued + 100_000;
  const out: Original[] = SIGNED_COMMANDS.filter((c) => c !== "force").map((cmd, i) => ({ name: cmd, expect: true, bytes: msg({ cmd, envelope: env(cmd, base + i, i % 2 ? k["trusted-rsa"] : k["trusted-ec"]) }) }));
  out.push(
    { name: "force", expect: true, bytes: msg({ cmd: "force", envelope: env("force", base + 20), manifest: toBase64(force) }) },
    { name: "force, manifest as JSON", expect: true, bytes: msg({ cmd: "force", envelope: env("force", base + 21, k["trusted-rsa"]), manifest: JSON.parse(Buffer.from(force).toString("utf8")) as unknown }) },
    { name: "unsigned force", expect: "ANNOUNCE_INVALID", bytes: msg({ cmd: "force", manifest: toBase64(force) }) },
    { name: "unsigned check", expect: "ANNOUNCE_INVALID", bytes: msg({ cmd: "check" }) },
    { name: "force, release not signed force", expect: "ANNOUNCE_INVALID", bytes: msg({ cmd: "force", envelope: env("force", base + 22), manifest: toBase64(notForce) }) },
    { name: "name differs from the signed command", expect: "ANNOUNCE_INVALID", bytes: msg({ cmd: "install", envelope: env("pause", base + 23) }) },
    { name: "another device", expect: "ANNOUNCE_INVALID", bytes: msg({ cmd: "cancel", envelope: env("cancel", base + 24, k["trusted-ec"], "bb0000000002") }) },
    { name: "replayed", expect: "ANNOUNCE_INVALID", bytes: msg({ cmd: "check", envelope: env("check", setup.lastIssued) }) },
    { name: "stranger key", expect: "ANNOUNCE_INVALID", bytes: msg({ cmd: "force", envelope: env("force", base + 25, k["stranger-rsa"]), manifest: toBase64(force) }) },
  );
  return out;
}

/** Messages on releases/<product>/<channel>: signed releases, a URL, and an unsigned release. */
function announcements(world: World, setup: TargetSetup): Original[] {
  const k = world.keys.byRole;
  return [
    { name: "release, ES256", expect: true, bytes: manifestBytes(world, { product: setup.product, version: "1.4.0", channel: setup.channel }, [k["trusted-ec"]]) },
    { name: "release, RS256 + stranger", expect: true, bytes: manifestBytes(world, { product: setup.product, version: "1.4.1", rollout: { id: "a", percent: 10 } }, [k["trusted-rsa"], k["stranger-ec"]], false) },
    { name: "url", expect: "FETCH", bytes: utf8Encode(JSON.stringify({ url: "https://updates.example/fuzz/stable/manifest.json" })) },
    { name: "unsigned release", expect: "ANNOUNCE_INVALID", bytes: utf8Encode(JSON.stringify({ payload: toBase64(utf8Encode(JSON.stringify({ schema: 1, product: setup.product, version: "9.0.0" }))), signatures: [] })) },
  ];
}

// ---------------------------------------------------------------------------------------------
// Roles mode (modules/roles.ts): root files and rollout bundles

const DAY = 86_400_000;

interface RootSpec {
  version: number;
  root: SigningKey[];
  threshold?: number;
  release: SigningKey[];
  expires?: number;
  anchors?: { id: string; der: string; notAfter: number }[];
  /** Change the document after it is built (a malformed one). */
  edit?: (doc: Record<string, unknown>) => void;
}

/** The root payload bytes (backend/release/roles-tool.ts rootPayload's layout; fake DER anchors: the device does not parse them). */
function rootBytes(world: World, spec: RootSpec): Uint8Array {
  const R = world.keys.roles;
  const keys = new Map<string, unknown>();
  const role = (ks: SigningKey[], threshold = 1) => {
    for (const k of ks) keys.set(k.id, keyConfigOf(k));
    return { keys: ks.map((k) => k.id), threshold };
  };
  const roles = { root: role(spec.root, spec.threshold ?? 2), release: role(spec.release), rollout: role([R["rollout-1"]]), commands: role([R["commands-1"]]) };
  const doc: Record<string, unknown> = { type: "root", version: spec.version, expires: spec.expires ?? FUZZ_NOW + 365 * DAY, keys: [...keys.values()], roles };
  if (spec.anchors) doc.anchors = spec.anchors;
  spec.edit?.(doc);
  return utf8Encode(JSON.stringify(doc));
}

const fakeCa = (id: string, n: number) => ({ id, der: Buffer.alloc(120, n).toString("base64"), notAfter: FUZZ_NOW + 400 * DAY });

/** One world's root files: v1 (the device's), the acceptable v2s and v3, and refused ones. */
interface RolesDocs {
  v1: Uint8Array;
  v2: Uint8Array;
  v2anchors: Uint8Array;
  v3: Uint8Array;
  bad: { name: string; expect: string; bytes: Uint8Array }[];
  /** hex of every root payload a device holding v1 may end up with: v2, v2 with anchors, v3. */
  acceptable: Set<string>;
}

const rolesDocsOf = new WeakMap<World, RolesDocs>();
let lastRolesDocs: RolesDocs | undefined;

function rolesDocs(world: World): RolesDocs {
  const known = rolesDocsOf.get(world);
  if (known) return known;
  const R = world.keys.roles;
  const [a, b, c, d] = [R["root-a"], R["root-b"], R["root-c"], R["root-d"]];
  const both = [R["release-1"], R["release-2"]];
  const root = (spec: RootSpec, signers: SigningKey[], pretty = true) => sign(world, "root", rootBytes(world, spec), signers, pretty);
  const p2 = rootBytes(world, { version: 2, root: [a, b, d], release: both });
  const p2anchors = rootBytes(world, { version: 2, root: [a, b, d], release: both, anchors: [fakeCa("ca2", 2), fakeCa("ca1", 1)] });
  // v3 revokes release-1 and root-a
  const p3 = rootBytes(world, { version: 3, root: [b, c, d], release: [R["release-2"]] });
  const docs: RolesDocs = {
    v1: root({ version: 1, root: [a, b, c], release: both }, [a, b]),
    // signed by 2 of v1's {a, b, c} and 2 of its own {a, b, d}
    v2: sign(world, "root", p2, [a, b], false),
    v2anchors: sign(world, "root", p2anchors, [c, b, d]),
    v3: sign(world, "root", p3, [b, d]),
    bad: [
      { name: "v2 below v1's threshold", expect: "ROLE_THRESHOLD", bytes: root({ version: 2, root: [a, d, c], release: both }, [a, d]) },
      { name: "v2 below its own threshold", expect: "ROLE_THRESHOLD", bytes: root({ version: 2, root: [c, d], release: both }, [a, b, d]) },
      { name: "v2 signed by strangers and the new key", expect: "ROLE_THRESHOLD", bytes: sign(world, "root", p2, [world.keys.byRole["stranger-ec"], d, R["rollout-1"]]) },
      { name: "v4 after v1 (skipped)", expect: "ROOT_VERSION", bytes: root({ version: 4, root: [a, b, d], release: both }, [a, b]) },
      { name: "v2 expired", expect: "ROOT_EXPIRED", bytes: root({ version: 2, root: [a, b, d], release: both, expires: FUZZ_NOW - DAY }, [a, b]) },
      { name: "v2 malformed (threshold above its keys)", expect: "ROOT_INVALID", bytes: root({ version: 2, root: [a, b, d], release: both, edit: (doc) => ((doc.roles as Record<string, { threshold: number }>).release!.threshold = 3) }, [a, b]) },
      { name: "v2 malformed (a role key not in keys)", expect: "ROOT_INVALID", bytes: root({ version: 2, root: [a, b, d], release: both, edit: (doc) => (doc.keys as unknown[]).splice(0, 1) }, [a, b]) },
    ],
    acceptable: new Set([toHex(p2), toHex(p2anchors), toHex(p3)]),
  };
  rolesDocsOf.set(world, docs);
  lastRolesDocs = docs;
  return docs;
}

/** The root the fuzz's roles-mode device ships (TargetSetup.root): v1, 2 of {a, b, c}. */
export function fuzzRoot(world: World): string {
  return toBase64(rolesDocs(world).v1);
}

const b64 = (b: Uint8Array) => toBase64(b);
const chain = (envs: Uint8Array[], pretty = false) => utf8Encode(JSON.stringify(envs.map(b64), null, pretty ? 1 : undefined));

/** Root files for a device holding v1: one root, or a chain (a JSON array of base64 envelopes). */
function roots(world: World): Original[] {
  const r = rolesDocs(world);
  return [
    { name: "v2 by a+b", expect: true, bytes: r.v2 },
    { name: "v2 with anchors by c+b+d", expect: true, bytes: r.v2anchors },
    { name: "chain v2, v3", expect: true, bytes: chain([r.v2, r.v3]) },
    { name: "chain v1, v2 with anchors, v3", expect: true, bytes: chain([r.v1, r.v2anchors, r.v3], true) },
    ...r.bad,
    { name: "v3 alone (skipped)", expect: "ROOT_VERSION", bytes: r.v3 },
    { name: "chain v3, v2 (out of order)", expect: "ROOT_VERSION", bytes: chain([r.v3, r.v2]) },
    { name: "chain of 5", expect: "ROOT_INVALID", bytes: chain([r.v2, r.v3, r.v3, r.v3, r.v3]) },
    { name: "v1 again", expect: "UNCHANGED", bytes: r.v1 },
  ];
}

function releaseEnv(world: World, over: Partial<ManifestInput> & { product: string; version: string }, signers: SigningKey[]): Uint8Array {
  const m = buildManifest({ secureVersion: 2, url: `https://updates.example/fw/${over.version}.bin`, size: 8192, sha256: toHex(sha256(utf8Encode(over.version))), channel: "stable", metaVersion: 1, expires: FUZZ_NOW + 365 * DAY, ...over });
  return sign(world, "release", manifestPayload(m), signers, false);
}

/** A rollout bundle (backend/release/roles-tool.ts createRollout's layout): the rollout envelope, its release and a root chain. */
function bundleBytes(world: World, release: Uint8Array, over: Record<string, unknown>, signers: SigningKey[], rootChain?: Uint8Array[], pretty = false): Uint8Array {
  const payload = Buffer.from((JSON.parse(Buffer.from(release).toString("utf8")) as { payload: string }).payload, "base64");
  const rel = JSON.parse(payload.toString("utf8")) as { product: string; channel: string };
  const doc = { type: "rollout", product: rel.product, channel: rel.channel, metaVersion: FUZZ_META + 1, expires: FUZZ_NOW + 30 * DAY, release: toHex(sha256(payload)), ...over };
  const env = JSON.parse(Buffer.from(sign(world, "rollout", utf8Encode(JSON.stringify(doc)), signers, false)).toString("utf8")) as Record<string, unknown>;
  env.release = b64(release);
  if (rootChain) env.roots = rootChain.map(b64);
  const out = utf8Encode(JSON.stringify(env, null, pretty ? 1 : undefined) + "\n");
  if (out.length > 8192) throw new Error(`a fuzz bundle of ${out.length} bytes`);
  return out;
}

/** Rollout bundles for a roles-mode device holding root v1 (product fuzz, channel stable, last metaVersion FUZZ_META). */
function bundles(world: World, setup: TargetSetup): Original[] {
  const R = world.keys.roles;
  const r = rolesDocs(world);
  const product = setup.product;
  const rollout = [R["rollout-1"]];
  const r1 = releaseEnv(world, { product, version: "1.5.0" }, [R["release-1"]]);
  const r2 = releaseEnv(world, { product, version: "1.6.0", secureVersion: 3, notes: "n" }, [R["release-2"], R["release-1"]]);
  const byRollout = releaseEnv(world, { product, version: "9.0.0", url: "https://evil.example/x.bin" }, rollout);
  const other = releaseEnv(world, { product: "other", version: "1.5.0" }, [R["release-1"]]);
  const beta = releaseEnv(world, { product, version: "1.5.1", channel: "beta" }, [R["release-1"]]);
  const hashOf = (env: Uint8Array) => toHex(sha256(Buffer.from((JSON.parse(Buffer.from(env).toString("utf8")) as { payload: string }).payload, "base64")));
  const badRoot = r.bad.find((x) => x.name === "v2 below v1's threshold")!.bytes;
  const expiredRoot = r.bad.find((x) => x.name === "v2 expired")!.bytes;
  return [
    { name: "50 %, groups, regions", expect: true, bytes: bundleBytes(world, r1, { rollout: { id: "r1", percent: 50 }, groups: ["lab"], regions: ["eu"] }, rollout, undefined, true) },
    { name: "forced, notBefore, root v2", expect: true, bytes: bundleBytes(world, r2, { force: true, notBefore: FUZZ_NOW - DAY, metaVersion: FUZZ_META + 2 }, rollout, [r.v2]) },
    { name: "root chain v2, v3", expect: true, bytes: bundleBytes(world, r2, { rollout: { id: "r3", percent: 100 }, metaVersion: FUZZ_META + 3 }, rollout, [r.v2, r.v3]) },
    { name: "release signed by the rollout key only", expect: "ROLE_THRESHOLD", bytes: bundleBytes(world, byRollout, { force: true }, rollout) },
    { name: "rollout names another release", expect: "ROLLOUT_RELEASE", bytes: bundleBytes(world, r2, { release: hashOf(r1) }, rollout) },
    { name: "rollout of another product than its release", expect: "ROLLOUT_RELEASE", bytes: bundleBytes(world, r1, { product: "other" }, rollout) },
    { name: "rollout of another channel than its release", expect: "ROLLOUT_RELEASE", bytes: bundleBytes(world, r1, { channel: "beta" }, rollout) },
    { name: "another product", expect: "POLICY_PRODUCT", bytes: bundleBytes(world, other, {}, rollout) },
    { name: "another channel", expect: "MANIFEST_CHANNEL", bytes: bundleBytes(world, beta, {}, rollout) },
    { name: "rollout signed by the release key only", expect: "ROLE_THRESHOLD", bytes: bundleBytes(world, r1, {}, [R["release-1"]]) },
    { name: "rollout signed by a root key", expect: "ROLE_THRESHOLD", bytes: bundleBytes(world, r1, {}, [R["root-a"]]) },
    { name: "replayed metaVersion", expect: "MANIFEST_REPLAY", bytes: bundleBytes(world, r1, { metaVersion: FUZZ_META - 1 }, rollout) },
    { name: "expired rollout", expect: "MANIFEST_EXPIRED", bytes: bundleBytes(world, r1, { expires: FUZZ_NOW - 1 }, rollout) },
    { name: "release key revoked by root v3", expect: "ROLE_THRESHOLD", bytes: bundleBytes(world, r1, {}, rollout, [r.v2, r.v3]) },
    { name: "root below v1's threshold", expect: "ROLE_THRESHOLD", bytes: bundleBytes(world, r1, {}, rollout, [badRoot]) },
    { name: "root v3 after v1", expect: "ROOT_VERSION", bytes: bundleBytes(world, r1, {}, rollout, [r.v3]) },
    { name: "root v2 expired", expect: "ROOT_EXPIRED", bytes: bundleBytes(world, r1, {}, rollout, [expiredRoot]) },
  ];
}

/** An accepted root's payload must be one a device holding v1 may take (byte for byte): v2, v2 with anchors, v3. */
function acceptableRoot(hex: string): string | undefined {
  if (lastRolesDocs?.acceptable.has(hex)) return undefined;
  return `took a root no valid original carried: ${text(hex).slice(0, 160)}`;
}

const sameJson = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
/** What the device kept of a signed value: equal, or for an object its members the device knows (the validator drops the others). */
const kept = (acted: unknown, signed: unknown) =>
  acted !== null && typeof acted === "object" && !Array.isArray(acted)
    ? signed !== null && typeof signed === "object" && !Array.isArray(signed) && Object.keys(acted).every((k) => sameJson((acted as Record<string, unknown>)[k], (signed as Record<string, unknown>)[k]))
    : sameJson(acted, signed);

/** An accepted bundle: a release a valid original carried, acted on with its own fields and the rollout's, bound by hash, product and channel. */
function bundleCheck(v: { signed: string[]; out: string }, setup: TargetSetup, p: Prepared): string | undefined {
  const releases = new Set([...p.expected.keys()].map((k) => k.split(",")[1]));
  if (!releases.has(v.signed[1])) return `installs a release no valid original carried: ${text(v.signed[1]!).slice(0, 200)}`;
  if (v.signed[2] !== undefined) {
    const why = acceptableRoot(v.signed[2]);
    if (why) return why;
  }
  const m = /^(.*)\|root v(\d+)\|fresh=(.*)$/s.exec(v.out);
  if (!m) return `unreadable verdict ${v.out.slice(0, 100)}`;
  const acted = JSON.parse(m[1]!) as Record<string, unknown>;
  const rel = JSON.parse(text(v.signed[1]!)) as Record<string, unknown>;
  const ro = JSON.parse(text(v.signed[0]!)) as Record<string, unknown>;
  for (const k of ["product", "channel", "version", "secureVersion", "url", "size", "sha256"]) if (!sameJson(acted[k], rel[k])) return `acted on ${k} ${JSON.stringify(acted[k])}, the release signed ${JSON.stringify(rel[k])}`;
  if (acted.product !== setup.product || acted.channel !== setup.channel) return `acted on ${String(acted.product)}/${String(acted.channel)}`;
  if (ro.type !== "rollout" || ro.release !== toHex(sha256(Buffer.from(v.signed[1]!, "hex"))) || ro.product !== rel.product || ro.channel !== rel.channel) return `a rollout not bound to its release: ${text(v.signed[0]!).slice(0, 200)}`;
  for (const k of ["metaVersion", "rollout", "groups", "regions", "force", "notBefore"]) if (!kept(acted[k], ro[k])) return `acted on ${k} ${JSON.stringify(acted[k])}, the rollout signed ${JSON.stringify(ro[k])}`;
  if (acted.expires !== Math.min(ro.expires as number, rel.expires as number)) return `expires ${String(acted.expires)}, not the earlier of the two documents'`;
  if ((acted.metaVersion as number) < FUZZ_META || (acted.expires as number) <= FUZZ_NOW) return `a stale or expired rollout: ${String(acted.metaVersion)}, ${String(acted.expires)}`;
  const rootVersion = v.signed[2] === undefined ? 1 : (JSON.parse(text(v.signed[2])) as { version: number }).version;
  if (Number(m[2]) !== rootVersion) return `root v${m[2]} after taking root ${rootVersion}`;
  // a lane is [metaVersion, content digest] (modules/freshness.ts)
  const lanes = JSON.parse(m[3]!) as Record<string, unknown>;
  const lane = lanes[`${setup.product}/${setup.channel}`];
  if (Object.keys(lanes).length !== 1 || !Array.isArray(lane) || lane[0] !== acted.metaVersion || !/^[0-9a-f]{32}$/.test(String(lane[1]))) return `freshness holds ${m[3]} after metaVersion ${String(acted.metaVersion)}`;
  return undefined;
}

/** A refused bundle may have applied its root chain first: only ever to an acceptable root, and no freshness write. */
function bundleWrote(wrote: string): string | undefined {
  for (const part of wrote.split(";")) {
    if (!part.startsWith("root=")) return `a refusal wrote ${part.slice(0, 80)}`;
    const why = acceptableRoot(part.slice(5));
    if (why) return why;
  }
  return undefined;
}

export const DOC_TYPES: readonly DocType[] = [
  {
    name: "manifest",
    weight: 5,
    target: "manifest",
    signedKinds: ["manifest"],
    originals: manifests,
  },
  {
    name: "control",
    weight: 5,
    target: "control",
    signedKinds: ["control"],
    originals: controls,
    check(v, setup) {
      const c = controlPayloadCheck(v.signed[0]!, setup, v.stored);
      if (c.why) return c.why;
      const [cmd] = v.out.split("|");
      return cmd === c.cmd ? undefined : `returned ${cmd} for a signed ${c.cmd}`;
    },
  },
  {
    name: "command",
    weight: 5,
    target: "command",
    signedKinds: ["control", "manifest"],
    originals: commands,
    check(v, setup) {
      const c = controlPayloadCheck(v.signed[0]!, setup, v.stored);
      if (c.why) return c.why;
      const want = c.cmd === "check" ? "check|force=false" : c.cmd === "force" ? "check|force=true" : `control|${c.cmd}`;
      if (v.out !== want) return `acted as ${v.out} on a signed ${c.cmd}`;
      if (c.cmd === "force") {
        if (v.signed.length !== 2) return "a force without its release";
        const m = JSON.parse(text(v.signed[1]!)) as { force?: unknown };
        if (m.force !== true) return "forced a release not signed with force: true";
      } else if (v.signed.length !== 1) return `a ${c.cmd} that carried a release`;
      return undefined;
    },
  },
  {
    name: "announcement",
    weight: 5,
    target: "announcement",
    signedKinds: ["manifest"],
    originals: announcements,
    pseudo(v, input) {
      if (v.code === "IGNORED") return input.length === 0 ? undefined : "a non-empty announcement neither acted on nor refused";
      if (v.code === "FETCH") {
        let doc: { url?: unknown };
        try {
          doc = JSON.parse(Buffer.from(input).toString("utf8")) as typeof doc;
        } catch {
          return "fetched a URL from an announcement that is not JSON";
        }
        return typeof doc.url === "string" && /^https:\/\//i.test(doc.url) && v.detail === doc.url ? undefined : `fetched ${v.detail} for ${JSON.stringify(doc).slice(0, 100)}`;
      }
      return `unknown refusal code ${v.code}`;
    },
    check(v) {
      return v.out === "check|force=false|checks=1" ? undefined : `announcement acted as ${v.out}`;
    },
  },
  {
    name: "root",
    // a root or bundle costs ~5x a manifest to verify (several root parses): 2 turns in 24, 8,333 each
    weight: 2,
    target: "root",
    signedKinds: ["root"],
    originals: (world) => roots(world),
    pseudo(v) {
      return v.code === "UNCHANGED" ? undefined : `unknown refusal code ${v.code}`;
    },
    check(v) {
      return acceptableRoot(v.signed[0]!);
    },
  },
  {
    name: "bundle",
    // a root or bundle costs ~5x a manifest to verify (several root parses): 2 turns in 24, 8,333 each
    weight: 2,
    target: "bundle",
    signedKinds: ["rollout", "release", "root"],
    originals: bundles,
    check: bundleCheck,
    wrote: bundleWrote,
  },
];
