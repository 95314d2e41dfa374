/*
 * The fuzz's document types, one entry each: the valid signed objects it starts from (keys
 * generated at test time), the verifier that takes them (test/security/fuzz-targets.ts), and
 * the type's own checks on an acceptance. A new document type (root metadata, a rollout file...)
 * is one more entry here and, when it needs a new device call, one more verifier in TARGETS.
 */
import { toBase64, utf8Encode } from "../../modules/bytes";
import { SIGNED_COMMANDS } from "../../modules/control";
import { buildManifest, manifestPayload, type ManifestInput } from "../../backend/release/manifest-tool";
import type { SigningKey } from "../../backend/release/keys";
import { sign, type DocType, type Original, type World } from "./fuzz-kit";
import type { TargetSetup } from "./fuzz-targets";

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

export const DOC_TYPES: readonly DocType[] = [
  {
    name: "manifest",
    target: "manifest",
    signedKinds: ["manifest"],
    originals: manifests,
  },
  {
    name: "control",
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
];
