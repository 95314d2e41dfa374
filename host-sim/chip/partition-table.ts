/*
 * The partition table, parsed and written with ESP-IDF's rules (components/partition_table/gen_esp32part.py):
 * - CSV: `name, type, subtype, offset, size, flags`; '#' comments; numbers as int(x, 0) with k/m
 *   suffixes; type/subtype keywords or numbers; an empty offset follows the previous partition,
 *   aligned (app 64 KB, data 4 KB); a negative size means "up to that address"; the table sits at
 *   0x8000 and occupies its 4 KB sector, so partitions start at 0x9000 or later.
 * - Refused with the CSV line number: syntax, unknown type/subtype/flag, misalignment, overlaps,
 *   duplicate names, a second otadata or one not 0x2000 bytes, read/write nvs under 0x3000, and
 *   a table larger than the flash.
 * - Binary: 32-byte rows packed '<2sBBLL16sL' (AA 50, type, subtype, offset, size, label, flags:
 *   bit 0 encrypted, bit 1 readonly), then EB EB + 14 x FF + MD5 of the rows, then 0xFF up to 0xC00.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { OtaError } from "../../modules/errors";

export const TABLE_OFFSET = 0x8000;
export const TABLE_SECTOR = 0x1000;
export const TABLE_MAX_LENGTH = 0xc00;
const MD5_ROW_START = Uint8Array.of(0xeb, 0xeb, ...new Array<number>(14).fill(0xff));

export const APP = 0x00;
export const DATA = 0x01;
const TYPES: Record<string, number> = { app: APP, data: DATA, bootloader: 0x02, partition_table: 0x03 };
const SUBTYPES: Record<number, Record<string, number>> = {
  [APP]: { factory: 0x00, test: 0x20, tee_0: 0x30, tee_1: 0x31 },
  [DATA]: {
    ota: 0x00, phy: 0x01, nvs: 0x02, coredump: 0x03, nvs_keys: 0x04, efuse: 0x05, undefined: 0x06,
    esphttpd: 0x80, fat: 0x81, spiffs: 0x82, littlefs: 0x83, tee_ota: 0x90,
  },
};
for (let i = 0; i < 16; i++) SUBTYPES[APP]![`ota_${i}`] = 0x10 + i;
const FLAGS: Record<string, number> = { encrypted: 1, readonly: 2 };

export interface PartitionEntry {
  name: string;
  type: number;
  subtype: number;
  offset: number;
  size: number;
  /** bit 0 encrypted, bit 1 readonly */
  flags: number;
  /** CSV line, when parsed from CSV */
  line?: number;
}

export function typeName(type: number): string {
  for (const [k, v] of Object.entries(TYPES)) if (v === type) return k;
  return `0x${type.toString(16)}`;
}

export function subtypeName(type: number, subtype: number): string {
  for (const [k, v] of Object.entries(SUBTYPES[type] ?? {})) if (v === subtype) return k;
  return `0x${subtype.toString(16)}`;
}

export class PartitionTable {
  constructor(readonly entries: readonly PartitionEntry[]) {}

  find(name: string): PartitionEntry | undefined {
    return this.entries.find((e) => e.name === name);
  }

  /** OTA app slots ota_0..ota_n, in subtype order (the bootloader's bs->ota[]). */
  appSlots(): PartitionEntry[] {
    return this.entries.filter((e) => e.type === APP && e.subtype >= 0x10 && e.subtype < 0x20).sort((a, b) => a.subtype - b.subtype);
  }

  /** The data/ota partition, if any. */
  otadata(): PartitionEntry | undefined {
    return this.entries.find((e) => e.type === DATA && e.subtype === 0x00);
  }

  /** End of the last partition. */
  get end(): number {
    return this.entries.reduce((m, e) => Math.max(m, e.offset + e.size), 0);
  }

