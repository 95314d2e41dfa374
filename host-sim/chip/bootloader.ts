/*
 * The second-stage bootloader with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE, modelled on ESP-IDF's
 * bootloader_utility.c (bootloader_utility_get_selected_boot_partition, _load_boot_image,
 * set_actual_ota_seq, write_otadata) and esp_image_format.c (via modules/image.ts):
 *
 * 1. Every otadata entry in PENDING_VERIFY becomes ABORTED (erase its sector, write 32 bytes).
 * 2. Both entries "invalid" (erased seq, INVALID or ABORTED): factory, else ota_0; when both are
 *    also "initial" (erased or bad CRC), the slot that boots gets seq = slot + 1, VALID in sector 0.
 *    Otherwise the highest valid entry (tie: entry 0) picks ota_[(seq - 1) % n]; none valid: factory
 *    index (-1), i.e. try every slot. A NEW entry becomes PENDING_VERIFY.
 * 3. Load: from the chosen index down to factory, then upwards; the first slot whose image
 *    validates (and whose chip id matches) boots. None: the device is bricked (a result, never a throw).
 * Optional anti-rollback (CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK), as v6.0's check_anti_rollback /
 * update_anti_rollback: the secure_version is read from esp_app_desc_t at 0x20 of the slot (magic
 * checked, image not validated); an entry whose slot is below the eFuse floor is not selected, such a
 * slot is not loaded, and selecting a VALID entry (or writing the initial entry) raises the floor to
 * its slot's version (esp_efuse_update_secure_version: at most the 32-bit field's width).
 * test/device/idf-otadata-diff.test.ts holds the selection equal to IDF's own C.
 * Flash writes go through SimFlash (counted, tearable); a power cut propagates as PowerCut.
 */
import type { CryptoPort } from "../../modules/ports";
import type { AppDesc, ImageInfo } from "../../modules/image";
import { validateImage, APP_DESC_MAGIC, APP_DESC_OFFSET } from "../../modules/image";
import { OtaError, codeOf } from "../../modules/errors";
import { OtaState, OTA_SECTOR, ENTRY_SIZE, decodeEntry, activeEntry, entryValid, seqCrc, type OtaEntry } from "../../modules/otadata";
import { encodeEntryRaw, entryInvalid, entryInitial } from "./otadata-model";
import { nodeCrypto } from "../../backend/crypto";
import { readBehavior, type Behavior } from "./image-builder";
import type { SimChip, ChipPartition } from "./chip";
import { PowerCut } from "./flash";

export interface BootOptions {
  /** Chip id the images must carry (default: the chip's). */
  chipId?: number;
  /** CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK (default false). */
  antiRollback?: boolean;
  crypto?: CryptoPort;
}

export type BootResult =
  /** slot: the OTA slot index, or -1 for a factory app. */
  | { kind: "booted"; slot: number; appDesc: AppDesc; behavior: Behavior; info: ImageInfo; log: string[] }
  | { kind: "bricked"; reason: string; log: string[] };

const FACTORY = -1;
/** CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD on the ESP32 (the eFuse field's width). */
const SEC_VER_BITS = 32;

/** bootloader_common_get_partition_description: secure_version of esp_app_desc_t, undefined when its magic is wrong. */
function secureVersionOf(part: ChipPartition): number | undefined {
  const b = new Uint8Array(8);
  part.read(APP_DESC_OFFSET, b);
  const v = new DataView(b.buffer);
  return v.getUint32(0, true) === APP_DESC_MAGIC ? v.getUint32(4, true) : undefined;
}

function writeOtadata(ota: ChipPartition, index: number, e: OtaEntry): void {
  ota.eraseBlock(index);
  ota.write(index * OTA_SECTOR, encodeEntryRaw(e));
}

