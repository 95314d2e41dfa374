/*
 * xsota delta: make, apply and describe detools sequential patches (the format esp_delta_ota
 * applies). `create` runs the build server's diff (backend/delta); `apply` runs the device's
 * applier (modules/delta) on files, so a patch can be checked before it is published.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { OtaError } from "../modules/errors";
import { toHex, concatBytes } from "../modules/bytes";
import { PatchApplier } from "../modules/delta/patch";
import { createPatch, type Compression } from "../backend/delta/create";
import { sha256 } from "../backend/crypto";
import { parse, parseSize, printJson, requireFile, requireOption, EXIT, type Command } from "./common";

/** ESP32 HTTPS OTA in Espressif's own measurement: the bench and `create` model time with it. */
export const WIRE_BYTES_PER_SECOND = 26 * 1024;

const HELP = `Usage: xsota delta create --from old.bin --to new.bin [--compression heatshrink|none] [--esp-header] --out patch [--json]
       xsota delta apply --from old.bin --patch patch --out new.bin [--max-output SIZE] [--json]
       xsota delta info patch [--json]

Delta updates in detools' "sequential" patch format (detools create_patch -t sequential), the
format ESP-IDF's esp_delta_ota applies: a bsdiff of the running image against the new one,
compressed with heatshrink (window 8, lookahead 7: what esp_delta_ota accepts) or not at all.
The device (modules/delta) reads the running slot as the base and streams the new image into
the next slot. Patches apply with detools' own apply_patch, and detools' patches apply here.

  create   diff --from (the image devices run) and --to (the new image); prints the patch size
           as a share of the image and the modelled time at 26 KB/s, full image vs patch
  apply    apply a patch to --from with the device's own applier and write the result
  info     the patch header: compression, output size, esp_delta_ota base digest

Options:
  --from F            base image (what the device runs)
  --to F              new image (create)
  --patch F           patch file (apply)
  --compression C     heatshrink (default) or none
  --esp-header        prefix esp_delta_ota's 64-byte header (magic 0xFCCDDE10 and the base image's
                      appended SHA-256, as its esp_delta_ota_patch_gen.py writes); --from must then
                      be an ESP app image
  -o, --out F         file to write
  --max-output SIZE   apply: refuse a patch whose output exceeds SIZE (default 1.5M, one OTA slot)
  --json              print the figures as JSON

Examples:
  xsota image build --version 2.1.4 --size 1.2M -o fw-2.1.4.bin && xsota sign --key release.pem fw-2.1.4.bin -o fw-2.1.4.signed.bin
  xsota delta create --from fw.signed.bin --to fw-2.1.4.signed.bin --out 2.1.3-2.1.4.patch
  xsota delta create --from fw.signed.bin --to fw-2.1.4.signed.bin --compression none --out plain.patch --json
  xsota delta apply --from fw.signed.bin --patch 2.1.3-2.1.4.patch --out fw-2.1.4.check.bin
  xsota delta info 2.1.3-2.1.4.patch
`;

const readBytes = (path: string, what: string) => new Uint8Array(readFileSync(requireFile(path, what)));
const seconds = (bytes: number) => Math.round((bytes / WIRE_BYTES_PER_SECOND) * 100) / 100;
const percent = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10000) / 100 : 0);

function applyFiles(from: Uint8Array, patch: Uint8Array, maxOutput: number): { output: Uint8Array; applier: PatchApplier } {
  const parts: Uint8Array[] = [];
  const applier = new PatchApplier({
    base: { size: from.length, read: (o, t) => t.set(from.subarray(o, o + t.length)) },
    sink: { write: (d) => parts.push(d.slice()) },
    maxOutput,
  });
  applier.write(patch);
  applier.finish();
  return { output: concatBytes(parts), applier };
}

