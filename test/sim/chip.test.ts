import { describe, it, expect } from "vitest";
import { mkdtempSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimChip } from "../../host-sim/chip/chip";
import { buildImage } from "../../host-sim/chip/image-builder";
import { decodeEntry, encodeEntry, OtaState } from "../../modules/otadata";
import { encodeEntryRaw, entryInvalid, entryInitial } from "../../host-sim/chip/otadata-model";
import { codeOf } from "../codes";

describe("SimChip", () => {
  it("a new chip holds the partition table at 0x8000 and nothing else", () => {
    const chip = SimChip.create({});
    const b = new Uint8Array(2);
    chip.flash.read(0x8000, b);
    expect([...b]).toEqual([0xaa, 0x50]);
    expect(chip.flash.usedSectors).toBe(1);
    expect(chip.flash.ops).toBe(0);
  });
  it("FlashPort resolves labels as Moddable does", () => {
    const chip = SimChip.create({});
    const port = chip.flashPort(1);
    expect(port.slots()).toEqual({ count: 2, running: 1, next: 0 });
    expect(port.open("running").byteLength).toBe(1536 * 1024);
    expect((port.open("nextota") as unknown as { offset: number }).offset).toBe(0x10000);
    expect((port.open("running") as unknown as { offset: number }).offset).toBe(0x190000);
    expect(port.open("otadata").byteLength).toBe(8192);
    expect(port.open("nvs").blockSize).toBe(4096);
    expect(codeOf(() => port.open("app0"))).toBe("FLASH_NO_PARTITION"); // app partitions only via running/nextota
    expect(codeOf(() => port.open("coredump"))).toBe("FLASH_NO_PARTITION");
    expect(() => chip.flashPort(2)).toThrow(RangeError);
  });
  it("partitions are bounds-checked relative to themselves and land at the right chip offsets", () => {
    const chip = SimChip.create({});
    const nvs = chip.partition("nvs");
    expect(codeOf(() => nvs.write(20 * 1024 - 1, new Uint8Array(2)))).toBe("FLASH_OUT_OF_BOUNDS");
    expect(codeOf(() => nvs.eraseBlock(5))).toBe("FLASH_OUT_OF_BOUNDS");
    expect(codeOf(() => nvs.read(-4, new Uint8Array(1)))).toBe("FLASH_OUT_OF_BOUNDS");
    chip.partition("otadata").write(4096, Uint8Array.of(0x12));
    const b = new Uint8Array(1);
    chip.flash.read(0xe000 + 4096, b);
    expect(b[0]).toBe(0x12);
    chip.partition("otadata").eraseBlock(1);
    expect(chip.flash.sectorErases[(0xe000 + 4096) / 4096]).toBe(1);
  });
  it("geometries other than partitions.csv", () => {
    const chip = SimChip.create({ geometry: { slots: 3, slotSize: 512 * 1024 }, flashSize: 2 * 1024 * 1024 });
    expect(chip.slotCount).toBe(3);
    expect(chip.flashPort(2).slots()).toEqual({ count: 3, running: 2, next: 0 });
    expect(codeOf(() => SimChip.create({ geometry: { slots: 3 }, flashSize: 2 * 1024 * 1024 }))).toBe("PTABLE_TOO_LARGE");
    expect(SimChip.create({ table: "nvs,data,nvs,0x9000,0x4000\notadata,data,ota,,0x2000\na,app,ota_0,,64K\n", flashSize: 1024 * 1024 }).slotCount).toBe(1);
  });
  it("save/load: same bytes, same table, same eFuse floor and chip id", () => {
    const dir = mkdtempSync(join(tmpdir(), "xsota-chip-"));
    const chip = SimChip.create({ chipId: 0, efuseSecureVersion: 3 });
    chip.installImage(0, buildImage({ version: "1.2.3" }));
    chip.store().set("a", "b", "c");
    chip.save(join(dir, "f.bin"));
    expect(existsSync(join(dir, "f.bin.chip.json"))).toBe(true);
    const back = SimChip.load(join(dir, "f.bin"));
    expect(back.efuseSecureVersion).toBe(3);
    expect(back.table.entries.map((e) => e.name)).toEqual(["nvs", "otadata", "app0", "app1"]);
    expect(back.store().get("a", "b")).toBe("c");
    expect(Buffer.from(back.flash.toBytes()).equals(Buffer.from(chip.flash.toBytes()))).toBe(true);
    expect(codeOf(() => chip.installImage(0, new Uint8Array(2 * 1024 * 1024)))).toBe("IMAGE_TOO_LARGE");
  });
  it("1,000 clones of a chip with a 1 MB image cost little (copy-on-write sectors), and write independently", () => {
    const template = SimChip.create({});
    template.installImage(0, buildImage({ version: "1.0.0", size: 1024 * 1024 }));
    const before = process.memoryUsage().arrayBuffers;
    const fleet = Array.from({ length: 1000 }, (_, i) => template.clone(i));
    const perChip = (process.memoryUsage().arrayBuffers - before) / fleet.length;
    expect(perChip).toBeLessThan(64 * 1024);
    expect(fleet[999]!.flash.usedSectors).toBe(template.flash.usedSectors);
    fleet[1]!.slot(0).eraseBlock(0);
    fleet[2]!.slot(0).write(5000, new Uint8Array(8));
    const a = new Uint8Array(1), b = new Uint8Array(1), c = new Uint8Array(1), d = new Uint8Array(1);
    template.slot(0).read(0, a); fleet[1]!.slot(0).read(0, b); fleet[3]!.slot(0).read(5000, c); fleet[2]!.slot(0).read(5000, d);
    expect([a[0], b[0], c[0] !== 0, d[0]]).toEqual([0xe9, 0xff, true, 0]);
  });
});

describe("otadata additions", () => {
  it("encodeEntryRaw keeps label and CRC as read (the bootloader's rewrite)", () => {
    const b = encodeEntry(7, OtaState.NEW);
    b[5] = 0x42;
    const e = decodeEntry(b);
    expect([...encodeEntryRaw({ ...e, state: OtaState.PENDING_VERIFY })]).toEqual([...b.subarray(0, 24), 1, 0, 0, 0, ...b.subarray(28)]);
  });
  it("invalid vs initial, as bootloader_common_ota_select_invalid and the initial-contents check", () => {
    const erased = decodeEntry(new Uint8Array(32).fill(0xff));
    const badCrc = { ...decodeEntry(encodeEntry(2, OtaState.VALID)), crc: 1 };
    const aborted = decodeEntry(encodeEntry(2, OtaState.ABORTED));
    expect([entryInvalid(erased), entryInitial(erased)]).toEqual([true, true]);
    expect([entryInvalid(badCrc), entryInitial(badCrc)]).toEqual([false, true]);
    expect([entryInvalid(aborted), entryInitial(aborted)]).toEqual([true, false]);
  });
});
