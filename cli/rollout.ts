/*
 * xsota rollout: the document devices fetch in roles mode (modules/roles.ts): a rollout, signed
 * by the online rollout key, that binds a release manifest (signed offline by the release key) by
 * the SHA-256 of its payload, and may carry new roots.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { OtaError } from "../modules/errors";
import { loadPrivateKey } from "../backend/release/keys";
import { createRollout } from "../backend/release/roles-tool";
import { parse, printJson, requireOption, type Command } from "./common";

export const command: Command = {
  name: "rollout",
  summary: "sign a rollout document for a release (roles mode): percent, groups, force, new roots",
  help: `Usage: xsota rollout --release release.json --key rollout.pem [options] -o latest.json

Write what devices in roles mode fetch from manifestUrl: the rollout envelope (signed with the
rollout role's key(s)) naming the release manifest (xsota manifest, signed with the release
role's key) by the SHA-256 of its payload, with the release and any new roots carried along.
A stolen rollout key can stage, halt or force a release the release role signed, never another.

Options:
  --release F            the release manifest envelope (xsota manifest --key release.pem)
  -k, --key F            a rollout key (repeat to meet the threshold)
  --percent P            the share of the fleet (0-100; with --rollout-id)
  --rollout-id ID        the rollout's id (devices' buckets: SHA-256(device id : rollout id))
  --groups a,b           target these device groups
  --regions a,b          target these regions
  --force                skip the percentage and maintenance windows (critical fixes)
  --meta-version N       default: the signing time in ms (it must grow from one rollout to the next)
  --root F               a root envelope to carry (xsota root; repeat, oldest first: a rotation chain)
  -o, --out F            where to write it (required)
  --json                 print {out, bytes}
`,
  async run(argv) {
    const { values: v } = parse(argv, {
      release: { type: "string" },
      key: { type: "string", short: "k", multiple: true },
      percent: { type: "string" },
      "rollout-id": { type: "string" },
      groups: { type: "string" },
      regions: { type: "string" },
      force: { type: "boolean" },
      "meta-version": { type: "string" },
      root: { type: "string", multiple: true },
      out: { type: "string", short: "o" },
      json: { type: "boolean" },
    }, false);
    const release = read(requireOption(v.release, "release"));
    const out = requireOption(v.out, "out");
    const keys = (v.key ?? []).map((k) => loadPrivateKey(k));
    if (!keys.length) throw new OtaError("USAGE", "missing --key (the rollout key)");
    let rollout: { id: string; percent: number } | undefined;
    if (v.percent !== undefined || v["rollout-id"] !== undefined) {
      const percent = Number(requireOption(v.percent, "percent"));
      if (!Number.isFinite(percent) || percent < 0 || percent > 100) throw new OtaError("USAGE", `--percent ${v.percent}: expected 0 to 100`);
      rollout = { id: requireOption(v["rollout-id"], "rollout-id"), percent };
    }
    let metaVersion: number | undefined;
    if (v["meta-version"] !== undefined) {
      if (!/^[0-9]{1,15}$/.test(v["meta-version"])) throw new OtaError("USAGE", `--meta-version ${v["meta-version"]}: expected a non-negative integer`);
      metaVersion = Number(v["meta-version"]);
    }
    const list = (s: string | undefined) => s?.split(",").map((x) => x.trim()).filter(Boolean);
    const groups = list(v.groups);
    const regions = list(v.regions);
    const bundle = createRollout({
      release, keys,
      ...(rollout ? { rollout } : {}),
      ...(groups ? { groups } : {}),
      ...(regions ? { regions } : {}),
      ...(v.force ? { force: true } : {}),
      ...(metaVersion !== undefined ? { metaVersion } : {}),
      ...(v.root?.length ? { roots: v.root.map(read) } : {}),
    });
    writeFileSync(out, bundle);
    if (v.json) printJson({ out, bytes: bundle.length });
    else process.stdout.write(`rollout${rollout ? ` ${rollout.id} at ${rollout.percent} %` : ""}${v.force ? ", forced" : ""} (${bundle.length} bytes) -> ${out}\n`);
    return 0;
  },
};

function read(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch {
    throw new OtaError("FILE_NOT_FOUND", path);
  }
}
