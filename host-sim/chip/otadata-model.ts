/*
 * otadata as the bootloader and the host tools see it (host-sim/chip/bootloader.ts, xsota flash show):
 * the parts of modules/otadata.ts that only the simulator needs, kept out of the device's link.
 */
import { ENTRY_SIZE, OtaState, seqCrc, type OtaEntry } from "../../modules/otadata";

export function stateName(state: number): string {
  for (const [name, value] of Object.entries(OtaState)) if (value === state >>> 0) return name;
  return `0x${(state >>> 0).toString(16)}`;
}

/** The 32 bytes of a whole entry as read (label and CRC kept as they are), the way the bootloader rewrites one. */
export function encodeEntryRaw(e: OtaEntry, out: Uint8Array = new Uint8Array(ENTRY_SIZE)): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset, ENTRY_SIZE);
  v.setUint32(0, e.seq >>> 0, true);
  out.set(e.label.subarray(0, 20), 4);
  v.setUint32(24, e.state >>> 0, true);
  v.setUint32(28, e.crc >>> 0, true);
  return out;
}

/** bootloader_common_ota_select_invalid: erased seq, or INVALID/ABORTED (the CRC is not looked at). */
export function entryInvalid(e: OtaEntry): boolean {
  return e.seq === 0xffffffff || e.state === OtaState.INVALID || e.state === OtaState.ABORTED;
}

/** Erased seq or a CRC mismatch: what the bootloader calls "initial contents". */
export function entryInitial(e: OtaEntry): boolean {
  return e.seq === 0xffffffff || e.crc !== seqCrc(e.seq);
}