  /** The 0xC00 bytes gen_esp32part.py writes. Throws PTABLE_TOO_LARGE past 95 entries. */
  toBinary(): Uint8Array {
    const rows = this.entries.length * 32;
    if (rows + 32 >= TABLE_MAX_LENGTH) throw new OtaError("PTABLE_TOO_LARGE", `${this.entries.length} entries do not fit 0xC00 bytes`);
    const out = new Uint8Array(TABLE_MAX_LENGTH).fill(0xff);
    const v = new DataView(out.buffer);
    this.entries.forEach((e, i) => {
      const o = i * 32;
      out[o] = 0xaa; out[o + 1] = 0x50; out[o + 2] = e.type; out[o + 3] = e.subtype;
      v.setUint32(o + 4, e.offset, true);
      v.setUint32(o + 8, e.size, true);
      out.fill(0, o + 12, o + 28);
      out.set(new TextEncoder().encode(e.name).subarray(0, 16), o + 12);
      v.setUint32(o + 28, e.flags >>> 0, true);
    });
    out.set(MD5_ROW_START, rows);
    out.set(createHash("md5").update(out.subarray(0, rows)).digest(), rows + 16);
    return out;
  }

  toCsv(): string {
    const lines = ["# Name, Type, SubType, Offset, Size, Flags"];
    for (const e of this.entries) {
      const flags = Object.entries(FLAGS).filter(([, bit]) => e.flags & bit).map(([k]) => k).join(":");
      lines.push([e.name, typeName(e.type), subtypeName(e.type, e.subtype), `0x${e.offset.toString(16)}`, `0x${e.size.toString(16)}`, flags].join(","));
    }
    return lines.join("\n") + "\n";
  }
}

function fail(code: "PTABLE_SYNTAX" | "PTABLE_OVERLAP" | "PTABLE_ALIGN" | "PTABLE_DUPLICATE" | "PTABLE_TYPE" | "PTABLE_TOO_LARGE", line: number | undefined, msg: string): never {
  throw new OtaError(code, line ? `line ${line}: ${msg}` : msg);
}

/** gen_esp32part's parse_int: int(v, 0) with k/m suffixes, then keywords. */
function parseInt0(text: string, line: number, keywords?: Record<string, number>, what = "value"): number {
  const t = text.trim();
  const m = /^([0-9a-fA-Fx_ob]+?)([kKmM]*)$/.exec(t);
  if (m && /^(0x[0-9a-f_]+|0o[0-7_]+|0b[01_]+|[0-9][0-9_]*)$/i.test(m[1]!) && !/^0[0-9]/.test(m[1]!)) {
    const body = m[1]!.replace(/_/g, "").toLowerCase();
    let n = body.startsWith("0x") ? parseInt(body.slice(2), 16) : body.startsWith("0o") ? parseInt(body.slice(2), 8) : body.startsWith("0b") ? parseInt(body.slice(2), 2) : parseInt(body, 10);
    for (const s of m[2]!.toLowerCase()) n *= s === "k" ? 1024 : 1024 * 1024;
    if (Number.isSafeInteger(n)) return n;
  }
  if (keywords) {
    const k = keywords[t.toLowerCase()];
    if (k !== undefined) return k;
    fail("PTABLE_TYPE", line, `${what} '${t}' is not valid; known: ${Object.keys(keywords).join(", ")}`);
  }
  return fail("PTABLE_SYNTAX", line, `invalid ${what} '${t}'`);
}

export interface CsvOptions {
  /** Flash size in bytes; the table must fit (default 4 MB). */
  flashSize?: number;
  /** Table offset (default 0x8000). */
  tableOffset?: number;
}

