/*
 * FlashPort on the ESP32: partitions through ECMA-419 "embedded:storage/flash"
 * (modules/io/flash/esp32/flash-esp32.c: "running"/"nextota" are esp_ota_get_running_partition /
 * esp_ota_get_next_update_partition, any other label a data partition), which reads into a
 * caller-owned buffer. Slot indexes come from src/native (Moddable exposes none).
 */
import FlashStorage, { type Flash } from "embedded:storage/flash";
import type { FlashPartition, FlashPort, SlotInfo } from "../modules/ports";
import { OtaError } from "../modules/errors";
import { nextSlot, runningSlot, slotCount } from "./native/esp32";

class Partition implements FlashPartition {
  readonly byteLength: number;
  readonly blockSize: number;
  readonly #flash: Flash;
  readonly #label: string;

  constructor(flash: Flash, label: string) {
    const status = flash.status();
    this.#flash = flash;
    this.#label = label;
    this.byteLength = status.size;
    this.blockSize = status.blockLength;
  }
  #bounds(offset: number, length: number): void {
    if (!(offset >= 0 && offset + length <= this.byteLength))
      throw new OtaError("FLASH_OUT_OF_BOUNDS", `${this.#label}: ${length} bytes at ${offset} of ${this.byteLength}`);
  }
  read(offset: number, target: Uint8Array): void {
    this.#bounds(offset, target.byteLength);
    this.#flash.read(target, offset);
  }
  write(offset: number, data: Uint8Array): void {
    this.#bounds(offset, data.byteLength);
    this.#flash.write(data, offset);
  }
  /** One 4 KB sector per call: erasing the whole slot at once trips the task watchdog. */
  eraseBlock(block: number): void {
    if (!Number.isInteger(block)) throw new RangeError("block must be an integer");
    this.#bounds(block * this.blockSize, this.blockSize);
    this.#flash.eraseBlock(block);
  }
}

export class EspFlashPort implements FlashPort {
  open(label: string): FlashPartition {
    let flash: Flash;
    try {
      // The running image is opened read-only: no bug in the agent can write over it.
      flash = FlashStorage.open({ path: label, mode: label === "running" ? "r" : "r+" });
    } catch (e) {
      throw new OtaError("FLASH_NO_PARTITION", `${label}: ${String(e)}`);
    }
    return new Partition(flash, label);
  }
  slots(): SlotInfo {
    return { count: slotCount(), running: runningSlot(), next: nextSlot() };
  }
}
