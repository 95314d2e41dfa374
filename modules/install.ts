/*
 * The update slot writer, in esp_https_ota's begin / write / finish / abort discipline with the
 * state checked at every entry: `finish` switches the boot slot only from a complete, verified
 * state; `abort` works from any state. Each 4 KB block is erased just before its first write
 * (never the whole slot: a bulk erase trips the task watchdog on the chip).
 */
import type { FlashPartition, FlashPort } from "./ports";
import { OtaError } from "./errors";
import type { BootControlPort } from "./ports";

export type SlotState = "idle" | "writing" | "written" | "verified" | "finished" | "aborted";

export class UpdateSlot {
  readonly part: FlashPartition;
  /** The slot index an update goes to. */
  readonly slot: number;
  private s: SlotState = "idle";
  private offset = 0;
  private erasedTo = 0;
  private size = 0;

  /** Opens "nextota". Throws FLASH_NO_PARTITION. */
  constructor(flash: FlashPort) {
    this.part = flash.open("nextota");
    this.slot = flash.slots().next;
  }

  get state(): SlotState {
    return this.s;
  }

  /** Bytes written in this session (absolute offset in the slot). */
  get written(): number {
    return this.offset;
  }

  /**
   * Start (or resume) writing an image of `size` bytes at `from` (block aligned; bytes after it
   * are re-erased before they are rewritten). From idle or aborted.
   * Throws IMAGE_TOO_LARGE (size > slot, Moddable's update module refuses it at open), OTADATA_STATE.
   */
  begin(size: number, from = 0): void {
    if (this.s !== "idle" && this.s !== "aborted" && this.s !== "writing") throw new OtaError("OTADATA_STATE", `begin in state ${this.s}`);
    if (!Number.isInteger(size) || size <= 0) throw new RangeError("size must be a positive integer");
    if (size > this.part.byteLength) throw new OtaError("IMAGE_TOO_LARGE", `${size} > slot ${this.part.byteLength}`);
    if (from % this.part.blockSize || from < 0 || from > size) throw new RangeError("resume offset must be block aligned and within the image");
    this.size = size;
    this.offset = from;
    this.erasedTo = from;
    this.s = "writing";
  }

  /** Append `data` at the current offset. Throws OTADATA_STATE, IMAGE_TOO_LARGE (past the announced size), FLASH_* from the port. */
  write(data: Uint8Array): void {
    if (this.s !== "writing") throw new OtaError("OTADATA_STATE", `write in state ${this.s}`);
    const end = this.offset + data.byteLength;
    if (end > this.size) throw new OtaError("IMAGE_TOO_LARGE", `write past the image size ${this.size}`);
    const bs = this.part.blockSize;
    while (this.erasedTo < end) {
      this.part.eraseBlock(this.erasedTo / bs);
      this.erasedTo += bs;
    }
    this.part.write(this.offset, data);
    this.offset = end;
  }

  /** All bytes are in. Throws OTADATA_STATE, DOWNLOAD_SIZE. */
  complete(): void {
    if (this.s !== "writing") throw new OtaError("OTADATA_STATE", `complete in state ${this.s}`);
    if (this.offset !== this.size) throw new OtaError("DOWNLOAD_SIZE", `${this.offset} of ${this.size} bytes`);
    this.s = "written";
  }

  /** Declare a resumed slot complete without writing (the journal says every byte is in). Throws OTADATA_STATE, IMAGE_TOO_LARGE. */
  adopt(size: number): void {
    if (this.s !== "idle" && this.s !== "aborted") throw new OtaError("OTADATA_STATE", `adopt in state ${this.s}`);
    if (size > this.part.byteLength) throw new OtaError("IMAGE_TOO_LARGE", `${size} > slot ${this.part.byteLength}`);
    this.size = size;
    this.offset = size;
    this.erasedTo = size;
    this.s = "written";
  }

  /** Verification passed (modules/verify.ts). Throws OTADATA_STATE. */
  markVerified(): void {
    if (this.s !== "written") throw new OtaError("OTADATA_STATE", `verified in state ${this.s}`);
    this.s = "verified";
  }

  /** Make the slot the boot target (esp_ota_set_boot_partition: state NEW). Only from verified. Throws OTADATA_STATE, and what `boot.setBootSlot` throws. */
  finish(boot: Pick<BootControlPort, "setBootSlot">): void {
    if (this.s !== "verified") throw new OtaError("OTADATA_STATE", `finish in state ${this.s}`);
    boot.setBootSlot(this.slot);
    this.s = "finished";
  }

  /** Give up; safe from any state and twice. The slot keeps whatever bytes it has; otadata is untouched. */
  abort(): void {
    if (this.s !== "finished") this.s = "aborted";
  }

  /** Read `target.byteLength` bytes of the slot at `offset` (for verification). */
  read(offset: number, target: Uint8Array): void {
    this.part.read(offset, target);
  }
}
