/*
 * SimChip: one simulated ESP32 = a SimFlash holding the partition table at 0x8000, the
 * partitions it names, the eFuse anti-rollback floor and the chip id. It binds the FlashPort
 * (labels as Moddable resolves them) and the StorePort (SimStore in the nvs partition) to it;
 * every flash operation of every partition goes through the one SimFlash, so a power-cut
 * schedule covers them all.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { FlashPartition, FlashPort, SlotInfo, StorePort } from "../../modules/ports";
import { OtaError } from "../../modules/errors";
import { SimFlash, SECTOR_SIZE, DEFAULT_FLASH_SIZE } from "./flash";
import { PartitionTable, parsePartitionCsv, parsePartitionBinary, loadDefaultTable, TABLE_OFFSET, TABLE_MAX_LENGTH, type PartitionEntry, APP, DATA } from "./partition-table";
import { SimStore } from "./nvs";

/** A generated layout instead of partitions.csv: nvs, otadata, then `slots` app slots of `slotSize`. */
export interface Geometry {
  slots?: number;
  slotSize?: number;
  nvsSize?: number;
}

export interface ChipOptions {
  flashSize?: number;
  /** A parsed table or CSV text; default partitions.csv (or `geometry`). */
  table?: PartitionTable | string;
  geometry?: Geometry;
  /** Seed of the flash tearing PRNG. */
  seed?: number;
  /** Throw FLASH_NOT_ERASED on writes that would set bits. */
  strict?: boolean;
  /** esp_image_header_t chip id of this chip (ESP32 = 0). */
  chipId?: number;
  /** Anti-rollback eFuse floor. */
  efuseSecureVersion?: number;
}

export function geometryCsv(g: Geometry): string {
  const slots = g.slots ?? 2;
  const slotSize = g.slotSize ?? 1536 * 1024;
  const lines = [`nvs, data, nvs, 0x9000, ${g.nvsSize ?? 20 * 1024}`, "otadata, data, ota, , 0x2000"];
  for (let i = 0; i < slots; i++) lines.push(`app${i}, app, ota_${i}, , ${slotSize}`);
  return lines.join("\n") + "\n";
}

/** One partition of the chip, bounds-checked; offsets are relative to the partition. */
export class ChipPartition implements FlashPartition {
  readonly blockSize = SECTOR_SIZE;
  readonly byteLength: number;
  readonly offset: number;
  constructor(private flash: SimFlash, readonly entry: PartitionEntry) {
    this.offset = entry.offset;
    this.byteLength = entry.size;
  }
  private check(offset: number, length: number, what: string): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + length > this.byteLength) {
      throw new OtaError("FLASH_OUT_OF_BOUNDS", `${what} ${this.entry.name} 0x${offset.toString(16)}+${length} (size 0x${this.byteLength.toString(16)})`);
    }
  }
  read(offset: number, target: Uint8Array): void {
    this.check(offset, target.length, "read");
    this.flash.read(this.offset + offset, target);
  }
  write(offset: number, data: Uint8Array): void {
    this.check(offset, data.length, "write");
    this.flash.write(this.offset + offset, data);
  }
  eraseBlock(block: number): void {
    if (!Number.isInteger(block) || block < 0 || (block + 1) * SECTOR_SIZE > this.byteLength) {
      throw new OtaError("FLASH_OUT_OF_BOUNDS", `erase block ${block} of ${this.entry.name} (${this.byteLength / SECTOR_SIZE} blocks)`);
    }
    this.flash.erase(this.offset / SECTOR_SIZE + block);
  }
}

export class SimChip {
  readonly chipId: number;
  private _efuse: number;
  private parts = new Map<string, ChipPartition>();
  private _store: SimStore | undefined;

  constructor(readonly flash: SimFlash, readonly table: PartitionTable, options: { chipId?: number; efuseSecureVersion?: number } = {}) {
    this.chipId = options.chipId ?? 0;
    this._efuse = options.efuseSecureVersion ?? 0;
  }

  /** A blank chip: partition table written at 0x8000, everything else erased (counters reset). Throws PTABLE_*. */
  static create(options: ChipOptions = {}): SimChip {
    const flashSize = options.flashSize ?? DEFAULT_FLASH_SIZE;
    const table = options.table instanceof PartitionTable ? options.table
      : typeof options.table === "string" ? parsePartitionCsv(options.table, { flashSize })
      : options.geometry ? parsePartitionCsv(geometryCsv(options.geometry), { flashSize })
      : loadDefaultTable(flashSize);
    if (table.end > flashSize) throw new OtaError("PTABLE_TOO_LARGE", `table ends at 0x${table.end.toString(16)}`);
    const flash = new SimFlash({ size: flashSize, seed: options.seed, strict: options.strict });
    flash.write(TABLE_OFFSET, table.toBinary());
    flash.resetStats();
    return new SimChip(flash, table, options);
  }

