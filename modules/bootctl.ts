/*
 * Boot selection from the app, as ESP-IDF v6.0's esp_ota_ops.c does it to otadata, over the flash port:
 * esp_rewrite_ota_data (esp_ota_set_boot_partition), esp_ota_current_ota_is_workable (mark valid /
 * mark invalid), esp_ota_check_rollback_is_possible and esp_ota_get_state_partition. Every write is
 * rewrite_ota_seq's: erase the sector, then the 32 bytes of the entry as read (label kept) with the
 * new seq, state and CRC. test/device/idf-otadata-diff.test.ts holds this equal to IDF's own C.
 */
import type { BootControlPort, CryptoPort, FlashPartition, FlashPort } from "./ports";
import { OtaError } from "./errors";
import { validateImage } from "./image";
import { ENTRY_SIZE, OTA_SECTOR, OtaState, activeEntry, decodeEntry, encodeEntry, entryValid, nextSeq, seqCrc, slotOfSeq, type OtaEntry } from "./otadata";

export interface OtadataView {
  entries: [OtaEntry, OtaEntry];
  active: 0 | 1 | -1;
}

/** The factory app, as a rollback target of esp_ota_check_rollback_is_possible. */
export const FACTORY_SLOT = -1;

/**
 * esp_ota_check_rollback_is_possible without anti-rollback: the slot whose image must validate for a
 * rollback to be possible, FACTORY_SLOT when it is the factory app, undefined when nothing could boot.
 */
export function rollbackTarget(view: OtadataView, slotCount: number): number | undefined {
  if (slotCount === 0 || view.active === -1) return undefined;
  const last = view.entries[view.active === 0 ? 1 : 0];
  return entryValid(last) ? slotOfSeq(last.seq, slotCount) : FACTORY_SLOT;
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

  /** esp_ota_get_state_partition: the state of the first entry (sector 0, then 1) that selects `slot` with a right CRC, else undefined. */
  stateOf(slot: number): number | undefined {
    const count = this.flash.slots().count;
    if (count === 0) return undefined;
    for (const e of this.read().entries) if (slotOfSeq(e.seq, count) === slot && e.crc === seqCrc(e.seq)) return e.state;
    return undefined;
  }

  /** The otadata state of the running slot (esp_ota_get_state_partition of the running partition); undefined when none. */
  runningState(): number | undefined {
    return this.stateOf(this.flash.slots().running);
  }

  /**
   * esp_ota_set_boot_partition with rollback on (esp_rewrite_ota_data): when the active entry already
   * selects `slot` it is rewritten in place with state NEW (v6.0, IDF #14688); else the next seq for
   * `slot` goes to the other sector; with no active entry, seq slot + 1 to sector 0.
   * Throws RangeError for a slot out of range, OTADATA_WRITE if the read-back differs.
   */
  setBootSlot(slot: number): { seq: number; sector: 0 | 1 } {
    const count = this.flash.slots().count;
    if (!(slot >= 0 && slot < count)) throw new RangeError(`no OTA slot ${slot}`);
    const view = this.read();
    const a = view.active;
    let sector: 0 | 1 = 0;
    let seq = slot + 1;
    if (a !== -1) {
      const e = view.entries[a];
      if (slotOfSeq(e.seq, count) === slot) {
        sector = a;
        seq = e.seq;
      } else {
        sector = a === 0 ? 1 : 0;
        seq = nextSeq(e.seq, slot, count);
      }
    }
    this.writeEntry(sector, seq, OtaState.NEW, view.entries[sector].label);
    return { seq, sector };
  }

  /** esp_ota_check_rollback_is_possible (anti-rollback off); `canBoot` validates the image of a slot (FACTORY_SLOT: the factory app). */
  rollbackPossible(canBoot: (slot: number) => boolean): boolean {
    const target = rollbackTarget(this.read(), this.flash.slots().count);
    return target !== undefined && canBoot(target);
  }

  /**
   * esp_ota_mark_app_valid_cancel_rollback / esp_ota_mark_app_invalid_rollback on otadata: the active
   * entry rewritten in place with `state` (VALID only when it is not VALID yet). IDF looks at the active
   * entry only, not at which slot runs. Throws OTADATA_STATE when no entry is active (IDF's ESP_FAIL,
   * "running firmware is factory"). The rollback check of mark-invalid is the caller's (rollbackTarget).
   */
  markActive(state: typeof OtaState.VALID | typeof OtaState.INVALID): void {
    const view = this.read();
    const a = view.active;
    if (a === -1 || this.flash.slots().count === 0) throw new OtaError("OTADATA_STATE", "no active otadata entry");
    const e = view.entries[a];
    if (state === OtaState.VALID && e.state === OtaState.VALID) return;
    this.writeEntry(a, e.seq, state, e.label);
  }

  /**
   * esp_ota_mark_app_invalid_rollback (without the restart): false, nothing written, when no other image
   * could boot (IDF's ESP_ERR_OTA_ROLLBACK_FAILED); else the active entry becomes INVALID. Throws
   * OTADATA_STATE when no entry is active (checked first, as IDF does).
   */
  markInvalid(canBoot: (slot: number) => boolean): boolean {
    if (this.read().active === -1 || this.flash.slots().count === 0) throw new OtaError("OTADATA_STATE", "no active otadata entry");
    if (!this.rollbackPossible(canBoot)) return false;
    this.markActive(OtaState.INVALID);
    return true;
  }

  /** markActive, only when the active entry selects the running slot (the agent never marks another image). Throws OTADATA_STATE otherwise. */
  setRunningState(state: typeof OtaState.VALID | typeof OtaState.INVALID): void {
    const view = this.read();
    const slots = this.flash.slots();
    const a = view.active;
    if (a === -1) throw new OtaError("OTADATA_STATE", "no active otadata entry");
    if (slotOfSeq(view.entries[a].seq, slots.count) !== slots.running) throw new OtaError("OTADATA_STATE", "the active entry does not select the running slot");
    this.markActive(state);
  }

  private writeEntry(sector: 0 | 1, seq: number, state: number, label: Uint8Array): void {
    this.part.eraseBlock(sector);
    encodeEntry(seq, state, this.entry, label);
    this.part.write(sector * OTA_SECTOR, this.entry);
    const back = new Uint8Array(ENTRY_SIZE);
    this.part.read(sector * OTA_SECTOR, back);
    for (let i = 0; i < ENTRY_SIZE; i++) if (back[i] !== this.entry[i]) throw new OtaError("OTADATA_WRITE", `sector ${sector} read back differs`);
  }
}

