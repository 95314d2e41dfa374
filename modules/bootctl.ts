/*
 * Boot selection from the app: what esp_ota_set_boot_partition, esp_ota_mark_app_valid_cancel_rollback
 * and esp_ota_mark_app_invalid_rollback_and_reboot do to otadata, over the flash port.
 * Moddable has no API for the last two (REFERENCE.md), so the agent writes otadata itself, with
 * the exact ESP-IDF bytes from modules/otadata.ts.
 */
import type { FlashPartition, FlashPort } from "./ports";
import { OtaError } from "./errors";
import { ENTRY_SIZE, OTA_SECTOR, OtaState, activeEntry, decodeEntry, encodeEntry, nextSeq, sectorForWrite, slotOfSeq, type OtaEntry } from "./otadata";

export interface OtadataView {
  entries: [OtaEntry, OtaEntry];
  active: 0 | 1 | -1;
}

export class BootControl {
  private readonly part: FlashPartition;
  private readonly entry = new Uint8Array(ENTRY_SIZE);

  /** Throws FLASH_NO_PARTITION when there is no otadata partition. */
  constructor(private readonly flash: FlashPort) {
    this.part = flash.open("otadata");
  }

  read(): OtadataView {
    const a = new Uint8Array(ENTRY_SIZE);
    const b = new Uint8Array(ENTRY_SIZE);
    this.part.read(0, a);
    this.part.read(OTA_SECTOR, b);
    const entries: [OtaEntry, OtaEntry] = [decodeEntry(a), decodeEntry(b)];
    return { entries, active: activeEntry(entries) };
  }

  /**
   * The otadata state of the running slot: the active entry's state when it selects the slot
   * the bootloader booted, else undefined (booted by fallback, or no otadata: treated as valid).
   */
  runningState(): number | undefined {
    const view = this.read();
    const a = view.active;
    if (a === -1) return undefined;
    const slots = this.flash.slots();
    const e = view.entries[a];
    return slotOfSeq(e.seq, slots.count) === slots.running ? e.state : undefined;
  }

  /**
   * esp_ota_set_boot_partition with rollback on: the next seq for `slot` goes to the other
   * sector (erase, then 32 bytes), state NEW. Throws OTADATA_WRITE if the read-back differs.
   */
  setBootSlot(slot: number): { seq: number; sector: 0 | 1 } {
    const view = this.read();
    const a = view.active;
    const activeSeq = a === -1 ? 0 : view.entries[a].seq;
    const seq = nextSeq(activeSeq, slot, this.flash.slots().count);
    const sector = sectorForWrite(view.active);
    this.writeEntry(sector, seq, OtaState.NEW);
    return { seq, sector };
  }

  /** Rewrite the active entry in its own sector with `state` (mark valid / invalid, as IDF does). Throws OTADATA_STATE when no entry selects the running slot. */
  setRunningState(state: number): void {
    const view = this.read();
    const slots = this.flash.slots();
    const a = view.active;
    if (a === -1) throw new OtaError("OTADATA_STATE", "no active otadata entry");
    const e = view.entries[a];
    if (slotOfSeq(e.seq, slots.count) !== slots.running) throw new OtaError("OTADATA_STATE", "the active entry does not select the running slot");
    if (e.state === state) return;
    this.writeEntry(a, e.seq, state);
  }

  private writeEntry(sector: 0 | 1, seq: number, state: number): void {
    this.part.eraseBlock(sector);
    encodeEntry(seq, state, this.entry);
    this.part.write(sector * OTA_SECTOR, this.entry);
    const back = new Uint8Array(ENTRY_SIZE);
    this.part.read(sector * OTA_SECTOR, back);
    for (let i = 0; i < ENTRY_SIZE; i++) if (back[i] !== this.entry[i]) throw new OtaError("OTADATA_WRITE", `sector ${sector} read back differs`);
  }
}