/** One boot of `chip`. Throws only PowerCut (FLASH_POWER_CUT) when power fails during an otadata write or a read. */
export function boot(chip: SimChip, options: BootOptions = {}): BootResult {
  const log: string[] = [];
  const crypto = options.crypto ?? nodeCrypto;
  const chipId = options.chipId ?? chip.chipId;
  const anti = options.antiRollback ?? false;
  const slots = chip.table.appSlots();
  const n = slots.length;
  const factoryEntry = chip.table.entries.find((e) => e.type === 0 && e.subtype === 0x00);
  const otaEntry = chip.table.otadata();
  const scratch = new Uint8Array(16 * 1024);

  const partOf = (index: number): ChipPartition | undefined =>
    index === FACTORY ? (factoryEntry ? chip.partition(factoryEntry.name) : undefined) : chip.slot(index);

  /** check_anti_rollback: the slot's secure_version is at least the eFuse floor. */
  const antiOk = (part: ChipPartition): boolean => {
    const v = secureVersionOf(part);
    return v !== undefined && v >= chip.efuseSecureVersion;
  };
  /** update_anti_rollback: raise the floor to the slot's secure_version when its desc reads and fits the field. */
  const raiseFrom = (part: ChipPartition | undefined): void => {
    const v = part ? secureVersionOf(part) : undefined;
    if (v !== undefined && v <= SEC_VER_BITS) chip.raiseSecureVersion(v);
  };
  const failures: string[] = [];
  const tryLoad = (index: number): { info: ImageInfo; part: ChipPartition } | undefined => {
    const part = partOf(index);
    if (!part) return undefined;
    const name = index === FACTORY ? "factory" : `ota_${index}`;
    try {
      if (anti && !antiOk(part)) throw new OtaError("POLICY_DOWNGRADE", `secure_version ${secureVersionOf(part)} < eFuse ${chip.efuseSecureVersion}`);
      const info = validateImage((o, t) => part.read(o, t), part.byteLength, crypto, scratch);
      if (info.header.chipId !== chipId) throw new OtaError("IMAGE_CHIP", `image chip id ${info.header.chipId}, chip ${chipId}`);
      return { info, part };
    } catch (e) {
      if (e instanceof PowerCut) throw e;
      failures.push(`${name}: ${codeOf(e)}${e instanceof OtaError && e.detail ? ` (${e.detail})` : ""}`);
      log.push(`${name} does not boot: ${(e as Error).message}`);
      return undefined;
    }
  };

  let start = FACTORY;
  let initial = false;
  let ota: ChipPartition | undefined;
  let entries: [OtaEntry, OtaEntry] | undefined;
  if (otaEntry) {
    ota = chip.partition(otaEntry.name);
    const raw = new Uint8Array(ENTRY_SIZE);
    ota.read(0, raw);
    const e0 = decodeEntry(raw);
    ota.read(OTA_SECTOR, raw);
    entries = [e0, decodeEntry(raw)];
    for (let i = 0; i < 2; i++) {
      if (entries[i]!.state === OtaState.PENDING_VERIFY) {
        log.push(`otadata[${i}] PENDING_VERIFY -> ABORTED (the last boot never confirmed)`);
        entries[i] = { ...entries[i]!, state: OtaState.ABORTED };
        writeOtadata(ota, i, entries[i]!);
      }
    }
    const [a, b] = entries;
    if (!anti && ((entryInvalid(a) && entryInvalid(b)) || n === 0)) {
      if (factoryEntry) start = FACTORY;
      else {
        start = 0;
        initial = entryInitial(a) && entryInitial(b);
      }
      log.push(`otadata holds no selection: trying ${start === FACTORY ? "factory" : "ota_0"}`);
    } else if (anti && entryInitial(a) && entryInitial(b)) {
      start = FACTORY; // v6.0 leaves boot_index at FACTORY_INDEX here: factory first when there is one
      initial = true;
    } else {
      let active: 0 | 1 | -1;
      if (anti) {
        const ok = entries.map((e) => {
          if (!entryValid(e)) return false;
          const part = partOf(((e.seq - 1) >>> 0) % n);
          return part !== undefined && antiOk(part);
        });
        active = ok[0] && ok[1] ? (b.seq > a.seq ? 1 : 0) : ok[0] ? 0 : ok[1] ? 1 : -1;
      } else active = activeEntry(entries);
      if (active !== -1) {
        const e = entries[active]!;
        start = ((e.seq - 1) >>> 0) % n;
        log.push(`otadata[${active}] seq ${e.seq} selects ota_${start}`);
        if (e.state === OtaState.NEW) {
          log.push(`otadata[${active}] NEW -> PENDING_VERIFY`);
          entries[active] = { ...e, state: OtaState.PENDING_VERIFY };
          writeOtadata(ota, active, entries[active]!);
        }
        // IDF tests the state as read, before NEW -> PENDING_VERIFY (a NEW entry never raises it).
        if (anti && e.state === OtaState.VALID) raiseFrom(partOf(start));
      } else {
        log.push("otadata invalid and no factory app: trying every partition");
        start = FACTORY;
      }
    }
  }

  const order: number[] = [];
  for (let i = start; i >= FACTORY; i--) order.push(i);
  for (let i = start + 1; i < n; i++) order.push(i);
  for (const index of order) {
    const got = tryLoad(index);
    if (!got) continue;
    if (index > FACTORY && initial && ota) {
      const e: OtaEntry = { seq: index + 1, label: new Uint8Array(20).fill(0xff), state: OtaState.VALID, crc: seqCrc(index + 1) };
      log.push(`set actual ota_seq=${index + 1} in otadata[0]`);
      writeOtadata(ota, 0, e);
      if (anti) raiseFrom(got.part);
    }
    const behavior = readBehavior((o, t) => got.part.read(o, t));
    log.push(`booting ${index === FACTORY ? "factory" : `ota_${index}`} (${got.info.appDesc.projectName} ${got.info.appDesc.version}, ${behavior})`);
    return { kind: "booted", slot: index, appDesc: got.info.appDesc, behavior, info: got.info, log };
  }
  const reason = `no bootable app partition${failures.length ? ": " + failures.join("; ") : ""}`;
  log.push(reason);
  return { kind: "bricked", reason, log };
}
