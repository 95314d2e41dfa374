/*
 * FlashPort of the Linux program: the simulator's raw flash image (xsota flash create) as one
 * file, through host.c's pread/pwrite natives. What src/flash.ts gets from ESP-IDF comes from
 * the image itself: partitions from the binary table at 0x8000 (ESP-IDF's rows, as the second-stage
 * bootloader reads them), the running slot from the driver, which runs the simulator's bootloader
 * model on the same file before it starts this process (--slot N). Labels resolve as
 * modules/io/flash/esp32 does: "running", "nextota", and data partitions by name.
 */
import type { FlashPartition, FlashPort, SlotInfo } from "../modules/ports";
import { OtaError } from "../modules/errors";
import { flashErase, flashOpen, flashRead, flashWrite } from "./native";

const TABLE_OFFSET = 0x8000, TABLE_LENGTH = 0xc00, ROW = 32, SECTOR = 4096;
const APP = 0x00, DATA = 0x01, OTA_0 = 0x10;

interface Entry {
  name: string;
  type: number;
  subtype: number;
  offset: number;
  size: number;
}

/** The rows of the binary table up to the MD5 row or the first erased row (the MD5 is the bootloader's to check). */
function readTable(): Entry[] {
  const bytes = new Uint8Array(TABLE_LENGTH);
  flashRead(TABLE_OFFSET, bytes);
  const view = new DataView(bytes.buffer);
  const entries: Entry[] = [];
  for (let o = 0; o + ROW <= TABLE_LENGTH; o += ROW) {
    if (bytes[o] !== 0xaa || bytes[o + 1] !== 0x50) break;
    let name = "";
    for (let i = o + 12; i < o + 28 && bytes[i] !== 0; i++) name += String.fromCharCode(bytes[i]!);
    entries.push({ name, type: bytes[o + 2]!, subtype: bytes[o + 3]!, offset: view.getUint32(o + 4, true), size: view.getUint32(o + 8, true) });
  }
  if (entries.length === 0) throw new OtaError("PTABLE_BINARY", "no partition table at 0x8000");
  return entries;
}

class FilePartition implements FlashPartition {
  readonly blockSize = SECTOR;
  readonly byteLength: number;
  constructor(readonly entry: Entry) {
    this.byteLength = entry.size;
  }
  #bounds(offset: number, length: number): void {
    if (!(Number.isInteger(offset) && offset >= 0 && offset + length <= this.byteLength))
      throw new OtaError("FLASH_OUT_OF_BOUNDS", `${this.entry.name}: ${length} bytes at ${offset} of ${this.byteLength}`);
  }
  read(offset: number, target: Uint8Array): void {
    this.#bounds(offset, target.byteLength);
    flashRead(this.entry.offset + offset, target);
  }
  write(offset: number, data: Uint8Array): void {
    this.#bounds(offset, data.byteLength);
    flashWrite(this.entry.offset + offset, data);
  }
  eraseBlock(block: number): void {
    if (!Number.isInteger(block)) throw new RangeError("block must be an integer");
    this.#bounds(block * SECTOR, SECTOR);
    flashErase(this.entry.offset + block * SECTOR, SECTOR);
  }
}

/** The OTA app slots of the table, in subtype order. */
function appSlots(entries: Entry[]): Entry[] {
  return entries.filter((e) => e.type === APP && e.subtype >= OTA_0 && e.subtype < OTA_0 + 16).sort((a, b) => a.subtype - b.subtype);
}

/**
 * The table is read again at each open(), not kept: ESP-IDF keeps its copy in C, outside the JS
 * heap, so keeping it here would count about 400 B of Linux-only objects as the agent's RAM.
 */
export class FileFlashPort implements FlashPort {
  readonly #info: SlotInfo;

  /** Opens `path`; `running` is the ota_N the bootloader model chose for this boot. */
  constructor(path: string, running: number) {
    flashOpen(path);
    const count = appSlots(readTable()).length;
    if (!(Number.isInteger(running) && running >= 0 && running < count)) throw new OtaError("FLASH_NO_PARTITION", `running slot ${running} of ${count}`);
    this.#info = { count, running, next: (running + 1) % count };
  }
  open(label: string): FlashPartition {
    const entries = readTable();
    if (label === "running") return new FilePartition(appSlots(entries)[this.#info.running]!);
    if (label === "nextota") return new FilePartition(appSlots(entries)[this.#info.next]!);
    const entry = entries.find((e) => e.name === label && e.type === DATA);
    if (!entry) throw new OtaError("FLASH_NO_PARTITION", `${label} (data partitions, "running" and "nextota" only)`);
    return new FilePartition(entry);
  }
  slots(): SlotInfo {
    return { ...this.#info };
  }
}
