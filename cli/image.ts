import { readFileSync, writeFileSync } from "node:fs";
import { OtaError, codeOf, type ErrorCode } from "../modules/errors";
import { toHex } from "../modules/bytes";
import { validateImage, parseImageHeader, ChipId, type ImageInfo, type AppDesc, type ImageHeader } from "../modules/image";
import { nodeCrypto, sha256 } from "../backend/crypto";
import { buildImage, readBehavior, isBehavior, BEHAVIORS, type Behavior } from "../host-sim/chip/image-builder";
import { parse, parseSize, printJson, requireFile, requireOption, EXIT, type Command } from "./common";

const CHIPS: Record<string, number> = { esp32: ChipId.ESP32, esp32s2: ChipId.ESP32S2, esp32c3: ChipId.ESP32C3, esp32s3: ChipId.ESP32S3, esp32c2: ChipId.ESP32C2, esp32c6: ChipId.ESP32C6, esp32h2: ChipId.ESP32H2 };

export function chipName(id: number): string {
  for (const [k, v] of Object.entries(CHIPS)) if (v === id) return k;
  return `0x${id.toString(16)}`;
}

export interface ImageReport {
  valid: boolean;
  error?: { code: ErrorCode; message: string };
  header?: Omit<ImageHeader, "magic"> & { chip: string };
  segments?: { loadAddr: string; length: number; offset: number }[];
  appDesc?: Omit<AppDesc, "appElfSha256"> & { appElfSha256: string };
  behavior?: Behavior;
  /** Image bytes incl. checksum padding and appended hash. */
  length?: number;
  /** Bytes after the image (e.g. an appended signature, or slot space). */
  trailing?: number;
}

/** Validate and describe an image read through `read`, `limit` bytes available. Never throws for a bad image. */
export function describeImage(read: (offset: number, target: Uint8Array) => void, limit: number): ImageReport {
  const r: ImageReport = { valid: false };
  try {
    const head = new Uint8Array(Math.min(24, limit));
    read(0, head);
    const h = parseImageHeader(head);
    const { magic: _m, ...rest } = h;
    r.header = { ...rest, chip: chipName(h.chipId) };
    const segs: ImageReport["segments"] = [];
    let pos = 24;
    const sh = new Uint8Array(8);
    for (let i = 0; i < h.segmentCount && pos + 8 <= limit; i++) {
      read(pos, sh);
      const v = new DataView(sh.buffer);
      const len = v.getUint32(4, true);
      segs.push({ loadAddr: `0x${v.getUint32(0, true).toString(16).padStart(8, "0")}`, length: len, offset: pos + 8 });
      pos += 8 + len;
    }
    r.segments = segs;
  } catch {
    /* reported by validateImage below */
  }
  try {
    const info: ImageInfo = validateImage(read, limit, nodeCrypto, new Uint8Array(64 * 1024));
    r.valid = true;
    r.length = info.length;
    r.trailing = limit - info.length;
    r.appDesc = { ...info.appDesc, appElfSha256: toHex(info.appDesc.appElfSha256) };
    r.behavior = readBehavior(read);
  } catch (e) {
    r.error = { code: codeOf(e), message: (e as Error).message };
  }
  return r;
}

export function formatImageReport(r: ImageReport, indent = ""): string {
  const lines: string[] = [];
  if (r.header) {
    const h = r.header;
    lines.push(`chip ${h.chip} (id ${h.chipId}), ${h.segmentCount} segments, entry 0x${h.entryAddr.toString(16)}, hash appended: ${h.hashAppended ? "yes" : "no"}`);
  }
  for (const [i, s] of (r.segments ?? []).entries()) lines.push(`  segment ${i}: load ${s.loadAddr}, ${s.length} bytes at file offset 0x${s.offset.toString(16)}`);
  if (r.appDesc) {
    const a = r.appDesc;
    lines.push(`project ${a.projectName}, version ${a.version}, secure_version ${a.secureVersion}`);
    lines.push(`built ${a.date} ${a.time}, IDF ${a.idfVer}, behaviour ${r.behavior}`);
    lines.push(`length ${r.length} bytes${r.trailing ? ` (+${r.trailing} bytes after the image)` : ""}`);
  }
  lines.push(r.valid ? "valid: header, segments, checksum" + (r.header?.hashAppended ? ", SHA-256" : "") : `INVALID: ${r.error?.message}`);
  return lines.map((l) => indent + l).join("\n");
}

