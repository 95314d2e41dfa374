/*
 * The agent's NVS domains are namespaced ("xsota", "xsota.ctl", "xsota.outbox", "xsota.rep"), and a
 * device updated from firmware that used "ota", "ctl", "outbox" and "reporter" keeps its journal,
 * floor, bad list, replay guard and outbox: on the simulated chip's byte-level NVS, through a
 * power cut at every flash operation of the migration, and through a rollback to the old firmware.
 */
import { describe, expect, it } from "vitest";
import { SimChip } from "../../host-sim/chip/chip";
import { PowerCut } from "../../host-sim/chip/flash";
import { JournalStore, type Journal } from "../../modules/journal";
import { Outbox } from "../../modules/outbox";
import { holdForInstall } from "../../modules/control";
import { DOMAINS, LEGACY_DOMAINS, moveDomain, adoptLegacy } from "../../modules/nvs-domains";
import type { StorePort } from "../../modules/ports";

const SHA_BAD = "ab".repeat(32);
const SHA_NEW = "cd".repeat(32);

function journal(phase: Journal["phase"], to = "1.1.0"): Journal {
  return { phase, from: "1.0.0", fromSlot: 0, to, secureVersion: 2, sha256: SHA_NEW, size: 8192, url: "https://h/fw.bin", targetSlot: 1, written: 8192 };
}

/** What firmware before the namespacing left in NVS while it installed 1.1.0, plus an app's own domain. */
function oldFirmware(store: StorePort): void {
  store.set("ota", "journal", JSON.stringify(journal("rebooting")));
  store.set("ota", "floor", 3);
  store.set("ota", "floor2", 3);
  store.set("ota", "bad", JSON.stringify([SHA_BAD.slice(0, 32)]));
  store.set("ota", "tries", `${SHA_NEW}:2`);
  store.set("ctl", "issued", "1700000000000");
  store.set("ctl", "hold", 1);
  store.set("outbox", "e1", JSON.stringify({ seq: 1, time: 0, uptime: 0, state: "checking", from: "1.0.0" }));
  store.set("outbox", "e2", JSON.stringify({ seq: 2, time: 0, uptime: 0, state: "downloading", from: "1.0.0", progress: 50 }));
  store.set("outbox", "next", 3);
  store.set("reporter", "last", JSON.stringify({ version: "1.0.0" }));
  store.set("reporter", "ann", "abc");
  store.set("app", "ota", "the app's own");
}

/** Open everything the agent opens at boot, in the Agent's order (outbox first). */
function open(store: StorePort): { journal: JournalStore; outbox: Outbox } {
  const outbox = new Outbox(store, { capacity: 8 });
  const journalStore = new JournalStore(store);
  moveDomain(store, LEGACY_DOMAINS.reporter, DOMAINS.reporter); // startReporter's open
  return { journal: journalStore, outbox };
}

function expectKept(store: StorePort, j: JournalStore, o: Outbox): void {
  expect(j.load().journal?.phase).toBe("rebooting");
  expect(j.floor()).toBe(3);
  expect(j.isBad(SHA_BAD)).toBe(true);
  expect(j.tries(SHA_NEW)).toBe(2);
  expect(holdForInstall(store)).toBe(true);
  expect(store.get(DOMAINS.control, "issued")).toBe("1700000000000");
  expect(o.pending().map((e) => e.seq)).toEqual([1, 2]);
  expect(o.nextSeq).toBe(3);
  expect(store.get(DOMAINS.reporter, "last")).toBe(JSON.stringify({ version: "1.0.0" }));
  expect(store.get(DOMAINS.reporter, "ann")).toBe("abc");
  expect(store.get("app", "ota")).toBe("the app's own");
}