/** Parse ESP-IDF partition CSV. Throws PTABLE_SYNTAX/TYPE/ALIGN/OVERLAP/DUPLICATE/TOO_LARGE naming the line. */
export function parsePartitionCsv(text: string, options: CsvOptions = {}): PartitionTable {
  const flashSize = options.flashSize ?? 4 * 1024 * 1024;
  const tableOffset = options.tableOffset ?? TABLE_OFFSET;
  const parsed: { e: PartitionEntry; offset: number | undefined }[] = [];
  text.replace(/^\ufeff/, "").split(/\r\n|\r|\n/).forEach((raw, i) => {
    const line = i + 1;
    const l = raw.trim();
    if (!l || l.startsWith("#")) return;
    const f = (l + ",,,,").split(",").map((s) => s.trim());
    const name = f[0]!;
    if (!name) fail("PTABLE_SYNTAX", line, "empty name");
    if (new TextEncoder().encode(name).length > 16) fail("PTABLE_SYNTAX", line, `name '${name}' longer than 16 bytes`);
    if (!f[1]) fail("PTABLE_SYNTAX", line, "type field can't be left empty");
    const type = parseInt0(f[1], line, TYPES, "type");
    if (type > 0xfe) fail("PTABLE_TYPE", line, `type ${type} out of range`);
    if (type === 0x02 || type === 0x03) fail("PTABLE_TYPE", line, "bootloader/partition_table entries are not supported here");
    let subtype: number;
    if (!f[2]) {
      if (type === APP) fail("PTABLE_SYNTAX", line, "app partition cannot have an empty subtype");
      subtype = SUBTYPES[DATA]!.undefined!;
    } else subtype = parseInt0(f[2], line, SUBTYPES[type] ?? {}, "subtype");
    if (subtype > 0xfe) fail("PTABLE_TYPE", line, `subtype ${subtype} out of range`);
    const offset = f[3] ? parseInt0(f[3], line, undefined, "offset") : undefined;
    if (!f[4]) fail("PTABLE_SYNTAX", line, "size field can't be empty");
    const size = f[4].startsWith("-") ? -parseInt0(f[4].slice(1), line, undefined, "size") : parseInt0(f[4], line, undefined, "size");
    let flags = 0;
    for (const flag of f[5]!.split(":")) {
      if (FLAGS[flag] !== undefined) flags |= FLAGS[flag]!;
      else if (flag) fail("PTABLE_SYNTAX", line, `unknown flag '${flag}'`);
    }
    if (f.slice(6).some((x) => x !== "")) fail("PTABLE_SYNTAX", line, "too many fields");
    parsed.push({ e: { name, type, subtype, offset: offset ?? 0, size, flags, line }, offset });
  });

  // PartitionTable.from_csv: fix up missing offsets and negative sizes, in CSV order.
  let lastEnd = tableOffset + TABLE_SECTOR;
  for (const [i, p] of parsed.entries()) {
    const e = p.e;
    if (p.offset !== undefined && p.offset < lastEnd) {
      fail("PTABLE_OVERLAP", e.line, i === 0
        ? `offset 0x${p.offset.toString(16)} but the partition table occupies 0x${tableOffset.toString(16)}-0x${(lastEnd - 1).toString(16)}`
        : `offset 0x${p.offset.toString(16)} but the previous partition ends at 0x${lastEnd.toString(16)}`);
    }
    if (p.offset === undefined) {
      const pad = e.type === APP ? 0x10000 : 0x1000;
      if (lastEnd % pad) lastEnd += pad - (lastEnd % pad);
      e.offset = lastEnd;
    }
    if (e.size < 0) e.size = -e.size - e.offset;
    if (e.size <= 0) fail("PTABLE_SYNTAX", e.line, `size ${e.size} is not positive`);
    lastEnd = e.offset + e.size;
  }
  const entries = parsed.map((p) => p.e);
  verifyTable(entries, tableOffset);
  const table = new PartitionTable(entries);
  if (table.end > flashSize) {
    const last = entries.reduce((a, b) => (a.offset + a.size >= b.offset + b.size ? a : b));
    fail("PTABLE_TOO_LARGE", last.line, `partitions end at 0x${table.end.toString(16)}, flash is 0x${flashSize.toString(16)} bytes`);
  }
  return table;
}

