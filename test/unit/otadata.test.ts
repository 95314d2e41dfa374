import { describe, expect, it } from "vitest";
import { activeEntry, crc32, decodeEntry, encodeEntry, entryValid, nextSeq, OtaState, seqCrc, slotOfSeq } from "../../modules/otadata";

describe("otadata bytes", () => {
  it("computes the CRCs ESP-IDF stores (binascii.crc32(seq_le, 0xFFFFFFFF))", () => {
    expect(seqCrc(1)).toBe(0x4743989a);
    expect(seqCrc(2)).toBe(0x55f63774);
    expect(seqCrc(3)).toBe(0xed4a5011);
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });

  it("encodes an entry byte-exact", () => {
    const bytes = encodeEntry(2, OtaState.NEW);
    const expected = new Uint8Array(32).fill(0xff);
    expected.set([2, 0, 0, 0], 0);
    expected.set([0, 0, 0, 0], 24);
    expected.set([0x74, 0x37, 0xf6, 0x55], 28);
    expect([...bytes]).toEqual([...expected]);
    const e = decodeEntry(bytes);
    expect(e).toMatchObject({ seq: 2, state: 0, crc: 0x55f63774 });
    expect(entryValid(e)).toBe(true);
  });

  it("treats erased, bad-CRC, INVALID and ABORTED entries as invalid", () => {
    const erased = decodeEntry(new Uint8Array(32).fill(0xff));
    expect(entryValid(erased)).toBe(false);
    const bad = encodeEntry(3, OtaState.VALID);
    bad[28] ^= 1;
    expect(entryValid(decodeEntry(bad))).toBe(false);
    expect(entryValid(decodeEntry(encodeEntry(3, OtaState.INVALID)))).toBe(false);
    expect(entryValid(decodeEntry(encodeEntry(3, OtaState.ABORTED)))).toBe(false);
    expect(entryValid(decodeEntry(encodeEntry(3, OtaState.PENDING_VERIFY)))).toBe(true);
  });

  it("picks the higher valid seq, entry 0 on a tie", () => {
    const e = (seq: number, state: number = OtaState.VALID) => decodeEntry(encodeEntry(seq, state));
    expect(activeEntry([e(1), e(2)])).toBe(1);
    expect(activeEntry([e(3), e(2)])).toBe(0);
    expect(activeEntry([e(2), e(2)])).toBe(0);
    expect(activeEntry([e(3, OtaState.ABORTED), e(2)])).toBe(1);
    expect(activeEntry([e(3, OtaState.INVALID), e(2, OtaState.INVALID)])).toBe(-1);
  });

  it("chooses the next seq as v6.0's compute_ota_seq_for_target_slot does", () => {
    expect(nextSeq(0, 0, 2)).toBe(1);
    // An active entry with seq 0 (CRC right) gives seq 0 for the last slot, as IDF does; it still selects it (uint32 wrap).
    expect(nextSeq(0, 1, 2)).toBe(0);
    expect(slotOfSeq(0, 2)).toBe(1);
    expect(slotOfSeq(0, 3)).toBe(0);
    // Near 2^32 the C loop wraps: the next value of base + i * n at or above seq, modulo 2^32.
    expect(nextSeq(0xfffffffe, 0, 2)).toBe(0xffffffff);
    expect(nextSeq(0xfffffffe, 0, 3)).toBe(0xffffffff);
    expect(nextSeq(1, 1, 2)).toBe(2);
    expect(nextSeq(2, 0, 2)).toBe(3);
    expect(nextSeq(3, 1, 2)).toBe(4);
    expect(nextSeq(5, 1, 2)).toBe(6);
    for (let seq = 1; seq < 20; seq++) for (let slot = 0; slot < 2; slot++) {
      const next = nextSeq(seq, slot, 2);
      expect(slotOfSeq(next, 2)).toBe(slot);
      expect(next).toBeGreaterThanOrEqual(seq);
    }
  });
});