/**
 * BootControlPort over the flash port: the binding where no ESP-IDF is under the agent (the simulator,
 * Moddable's Linux runtime). The steps are BootControl's (IDF v6.0's, byte for byte), with two
 * deliberate differences: markValid/markInvalid keep the agent's guard (the active entry must select the
 * running slot: setRunningState), and rollbackPossible is the agent's rule below, not
 * esp_ota_check_rollback_is_possible.
 */
export class FlashBootControl implements BootControlPort {
  readonly model: BootControl;

  /** `chipId` and `scratch` (a 4 KB buffer) serve rollbackPossible's image validation. Throws FLASH_NO_PARTITION without otadata. */
  constructor(private readonly flash: FlashPort, private readonly crypto: CryptoPort, private readonly chipId: () => number, private readonly scratch: Uint8Array) {
    this.model = new BootControl(flash);
  }

  runningState(): number | undefined {
    return this.model.runningState();
  }

  setBootSlot(slot: number): void {
    this.model.setBootSlot(slot);
  }

  /**
   * Whether marking this image INVALID brings a bootable image back. The bootloader falls back to the
   * slot of the other valid otadata entry, or to ota_0 when there is none. When that is the update slot
   * ("nextota", always so with two slots) its image is validated here; another slot cannot be opened
   * through the flash port (Moddable opens app slots only as "running"/"nextota"), so its valid otadata
   * entry is taken as the proof: it ran before this update.
   * Not ESP-IDF v6.0's esp_ota_check_rollback_is_possible (BootControl.rollbackPossible) on purpose: with
   * no valid entry for the previous image IDF says no (no factory app) although its bootloader would boot
   * ota_0; a power cut tearing the first boot's otadata write leaves exactly that (test/agent/power-cut,
   * "during a rollback too", cut at op 2), and IDF's rule would keep the failed image. On the ESP32
   * (src/boot.ts) IDF's own rule decides: docs/esp32.md "Boot control on the chip".
   */
  rollbackPossible(): boolean {
    const slots = this.flash.slots();
    const view = this.model.read();
    const other = view.active === -1 ? undefined : view.entries[1 - view.active];
    const previous = other && entryValid(other) ? slotOfSeq(other.seq, slots.count) : 0;
    if (previous === slots.running) return false;
    if (previous !== slots.next) return (other !== undefined && entryValid(other)) || previous === 0;
    try {
      const part = this.flash.open("nextota");
      const info = validateImage((o, t) => part.read(o, t), part.byteLength, this.crypto, this.scratch);
      return info.header.chipId === this.chipId();
    } catch {
      return false;
    }
  }

  markValid(): void {
    this.model.setRunningState(OtaState.VALID);
  }

  /** The caller asked rollbackPossible first (the agent does); CONFIRM_NO_ROLLBACK when it says no, nothing written. */
  markInvalid(): void {
    if (!this.rollbackPossible()) throw new OtaError("CONFIRM_NO_ROLLBACK", "no other image could boot");
    this.model.setRunningState(OtaState.INVALID);
  }
}