/** PartitionTable.verify + PartitionDefinition.verify of gen_esp32part.py. */
function verifyTable(entries: PartitionEntry[], tableOffset: number): void {
  for (const e of entries) {
    const align = e.type === APP ? 0x10000 : 0x1000;
    if (e.offset % align) fail("PTABLE_ALIGN", e.line, `offset 0x${e.offset.toString(16)} is not aligned to 0x${align.toString(16)}`);
    if (e.type === APP && e.size % 0x1000) fail("PTABLE_ALIGN", e.line, `size 0x${e.size.toString(16)} is not aligned to 0x1000`);
    if (e.type === DATA && (e.subtype === 0x00 || e.subtype === 0x03) && e.flags & 2) fail("PTABLE_TYPE", e.line, `'${e.name}' is always read-write and cannot be readonly`);
    if (e.type === DATA && e.subtype === 0x02 && e.size < 0x3000 && !(e.flags & 2)) fail("PTABLE_ALIGN", e.line, `read/write nvs '${e.name}' must be at least 0x3000 bytes`);
  }
  const seen = new Map<string, PartitionEntry>();
  for (const e of entries) {
    const prev = seen.get(e.name);
    if (prev) fail("PTABLE_DUPLICATE", e.line, `name '${e.name}' already used on line ${prev.line}`);
    seen.set(e.name, e);
  }
  let last: PartitionEntry | undefined;
  for (const e of [...entries].sort((a, b) => a.offset - b.offset)) {
    if (e.offset < tableOffset + TABLE_SECTOR) fail("PTABLE_OVERLAP", e.line, `offset 0x${e.offset.toString(16)} is below 0x${(tableOffset + TABLE_SECTOR).toString(16)}`);
    if (last && e.offset < last.offset + last.size) {
      fail("PTABLE_OVERLAP", e.line, `'${e.name}' at 0x${e.offset.toString(16)} overlaps '${last.name}' 0x${last.offset.toString(16)}-0x${(last.offset + last.size - 1).toString(16)}`);
    }
    last = e;
  }
  const ota = entries.filter((e) => e.type === DATA && e.subtype === 0x00);
  if (ota.length > 1) fail("PTABLE_DUPLICATE", ota[1]!.line, "only one otadata (data, ota) partition is allowed");
  if (ota.length === 1 && ota[0]!.size !== 0x2000) fail("PTABLE_ALIGN", ota[0]!.line, "otadata partition must have size = 0x2000");
}

/** Parse the binary table (0xC00 bytes or the 4 KB sector). Throws PTABLE_BINARY. */
export function parsePartitionBinary(bytes: Uint8Array): PartitionTable {
  const entries: PartitionEntry[] = [];
  const md5 = createHash("md5");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let o = 0; o + 32 <= Math.min(bytes.length, TABLE_MAX_LENGTH); o += 32) {
    const row = bytes.subarray(o, o + 32);
    if (row.every((b) => b === 0xff)) return new PartitionTable(entries);
    if (row[0] === 0xeb && row[1] === 0xeb) {
      const want = md5.copy().digest();
      if (!want.equals(row.subarray(16))) throw new OtaError("PTABLE_BINARY", `MD5 mismatch at row ${o / 32}`);
      continue;
    }
    if (row[0] !== 0xaa || row[1] !== 0x50) throw new OtaError("PTABLE_BINARY", `bad magic at row ${o / 32}`);
    md5.update(row);
    let end = 12;
    while (end < 28 && row[end] !== 0) end++;
    let name: string;
    try {
      name = new TextDecoder("utf-8", { fatal: true }).decode(row.subarray(12, end));
    } catch {
      throw new OtaError("PTABLE_BINARY", `label of row ${o / 32} is not UTF-8`);
    }
    entries.push({ name, type: row[2]!, subtype: row[3]!, offset: v.getUint32(o + 4, true), size: v.getUint32(o + 8, true), flags: v.getUint32(o + 28, true) });
  }
  throw new OtaError("PTABLE_BINARY", "no end-of-table marker");
}

export const DEFAULT_CSV_PATH = new URL("../../partitions.csv", import.meta.url);

/** The project's partitions.csv (one source of truth with the device build). */
export function loadDefaultTable(flashSize = 4 * 1024 * 1024): PartitionTable {
  return parsePartitionCsv(readFileSync(DEFAULT_CSV_PATH, "utf8"), { flashSize });
}