  /** The anti-rollback floor (an eFuse thermometer code: it only goes up). */
  get efuseSecureVersion(): number {
    return this._efuse;
  }
  raiseSecureVersion(v: number): void {
    if (!Number.isInteger(v) || v < 0) throw new RangeError("secure version must be a non-negative integer");
    if (v > this._efuse) this._efuse = v;
  }

  /** Partition by its table name (any type). Throws FLASH_NO_PARTITION. */
  partition(label: string): ChipPartition {
    let p = this.parts.get(label);
    if (!p) {
      const e = this.table.find(label);
      if (!e) throw new OtaError("FLASH_NO_PARTITION", label);
      p = new ChipPartition(this.flash, e);
      this.parts.set(label, p);
    }
    return p;
  }

  /** App slot `i` (ota_i). Throws FLASH_NO_PARTITION. */
  slot(i: number): ChipPartition {
    const e = this.table.appSlots()[i];
    if (!e) throw new OtaError("FLASH_NO_PARTITION", `ota_${i}`);
    return this.partition(e.name);
  }

  get slotCount(): number {
    return this.table.appSlots().length;
  }

  /**
   * The FlashPort the firmware booted from `runningSlot` sees. Labels as Moddable resolves them:
   * "running", "nextota" (esp_ota_get_next_update_partition), and data partitions by name.
   */
  flashPort(runningSlot: number): FlashPort {
    const count = this.slotCount;
    if (!Number.isInteger(runningSlot) || runningSlot < 0 || runningSlot >= count) throw new RangeError(`running slot ${runningSlot} of ${count}`);
    const info: SlotInfo = { count, running: runningSlot, next: (runningSlot + 1) % count };
    return {
      open: (label: string) => {
        if (label === "running") return this.slot(info.running);
        if (label === "nextota") return this.slot(info.next);
        const e = this.table.find(label);
        if (!e || e.type !== DATA) throw new OtaError("FLASH_NO_PARTITION", `${label} (data partitions, "running" and "nextota" only)`);
        return this.partition(label);
      },
      slots: () => ({ ...info }),
    };
  }

  /** The Preference store in the nvs partition. One instance per chip; it re-mounts after a power cut. Throws FLASH_NO_PARTITION. */
  store(): StorePort & SimStore {
    if (!this._store) {
      const e = this.table.entries.find((x) => x.type === DATA && x.subtype === 0x02);
      if (!e) throw new OtaError("FLASH_NO_PARTITION", "no nvs partition");
      this._store = new SimStore(this.partition(e.name), () => this.flash.powerCycles);
    }
    return this._store;
  }

  /** Write an image into app slot `slot` as a serial flasher would (counted erases and writes). */
  installImage(slot: number, image: Uint8Array): void {
    const p = this.slot(slot);
    if (image.length > p.byteLength) throw new OtaError("IMAGE_TOO_LARGE", `${image.length} bytes > slot ${p.byteLength}`);
    const blocks = Math.ceil(image.length / SECTOR_SIZE);
    for (let b = 0; b < blocks; b++) p.eraseBlock(b);
    p.write(0, image);
  }

  /** Raw flash image + a sidecar `<path>.chip.json` when the eFuse or chip id are not the defaults. */
  save(path: string): void {
    this.flash.save(path);
    if (this._efuse || this.chipId) writeFileSync(`${path}.chip.json`, JSON.stringify({ chipId: this.chipId, efuseSecureVersion: this._efuse }) + "\n");
  }

  /** Load a raw flash image; the table is read back from 0x8000. Throws FILE_NOT_FOUND, PTABLE_BINARY. */
  static load(path: string, options: { seed?: number; strict?: boolean } = {}): SimChip {
    let flash: SimFlash;
    try {
      flash = SimFlash.load(path, options);
    } catch (e) {
      if (e instanceof RangeError) throw new OtaError("PTABLE_BINARY", `${path} is not a raw flash image: ${e.message}`);
      throw e;
    }
    return SimChip.fromFlash(flash, existsSync(`${path}.chip.json`) ? JSON.parse(readFileSync(`${path}.chip.json`, "utf8")) : {});
  }

  /** A chip over an existing flash (table from 0x8000). Throws PTABLE_BINARY. */
  static fromFlash(flash: SimFlash, options: { chipId?: number; efuseSecureVersion?: number } = {}): SimChip {
    if (flash.size < TABLE_OFFSET + TABLE_MAX_LENGTH) throw new OtaError("PTABLE_BINARY", "flash too small to hold a partition table");
    const bin = new Uint8Array(TABLE_MAX_LENGTH);
    flash.read(TABLE_OFFSET, bin);
    flash.resetStats();
    const table = parsePartitionBinary(bin);
    if (!table.entries.length) throw new OtaError("PTABLE_BINARY", "no partition table at 0x8000");
    return new SimChip(flash, table, options);
  }

  /** An independent copy (flash content, eFuse, chip id): a fleet from one template. */
  clone(seed?: number): SimChip {
    return new SimChip(this.flash.clone(seed), this.table, { chipId: this.chipId, efuseSecureVersion: this._efuse });
  }
}

export { APP, DATA };
