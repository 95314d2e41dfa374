import { readFileSync } from "node:fs";
import { OtaError } from "../modules/errors";
import { decodeEntry, entryValid, seqCrc, activeEntry, OTA_SECTOR, ENTRY_SIZE } from "../modules/otadata";
import { stateName } from "../host-sim/chip/otadata-model";
import { SimChip } from "../host-sim/chip/chip";
import { boot } from "../host-sim/chip/bootloader";
import { parsePartitionCsv, typeName, subtypeName } from "../host-sim/chip/partition-table";
import { describeImage, formatImageReport, type ImageReport } from "./image";
import { parse, parseSize, printJson, requireFile, requireOption, EXIT, type Command } from "./common";

const HELP = `Usage: xsota flash create -o FILE [--image fw.bin] [--image1 fw.bin] [--table partitions.csv] [--size 4M] [--json]
       xsota flash show FILE [--json]

create  Write a raw flash image (offsets are the chip's) in the state of a freshly flashed
        devkit: partition table at 0x8000, otadata erased, FILE of --image in app0 (ota_0).
        No second-stage bootloader is written (0x1000 stays erased): the simulator boots
        through its own model of it.
show    Print the partition table, both otadata entries (seq, state, CRC validity), the
        slot the bootloader would boot (simulated on a copy: FILE is not changed), each
        app slot's image and the NVS usage (xsota's own format, not ESP-IDF's).

Options:
  -o, --output FILE   flash image to write (create)                        required
  --image FILE        app image for ota_0
  --image1 FILE       app image for ota_1
  --table FILE        partition CSV (default: the project's partitions.csv)
  --size SIZE         flash size (default 4M)
  --json              print the result as JSON

Examples:
  xsota image build --version 1.0.0 -o fw.bin && xsota flash create -o flash.bin --image fw.bin
  xsota flash show flash.bin
  xsota flash show flash.bin --json
`;

export const command: Command = {
  name: "flash",
  summary: "create or inspect a simulated flash image",
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === "create") return create(rest);
    if (sub === "show") return show(rest);
    throw new OtaError("USAGE", sub ? `unknown subcommand '${sub}' (create, show)` : "missing subcommand (create, show)");
  },
};

async function create(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    output: { type: "string", short: "o" },
    image: { type: "string" },
    image1: { type: "string" },
    table: { type: "string" },
    size: { type: "string" },
    json: { type: "boolean" },
  }, false);
  const out = requireOption(values.output, "output");
  const flashSize = values.size ? parseSize(values.size) : 4 * 1024 * 1024;
  if (flashSize <= 0 || flashSize % 4096) throw new OtaError("USAGE", "--size must be a positive multiple of 4 KB");
  const table = values.table ? parsePartitionCsv(readFileSync(requireFile(values.table, "partition table"), "utf8"), { flashSize }) : undefined;
  const chip = SimChip.create({ flashSize, ...(table ? { table } : {}) });
  const written: Record<string, number> = {};
  for (const [slot, file] of [[0, values.image], [1, values.image1]] as const) {
    if (!file) continue;
    const image = new Uint8Array(readFileSync(requireFile(file, `image for ota_${slot}`)));
    chip.installImage(slot, image);
    written[`ota_${slot}`] = image.length;
  }
  chip.save(out);
  if (values.json) printJson({ file: out, size: flashSize, partitions: chip.table.entries.length, images: written });
  else process.stdout.write(`wrote ${out}: ${flashSize} bytes, ${chip.table.entries.length} partitions${Object.entries(written).map(([s, n]) => `, ${s} ${n} bytes`).join("")}\n`);
  return EXIT.OK;
}

async function show(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: "boolean" } });
  if (positionals.length !== 1) throw new OtaError("USAGE", "expected one flash image file");
  const file = requireFile(positionals[0], "flash image");
  const chip = SimChip.load(file);
  const partitions = chip.table.entries.map((e) => ({
    name: e.name, type: typeName(e.type), subtype: subtypeName(e.type, e.subtype),
    offset: `0x${e.offset.toString(16)}`, size: e.size, flags: e.flags,
  }));
  let otadata: { sector: number; seq: number; state: string; crcValid: boolean; valid: boolean }[] = [];
  let active: number | null = null;
  const ota = chip.table.otadata();
  if (ota) {
    const p = chip.partition(ota.name);
    const raw = new Uint8Array(ENTRY_SIZE);
    const entries = [0, 1].map((i) => { p.read(i * OTA_SECTOR, raw); return decodeEntry(raw); });
    otadata = entries.map((e, i) => ({ sector: i, seq: e.seq, state: stateName(e.state), crcValid: e.seq !== 0xffffffff && e.crc === seqCrc(e.seq), valid: entryValid(e) }));
    const a = activeEntry([entries[0]!, entries[1]!]);
    active = a === -1 ? null : a;
  }
  const sim = boot(chip.clone());
  const bootsFrom = sim.kind === "booted" ? { slot: sim.slot, version: sim.appDesc.version, behavior: sim.behavior } : { bricked: sim.reason };
  const slots: (ImageReport & { slot: number; name: string; erased: boolean })[] = chip.table.appSlots().map((e, i) => {
    const part = chip.slot(i);
    const first = new Uint8Array(1);
    part.read(0, first);
    return { slot: i, name: e.name, erased: first[0] === 0xff, ...describeImage((o, t) => part.read(o, t), part.byteLength) };
  });
  let nvs: unknown = null;
  try {
    const u = chip.clone().store().usage();
    nvs = u;
  } catch (e) {
    nvs = { error: (e as Error).message };
  }
  if (values.json) {
    printJson({ file, size: chip.flash.size, partitions, otadata, activeEntry: active, bootloader: bootsFrom, slots, nvs });
    return EXIT.OK;
  }
  const w = (s: string) => process.stdout.write(s + "\n");
  w(`${file}: ${chip.flash.size} bytes`);
  w("partitions:");
  for (const p of partitions) w(`  ${p.name.padEnd(16)} ${p.type.padEnd(5)} ${p.subtype.padEnd(9)} ${p.offset.padStart(9)} ${String(p.size).padStart(9)}${p.flags ? `  flags ${p.flags}` : ""}`);
  w("otadata:");
  for (const o of otadata) {
    w(`  [${o.sector}] ${o.seq === 0xffffffff ? "erased" : `seq ${o.seq}, ${o.state}, crc ${o.crcValid ? "ok" : "BAD"}, ${o.valid ? "valid" : "invalid"}`}${active === o.sector ? "  <- active" : ""}`);
  }
  w(`bootloader: ${"slot" in bootsFrom ? `boots ota_${bootsFrom.slot} (${bootsFrom.version}, ${bootsFrom.behavior})` : `BRICKED: ${bootsFrom.bricked}`}`);
  for (const s of slots) {
    w(`${s.name} (ota_${s.slot}):`);
    w(s.erased ? "  erased" : formatImageReport(s, "  "));
  }
  if (nvs && typeof nvs === "object" && "keys" in nvs) {
    const u = nvs as { keys: number; liveBytes: number; usedBytes: number; freeBytes: number };
    w(`nvs: ${u.keys} keys, ${u.liveBytes} bytes live, ${u.usedBytes} bytes of log used, ${u.freeBytes} free`);
  }
  return EXIT.OK;
}