describe("namespaced NVS domains", () => {
  it("every domain starts with xsota and fits Preference's 15 characters", () => {
    for (const d of Object.values(DOMAINS)) {
      expect(d.startsWith("xsota")).toBe(true);
      expect(d.length).toBeLessThanOrEqual(15);
    }
  });

  it("a fresh device writes nothing for the migration", () => {
    const chip = SimChip.create({});
    const ops = chip.flash.ops;
    open(chip.store());
    open(chip.store());
    expect(chip.flash.ops).toBe(ops);
  });

  it("takes the old firmware's journal, floor, bad list, tries, control and outbox; moves outbox and reporter, keeps ota and ctl until the commit", () => {
    const chip = SimChip.create({});
    const store = chip.store();
    oldFirmware(store);
    const { journal: j, outbox: o } = open(store);
    expectKept(store, j, o);
    expect(store.keys("outbox")).toEqual([]);
    expect(store.keys("reporter")).toEqual([]);
    expect(store.keys("ota").sort()).toEqual(["bad", "floor", "floor2", "journal", "tries"]);
    expect(store.keys("ctl").sort()).toEqual(["hold", "issued"]);
    // A second open (the agent after src/boot-deadline's) does not undo what this image wrote.
    j.save(journal("confirming"));
    j.raiseFloor(4);
    const again = open(store);
    expect(again.journal.load().journal?.phase).toBe("confirming");
    expect(again.journal.floor()).toBe(4);
    // Committed: the old domains go, the app's stays.
    again.journal.save(journal("committed"));
    expect([store.keys("ota"), store.keys("ctl")]).toEqual([[], []]);
    expect(store.get("app", "ota")).toBe("the app's own");
    const ops = chip.flash.ops;
    const after = open(store);
    expect(chip.flash.ops).toBe(ops); // nothing more to do, ever
    expect(after.journal.load().journal?.phase).toBe("committed");
    expect(after.journal.floor()).toBe(4);
  });

  it("a rollback to the old firmware finds its journal; what it writes then is taken by the next namespaced image", () => {
    const store = SimChip.create({}).store();
    oldFirmware(store);
    const first = open(store).journal;
    first.save({ ...journal("failed"), code: "CONFIRM_DIAGNOSTICS" }); // the new image fails its self-test
    // The old firmware boots again: its journal is where it left it; it reports the rollback,
    // marks 1.1.0 bad, and later installs 1.2.0.
    expect(JSON.parse(store.get("ota", "journal") as string).phase).toBe("rebooting");
    store.set("ota", "bad", JSON.stringify([SHA_BAD.slice(0, 32), SHA_NEW.slice(0, 32)]));
    store.set("ota", "journal", JSON.stringify(journal("rebooting", "1.2.0")));
    store.set("ctl", "issued", "1700000009999");
    const next = open(store).journal;
    expect(next.load().journal?.to).toBe("1.2.0");
    expect(next.isBad(SHA_NEW)).toBe(true);
    expect(store.get(DOMAINS.control, "issued")).toBe("1700000009999");
  });

  it("a copy never lowers the anti-rollback floor", () => {
    const store = SimChip.create({}).store();
    store.set(DOMAINS.journal, "floor", 7);
    store.set(DOMAINS.journal, "floor2", 7);
    store.set("ota", "journal", JSON.stringify(journal("rebooting")));
    store.set("ota", "floor", 3);
    expect(adoptLegacy(store)).toBe(1);
    expect(new JournalStore(store).floor()).toBe(7);
  });

  describe("a power cut at every flash operation of the migration", () => {
    const base = SimChip.create({ geometry: { nvsSize: 16 * 1024 } });
    oldFirmware(base.store());
    const total = (() => {
      const c = base.clone();
      const ops = c.flash.ops;
      open(c.store());
      return c.flash.ops - ops;
    })();
    it("and of the commit that drops the old domains: the floor never goes back to the old one", () => {
      const adopted = base.clone();
      const j = open(adopted.store()).journal;
      j.raiseFloor(5);
      const ops = adopted.flash.ops;
      j.save(journal("committed"));
      const cuts = adopted.flash.ops - ops;
      expect(cuts).toBeGreaterThan(5);
      for (let n = 1; n <= cuts; n++) {
        const chip = base.clone(n);
        const jj = open(chip.store()).journal;
        jj.raiseFloor(5);
        chip.flash.cutPowerAt(n);
        expect(() => jj.save(journal("committed")), `cut at op ${n}`).toThrow(PowerCut);
        chip.flash.powerOn();
        const again = open(chip.store()).journal;
        expect(again.floor(), `cut at op ${n}`).toBe(5);
        again.save(journal("committed"));
        expect([chip.store().keys("ota"), chip.store().keys("ctl")]).toEqual([[], []]);
        expect(open(chip.store()).journal.floor()).toBe(5);
      }
    });
    it(`loses nothing (${total} cut points)`, () => {
      expect(total).toBeGreaterThan(10);
      for (let n = 1; n <= total; n++) {
        const chip = base.clone(n);
        chip.flash.cutPowerAt(n);
        expect(() => open(chip.store()), `cut at op ${n}`).toThrow(PowerCut);
        chip.flash.powerOn();
        const { journal: j, outbox: o } = open(chip.store());
        expectKept(chip.store(), j, o);
      }
    });
  });
});
