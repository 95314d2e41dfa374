/*
 * otadata as ESP-IDF writes it (components/app_update, bootloader_support):
 * two 4 KB sectors, each starting with esp_ota_select_entry_t, little-endian, 32 bytes:
 *   u32 ota_seq @0, u8 seq_label[20] @4, u32 ota_state @24, u32 crc @28
 * crc = esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4) == binascii.crc32(seq_le, 0xFFFFFFFF).
 *
 * Pure functions over bytes: the agent uses them to switch and confirm, the simulator's
 * bootloader to select. One implementation, so both sides agree by construction; the tests
 * pin it to hand-computed bytes.
 */
import { constant } from "./constant";

export const OTA_SECTOR = 4096;
export const ENTRY_SIZE = 32;

export const OtaState = constant({
  NEW: 0,
  PENDING_VERIFY: 1,
  VALID: 2,
  INVALID: 3,
  ABORTED: 4,
  UNDEFINED: 0xffffffff,
} as const);
export type OtaStateName = keyof typeof OtaState;

export interface OtaEntry {
  seq: number;
  label: Uint8Array; // 20 bytes, unused by ESP-IDF (0xFF when erased)
  state: number;
  crc: number;
}

/**
 * zlib CRC-32 (binascii.crc32(data, init)); init 0 is the usual zlib crc32. Bit by bit, without a
 * table: its inputs are a 4-byte sequence number and a 1,196-byte signature block, and a 1 KB
 * table would sit in RAM on the device (the preloaded module cannot keep one in flash).
 */
export function crc32(data: Uint8Array, init = 0): number {
  let c = (init ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) {
    c ^= data[i]!;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** The otadata CRC of a sequence number, exactly as ESP-IDF computes it. */
export function seqCrc(seq: number): number {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, seq >>> 0, true);
  return crc32(b, 0xffffffff);
}

export function decodeEntry(bytes: Uint8Array): OtaEntry {
  if (bytes.byteLength < ENTRY_SIZE) throw new RangeError("otadata entry needs 32 bytes");
  const v = new DataView(bytes.buffer, bytes.byteOffset, ENTRY_SIZE);
  return {
    seq: v.getUint32(0, true),
    label: bytes.slice(4, 24),
    state: v.getUint32(24, true),
    crc: v.getUint32(28, true),
  };
}

/**
 * The 32 bytes of an entry with its CRC computed. `label` is what the sector held (ESP-IDF's
 * rewrite_ota_seq writes back the entry it read, label included); 0xFF when none is given.
 */
export function encodeEntry(seq: number, state: number, out: Uint8Array = new Uint8Array(ENTRY_SIZE), label?: Uint8Array): Uint8Array {
  out.fill(0xff, 0, ENTRY_SIZE);
  if (label) out.set(label.subarray(0, 20), 4);
  const v = new DataView(out.buffer, out.byteOffset, ENTRY_SIZE);
  v.setUint32(0, seq >>> 0, true);
  v.setUint32(24, state >>> 0, true);
  v.setUint32(28, seqCrc(seq), true);
  return out;
}

/** bootloader_common_ota_select_valid: seq set, CRC right, state not INVALID/ABORTED. */
export function entryValid(e: OtaEntry): boolean {
  return e.seq !== 0xffffffff && e.crc === seqCrc(e.seq) && e.state !== OtaState.INVALID && e.state !== OtaState.ABORTED;
}

/** Which of the two entries is active (bootloader_common_get_active_otadata): the higher valid seq; a tie goes to entry 0. -1 when neither is valid. */
export function activeEntry(entries: readonly [OtaEntry, OtaEntry]): 0 | 1 | -1 {
  const v0 = entryValid(entries[0]);
  const v1 = entryValid(entries[1]);
  if (v0 && v1) return entries[1].seq > entries[0].seq ? 1 : 0;
  if (v0) return 0;
  if (v1) return 1;
  return -1;
}

/** The slot an entry selects: ota_[(seq - 1) % slotCount] in uint32 arithmetic, as ESP-IDF computes it (seq 0 wraps to 0xFFFFFFFF). */
export function slotOfSeq(seq: number, slotCount: number): number {
  return ((seq - 1) >>> 0) % slotCount;
}

/**
 * compute_ota_seq_for_target_slot (v6.0): base = (slot + 1) % n; i = 0; while (seq > base + i * n) i++,
 * all uint32. Solved lap by lap instead of counted: a lap ends where base + i * n wraps past 2^32.
 */
export function nextSeq(activeSeq: number, slot: number, slotCount: number): number {
  if (slotCount === 0) return 0;
  let start = (slot + 1) % slotCount;
  for (let lap = 0; lap <= 2 * slotCount; lap++) {
    if (activeSeq <= start) return start;
    const v = start + Math.ceil((activeSeq - start) / slotCount) * slotCount;
    if (v <= 0xffffffff) return v;
    start = start + Math.floor((0xffffffff - start) / slotCount) * slotCount + slotCount - 0x100000000;
  }
  throw new RangeError(`no sequence number for slot ${slot} above ${activeSeq}`);
}