async function create(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    from: { type: "string" },
    to: { type: "string" },
    compression: { type: "string" },
    "esp-header": { type: "boolean" },
    out: { type: "string", short: "o" },
    json: { type: "boolean" },
  }, false);
  void positionals;
  const compression = (values.compression ?? "heatshrink") as Compression;
  if (compression !== "heatshrink" && compression !== "none") throw new OtaError("USAGE", `--compression must be heatshrink or none, not ${values.compression}`);
  const fromPath = requireOption(values.from, "from");
  const toPath = requireOption(values.to, "to");
  const out = requireOption(values.out, "out");
  const from = readBytes(fromPath, "--from image");
  const to = readBytes(toPath, "--to image");
  const started = Date.now();
  const info = createPatch(from, to, { compression, espHeader: !!values["esp-header"] });
  const ms = Date.now() - started;
  // the patch must give back --to through the device's own applier before it is written
  const check = applyFiles(from, info.patch, to.length);
  if (toHex(sha256(check.output)) !== toHex(sha256(to))) throw new OtaError("INTERNAL", "the patch does not reproduce --to");
  writeFileSync(out, info.patch);
  const report = {
    from: fromPath,
    to: toPath,
    out,
    compression,
    espHeader: !!values["esp-header"],
    fromBytes: from.length,
    toBytes: to.length,
    patchBytes: info.patch.length,
    sharePercent: percent(info.patch.length, to.length),
    chunks: info.chunks,
    fullSeconds: seconds(to.length),
    deltaSeconds: seconds(info.patch.length),
    toSha256: toHex(sha256(to)),
    patchSha256: toHex(sha256(info.patch)),
    ...(info.baseDigest ? { baseDigest: toHex(info.baseDigest) } : {}),
    createMs: ms,
  };
  if (values.json) printJson(report);
  else {
    process.stdout.write(
      `patch ${out}: ${report.patchBytes} bytes = ${report.sharePercent}% of the ${report.toBytes}-byte image (${compression}, ${report.chunks} chunks, ${ms} ms)\n` +
        `at 26 KB/s: full image ${report.fullSeconds} s, delta ${report.deltaSeconds} s; checked: applies to ${toPath}'s SHA-256 ${report.toSha256.slice(0, 16)}...\n`,
    );
  }
  return EXIT.OK;
}

async function apply(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    from: { type: "string" },
    patch: { type: "string" },
    out: { type: "string", short: "o" },
    "max-output": { type: "string" },
    json: { type: "boolean" },
  }, false);
  const from = readBytes(requireOption(values.from, "from"), "--from image");
  const patch = readBytes(requireOption(values.patch, "patch"), "--patch file");
  const out = requireOption(values.out, "out");
  const maxOutput = values["max-output"] ? parseSize(values["max-output"]) : 1536 * 1024;
  const { output, applier } = applyFiles(from, patch, maxOutput);
  writeFileSync(out, output);
  const report = { out, outputBytes: output.length, patchBytes: patch.length, compression: applier.compression === 4 ? "heatshrink" : "none", sha256: toHex(sha256(output)), ...(applier.baseDigest ? { baseDigest: toHex(applier.baseDigest) } : {}) };
  if (values.json) printJson(report);
  else process.stdout.write(`applied ${patch.length}-byte ${report.compression} patch -> ${out} (${output.length} bytes, SHA-256 ${report.sha256})\n`);
  return EXIT.OK;
}

async function info(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: "boolean" } });
  if (positionals.length !== 1) throw new OtaError("USAGE", "expected one patch file");
  const patch = readBytes(positionals[0]!, "patch file");
  // parse the header only: a base that reads nothing, a sink that keeps nothing
  const applier = new PatchApplier({ base: { size: 0, read: () => {} }, sink: { write: () => {} }, maxOutput: 0x7fffffff });
  for (let i = 0; i < patch.length && !applier.headerComplete; i++) applier.write(patch.subarray(i, i + 1));
  if (!applier.headerComplete) throw new OtaError("DELTA_TRUNCATED", "the patch ends inside its header");
  const report = {
    patchBytes: patch.length,
    type: "sequential",
    compression: applier.compression === 4 ? "heatshrink" : "none",
    outputBytes: applier.outputSize,
    sharePercent: percent(patch.length, applier.outputSize),
    espHeader: applier.baseDigest !== undefined,
    ...(applier.baseDigest ? { baseDigest: toHex(applier.baseDigest) } : {}),
  };
  if (values.json) printJson(report);
  else {
    process.stdout.write(`detools ${report.type} patch, ${report.compression}, ${report.patchBytes} bytes -> ${report.outputBytes} bytes (${report.sharePercent}%)\n`);
    if (report.baseDigest) process.stdout.write(`esp_delta_ota header: base image digest ${report.baseDigest}\n`);
  }
  return EXIT.OK;
}

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = { create, apply, info };

export const command: Command = {
  name: "delta",
  summary: "make, apply or describe a delta patch (detools sequential, esp_delta_ota)",
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    const f = sub ? SUBCOMMANDS[sub] : undefined;
    if (!f) throw new OtaError("USAGE", sub ? `unknown delta subcommand '${sub}' (create, apply, info)` : "missing subcommand: create, apply or info");
    return f(rest);
  },
};