const HELP = `Usage: xsota image build --version V -o FILE [options]
       xsota image info FILE [--json]

build  Write a valid ESP32 app image (esp_image_header_t, segments, XOR checksum, appended
       SHA-256, esp_app_desc_t) whose simulated behaviour is embedded: the simulated device
       acts that way when it boots it. This is how tests ship bad firmware.
info   Validate an image as the bootloader does and print its header, segments and
       app descriptor. Exit 1 when it does not validate.

Build options:
  --version V          app version (esp_app_desc_t.version, at most 31 bytes)      required
  -o, --output FILE    where to write the image                                      required
  --secure-version N   anti-rollback secure_version (default 0)
  --project NAME       project_name (default xsota)
  --size SIZE          total size, e.g. 1.2M, 600K, 65536 (rounded up to 16; default 64K)
  --behavior B         ${BEHAVIORS.join("|")} (default healthy), or
                       fail-diagnostics@REV: the self-test fails only on hardware revision REV
  --chip C             esp32 (default), esp32s2, esp32c3, esp32s3, esp32c2, esp32c6, esp32h2 or a number
  --no-hash            leave out the appended SHA-256 (hash_appended = 0)
  --json               print what was written as JSON

Examples:
  xsota image build --version 2.1.3 --size 1.2M -o fw.bin
  xsota image build --version 2.2.0 --behavior fail-diagnostics -o bad.bin
  xsota image info fw.bin --json
`;

export const command: Command = {
  name: "image",
  summary: "build or inspect ESP32 app images (test firmware)",
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === "build") return build(rest);
    if (sub === "info") return info(rest);
    throw new OtaError("USAGE", sub ? `unknown subcommand '${sub}' (build, info)` : "missing subcommand (build, info)");
  },
};

function intOption(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new OtaError("USAGE", `--${name} must be a non-negative integer, got '${text}'`);
  return n;
}

async function build(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    version: { type: "string" },
    output: { type: "string", short: "o" },
    "secure-version": { type: "string" },
    project: { type: "string" },
    size: { type: "string" },
    behavior: { type: "string" },
    chip: { type: "string" },
    "no-hash": { type: "boolean" },
    json: { type: "boolean" },
  }, false);
  if (values.help) { process.stdout.write(HELP); return EXIT.OK; }
  void positionals;
  const version = requireOption(values.version, "version");
  const out = requireOption(values.output, "output");
  const behavior = values.behavior ?? "healthy";
  if (!isBehavior(behavior)) throw new OtaError("USAGE", `--behavior must be one of ${BEHAVIORS.join(", ")}, or fail-diagnostics@REV`);
  let chipId = 0;
  if (values.chip !== undefined) {
    const c = CHIPS[values.chip.toLowerCase()];
    chipId = c ?? intOption(values.chip, "chip", 0);
  }
  let image: Uint8Array;
  try {
    image = buildImage({
      version,
      secureVersion: intOption(values["secure-version"], "secure-version", 0),
      project: values.project ?? "xsota",
      size: values.size !== undefined ? parseSize(values.size) : undefined,
      behavior,
      chipId,
      hashAppended: !values["no-hash"],
    });
  } catch (e) {
    if (e instanceof RangeError) throw new OtaError("USAGE", e.message);
    throw e;
  }
  writeFileSync(out, image);
  const summary = { file: out, length: image.length, sha256: toHex(sha256(image)), version, project: values.project ?? "xsota", behavior, chip: chipName(chipId) };
  if (values.json) printJson(summary);
  else process.stdout.write(`wrote ${out}: ${summary.project} ${version}, ${image.length} bytes, ${behavior}, chip ${summary.chip}, sha256 ${summary.sha256}\n`);
  return EXIT.OK;
}

async function info(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: "boolean" } });
  if (values.help) { process.stdout.write(HELP); return EXIT.OK; }
  if (positionals.length !== 1) throw new OtaError("USAGE", "expected one image file");
  const file = requireFile(positionals[0], "image file");
  const bytes = new Uint8Array(readFileSync(file));
  const read = (o: number, t: Uint8Array) => {
    if (o + t.length > bytes.length) throw new OtaError("IMAGE_TRUNCATED", `read past the end of ${file}`);
    t.set(bytes.subarray(o, o + t.length));
  };
  const r = describeImage(read, bytes.length);
  if (values.json) printJson({ file, size: bytes.length, sha256: toHex(sha256(bytes)), ...r });
  else process.stdout.write(`${file}: ${bytes.length} bytes\n${formatImageReport(r, "  ")}\n`);
  if (!r.valid) {
    if (!values.json) process.stderr.write(`error ${r.error!.message}\n`);
    return EXIT.FAILED;
  }
  return EXIT.OK;
}
