import { describe, it, expect } from "vitest";
import { SimChip } from "../../host-sim/chip/chip";
import { boot } from "../../host-sim/chip/bootloader";
import { buildImage } from "../../host-sim/chip/image-builder";
import { PowerCut } from "../../host-sim/chip/flash";
import { encodeEntry, decodeEntry, OtaState } from "../../modules/otadata";
import { stateName } from "../../host-sim/chip/otadata-model";

const img = (version: string, extra: Parameters<typeof buildImage>[0] extends infer T ? Partial<T> : never = {}) =>
  buildImage({ version, size: 16 * 1024, ...extra });

function chipWith(images: (Uint8Array | null)[], geometry?: { slots: number; slotSize: number }): SimChip {
  const chip = SimChip.create(geometry ? { geometry } : {});
  images.forEach((im, i) => im && chip.installImage(i, im));
  chip.flash.resetStats();
  return chip;
}
function setEntry(chip: SimChip, sector: 0 | 1, seq: number, state: number, crc?: number): void {
  const ota = chip.partition("otadata");
  ota.eraseBlock(sector);
  const e = encodeEntry(seq, state);
  if (crc !== undefined) new DataView(e.buffer).setUint32(28, crc, true);
  ota.write(sector * 4096, e);
}
function entry(chip: SimChip, sector: 0 | 1) {
  const b = new Uint8Array(32);
  chip.partition("otadata").read(sector * 4096, b);
  return { bytes: b, ...decodeEntry(b), name: stateName(decodeEntry(b).state) };
}
const booted = (r: ReturnType<typeof boot>) => (r.kind === "booted" ? r.slot : `bricked`);

describe("first boot of a freshly flashed chip (otadata erased)", () => {
  it("boots ota_0 and writes seq 1 VALID into sector 0, byte for byte as IDF does", () => {
    const chip = chipWith([img("1.0.0")]);
    const r = boot(chip);
    expect(booted(r)).toBe(0);
    expect(r.kind === "booted" && r.appDesc.version).toBe("1.0.0");
    expect([...entry(chip, 0).bytes]).toEqual([1, 0, 0, 0, ...new Array(20).fill(0xff), 2, 0, 0, 0, 0x9a, 0x98, 0x43, 0x47]);
    expect(entry(chip, 1).bytes.every((b) => b === 0xff)).toBe(true);
    expect(chip.flash.stats()).toMatchObject({ erases: 1, writes: 1 });
  });
  it("ota_0 empty: boots ota_1 and records seq 2", () => {
    const chip = chipWith([null, img("1.0.0")]);
    expect(booted(boot(chip))).toBe(1);
    expect(entry(chip, 0)).toMatchObject({ seq: 2, name: "VALID" });
  });
  it("nothing bootable: a bricked result, not a throw, naming each slot's failure", () => {
    const bad = img("1.0.0");
    bad[100] ^= 1;
    const r = boot(chipWith([bad, null]));
    expect(r.kind).toBe("bricked");
    expect(r.kind === "bricked" && r.reason).toMatch(/ota_0: IMAGE_CHECKSUM.*ota_1: IMAGE_MAGIC/);
  });
});

