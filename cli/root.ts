/*
 * xsota root: sign a root file (modules/roles.ts): the keys and thresholds of the root, release,
 * rollout and commands roles, and the TLS anchors. Offline work: the root keys never touch the
 * controller.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { OtaError } from "../modules/errors";
import { ROLE_NAMES, type RoleName } from "../modules/roles";
import { loadPrivateKey, loadPublicKey } from "../backend/release/keys";
import { signRoot, type PublicKeyLike } from "../backend/release/roles-tool";
import { parse, printJson, requireOption, type Command } from "./common";

const DAY = 24 * 3600 * 1000;

export const command: Command = {
  name: "root",
  summary: "sign a root file: the keys and thresholds of each role, and the TLS anchors",
  help: `Usage: xsota root --version N --key root.pem [--key ...] --release-pub F --rollout-pub F --commands-pub F -o root.json

Write a root envelope (docs/security.md): {"type": "root", version, expires, keys, roles, anchors}
signed by every --key. Devices ship the first root in their configuration (config.root: the
envelope in base64) and take a new one only as version N+1 signed by the current root's threshold
AND its own; a key the new root leaves out is revoked.

Options:
  --version N            the root's version (1 for the first; each rotation adds 1)
  -k, --key F            a private key that signs this root (repeat): the new root keys, and for a
                         rotation the current root's keys as well
  --root-pub F           a root key of the new root (repeat; default: the public half of each --key)
  --release-pub F        a release key (offline: signs what may be installed; repeat)
  --rollout-pub F        a rollout key (online, the controller: stages, halts, forces; repeat)
  --commands-pub F       a commands key (online, the controller: per-device control; repeat)
  --root-threshold K     signatures the root role needs (default 1); likewise --release-threshold,
                         --rollout-threshold, --commands-threshold
  --anchor ID=ca.pem     a TLS trust anchor for the update host (at most 3; the first is the one
                         Moddable's TLS takes): add the next CA before the old one expires, then retire it
  --expires-days D       default 365
  -o, --out F            where to write it (required)
  --json                 print {out, version, keys, anchors}
`,
  async run(argv) {
    const { values: v } = parse(argv, {
      version: { type: "string" },
      key: { type: "string", short: "k", multiple: true },
      "root-pub": { type: "string", multiple: true },
      "release-pub": { type: "string", multiple: true },
      "rollout-pub": { type: "string", multiple: true },
      "commands-pub": { type: "string", multiple: true },
      "root-threshold": { type: "string" },
      "release-threshold": { type: "string" },
      "rollout-threshold": { type: "string" },
      "commands-threshold": { type: "string" },
      anchor: { type: "string", multiple: true },
      "expires-days": { type: "string" },
      out: { type: "string", short: "o" },
      json: { type: "boolean" },
    }, false);
    const version = count(requireOption(v.version, "version"), "version");
    const out = requireOption(v.out, "out");
    const signers = (v.key ?? []).map((k) => loadPrivateKey(k));
    if (!signers.length) throw new OtaError("USAGE", "missing --key (the root keys that sign it)");
    const pubs = (files: string[] | undefined): PublicKeyLike[] => (files ?? []).map((f) => loadPublicKey(f));
    const roleKeys: Record<RoleName, PublicKeyLike[]> = {
      root: v["root-pub"]?.length ? pubs(v["root-pub"]) : signers,
      release: pubs(v["release-pub"]),
      rollout: pubs(v["rollout-pub"]),
      commands: pubs(v["commands-pub"]),
    };
    const thresholds: Record<RoleName, string | undefined> = { root: v["root-threshold"], release: v["release-threshold"], rollout: v["rollout-threshold"], commands: v["commands-threshold"] };
    for (const name of ROLE_NAMES) if (!roleKeys[name].length) throw new OtaError("USAGE", `missing --${name}-pub (each role needs at least one key)`);
    const anchors = (v.anchor ?? []).map((a) => {
      const at = a.indexOf("=");
      if (at < 1) throw new OtaError("USAGE", `--anchor ${a}: expected ID=ca.pem`);
      let pem: string;
      try {
        pem = readFileSync(a.slice(at + 1), "utf8");
      } catch {
        throw new OtaError("FILE_NOT_FOUND", a.slice(at + 1));
      }
      return { id: a.slice(0, at), pem };
    });
    const signedAt = Date.now();
    const days = v["expires-days"] === undefined ? 365 : count(v["expires-days"], "expires-days");
    const roles = Object.fromEntries(ROLE_NAMES.map((n) => [n, { keys: roleKeys[n], threshold: thresholds[n] === undefined ? 1 : count(thresholds[n]!, `${n}-threshold`) }])) as Record<RoleName, { keys: PublicKeyLike[]; threshold: number }>;
    for (const n of ROLE_NAMES) if (roles[n].threshold > roles[n].keys.length) throw new OtaError("USAGE", `--${n}-threshold ${roles[n].threshold}: the role has ${roles[n].keys.length} key(s)`);
    const envelope = signRoot({ version, signedAt, expires: signedAt + days * DAY, roles, anchors }, signers);
    writeFileSync(out, envelope);
    if (v.json) printJson({ out, version, keys: Object.fromEntries(ROLE_NAMES.map((n) => [n, roles[n].keys.map((k) => k.id)])), anchors: anchors.map((a) => a.id) });
    else process.stdout.write(`root v${version}: ${ROLE_NAMES.map((n) => `${n} ${roles[n].threshold} of ${roles[n].keys.length}`).join(", ")}${anchors.length ? `, anchors ${anchors.map((a) => a.id).join(", ")}` : ""} -> ${out}\n`);
    return 0;
  },
};

function count(s: string, name: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(s)) throw new OtaError("USAGE", `--${name} ${s}: expected a positive integer`);
  return Number(s);
}