describe("rollback transitions", () => {
  it("NEW -> PENDING_VERIFY on the first boot of the new slot; unconfirmed, the next boot ABORTs it and returns to the old slot", () => {
    const chip = chipWith([img("1.0.0"), img("2.0.0", { behavior: "fail-diagnostics" })]);
    setEntry(chip, 0, 1, OtaState.VALID);
    setEntry(chip, 1, 2, OtaState.NEW);
    const r1 = boot(chip);
    expect(booted(r1)).toBe(1);
    expect(r1.kind === "booted" && r1.behavior).toBe("fail-diagnostics");
    expect(entry(chip, 1)).toMatchObject({ seq: 2, name: "PENDING_VERIFY", crc: 0x55f63774 });
    const r2 = boot(chip);
    expect(booted(r2)).toBe(0);
    expect(entry(chip, 1).name).toBe("ABORTED");
    expect(entry(chip, 0).name).toBe("VALID");
    expect(booted(boot(chip))).toBe(0); // stays
  });
  it("a confirmed (VALID) entry boots with no otadata write", () => {
    const chip = chipWith([img("1.0.0"), img("2.0.0")]);
    setEntry(chip, 0, 1, OtaState.VALID);
    setEntry(chip, 1, 2, OtaState.VALID);
    chip.flash.resetStats();
    expect(booted(boot(chip))).toBe(1);
    expect(chip.flash.ops).toBe(0);
  });
  it("INVALID entries are skipped; an UNDEFINED state (rollback off in the writer) boots as is", () => {
    const chip = chipWith([img("1.0.0"), img("2.0.0")]);
    setEntry(chip, 0, 1, OtaState.VALID);
    setEntry(chip, 1, 2, OtaState.INVALID);
    expect(booted(boot(chip))).toBe(0);
    setEntry(chip, 1, 2, OtaState.UNDEFINED);
    expect(booted(boot(chip))).toBe(1);
    expect(entry(chip, 1).name).toBe("UNDEFINED");
  });
  it("a tie in seq goes to entry 0 (entry 1's NEW is then left alone)", () => {
    const chip = chipWith([img("1.0.0"), img("2.0.0")]);
    setEntry(chip, 0, 3, OtaState.VALID);
    setEntry(chip, 1, 3, OtaState.NEW);
    expect(booted(boot(chip))).toBe(0);
    expect(entry(chip, 1).name).toBe("NEW");
  });
  it("seq wraps over the slot count: seq 5 of 2 slots is ota_0; seq 3 of 3 slots is ota_2", () => {
    const two = chipWith([img("1.0.0"), img("2.0.0")]);
    setEntry(two, 0, 5, OtaState.VALID);
    setEntry(two, 1, 4, OtaState.VALID);
    expect(booted(boot(two))).toBe(0);
    const three = chipWith([img("1.0.0"), img("2.0.0"), img("3.0.0")], { slots: 3, slotSize: 256 * 1024 });
    setEntry(three, 1, 3, OtaState.VALID);
    expect(booted(boot(three))).toBe(2);
  });
  it("both sectors corrupt (bad CRCs): every slot is tried from ota_0 and otadata is left as it is", () => {
    const chip = chipWith([img("1.0.0"), img("2.0.0")]);
    setEntry(chip, 0, 2, OtaState.VALID, 0x12345678);
    setEntry(chip, 1, 3, OtaState.VALID, 0x9abcdef0);
    chip.flash.resetStats();
    expect(booted(boot(chip))).toBe(0);
    expect(chip.flash.ops).toBe(0);
    const r = boot(chipWith([null, img("2.0.0")]));
    expect(booted(r)).toBe(1);
  });
  it("a selected slot whose image does not validate falls back to the other", () => {
    const broken = img("2.0.0");
    broken[broken.length - 1] ^= 1; // appended SHA-256
    const chip = chipWith([img("1.0.0"), broken]);
    setEntry(chip, 0, 1, OtaState.VALID);
    setEntry(chip, 1, 2, OtaState.NEW);
    const r = boot(chip);
    expect(booted(r)).toBe(0);
    expect(r.log.join("\n")).toMatch(/ota_1 does not boot: IMAGE_HASH/);
  });
  it("an image for another chip is skipped (chip id check)", () => {
    const chip = chipWith([img("1.0.0"), img("2.0.0", { chipId: 5 })]);
    setEntry(chip, 0, 1, OtaState.VALID);
    setEntry(chip, 1, 2, OtaState.VALID);
    expect(booted(boot(chip))).toBe(0);
    expect(booted(boot(chip, { chipId: 5 }))).toBe(1);
  });
});

describe("anti-rollback (optional)", () => {
  it("skips a slot below the eFuse floor and raises the floor when a VALID entry boots", () => {
    const chip = chipWith([img("1.0.0", { secureVersion: 2 }), img("0.9.0", { secureVersion: 1 })]);
    setEntry(chip, 0, 1, OtaState.VALID);
    setEntry(chip, 1, 2, OtaState.VALID);
    expect(booted(boot(chip, { antiRollback: true }))).toBe(1); // floor 0: ota_1 (secure 1) boots and raises it to 1
    expect(chip.efuseSecureVersion).toBe(1);
    chip.raiseSecureVersion(2);
    chip.raiseSecureVersion(0); // never lowers
    expect(chip.efuseSecureVersion).toBe(2);
    expect(booted(boot(chip, { antiRollback: true }))).toBe(0);
    expect(booted(boot(chip))).toBe(1); // without the option, secure_version is not looked at
  });
});

describe("power cut inside the bootloader", () => {
  it("at every op of the NEW -> PENDING_VERIFY rewrite: the next boot boots one of the two images, never bricks", () => {
    for (let n = 1; n <= 2; n++) for (let seed = 1; seed <= 8; seed++) {
      const chip = chipWith([img("1.0.0"), img("2.0.0")]);
      setEntry(chip, 0, 1, OtaState.VALID);
      setEntry(chip, 1, 2, OtaState.NEW);
      const c = chip.clone(seed);
      c.flash.cutPowerAt(n);
      expect(() => boot(c)).toThrow(PowerCut);
      c.flash.powerOn();
      const r = boot(c);
      expect([0, 1]).toContain(booted(r));
    }
  });
  it("at every op of the first-boot otadata write: ota_0 still boots (a torn entry is left as IDF leaves it)", () => {
    const outcomes = new Set<string>();
    for (let n = 1; n <= 2; n++) for (let seed = 1; seed <= 8; seed++) {
      const c = chipWith([img("1.0.0")]);
      const d = c.clone(seed);
      d.flash.cutPowerAt(n);
      expect(() => boot(d)).toThrow(PowerCut);
      d.flash.powerOn();
      expect(booted(boot(d))).toBe(0);
      const e = entry(d, 0);
      // either the rewrite happened on this boot (erased before), or a torn entry with a bad CRC that the
      // bootloader does not treat as "initial": it tries every slot and leaves otadata alone
      outcomes.add(e.seq === 1 && e.name === "VALID" ? "rewritten" : e.crc !== encodeEntry(e.seq, 0).subarray(28).reduce((a, b, i) => a | (b << (8 * i)), 0) >>> 0 ? "torn" : "other");
      expect(booted(boot(d))).toBe(0);
    }
    expect(outcomes.has("other")).toBe(false);
  });
});
