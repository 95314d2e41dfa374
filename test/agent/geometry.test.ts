/*
 * The same scenarios on another flash layout (SIM's generated geometry): three 512 KB app
 * slots and a 12 KB NVS (IDF's minimum; with a journal write per 4 KB block the log compacts during the update). Slots rotate 0 -> 1 -> 2, and a
 * power cut at every flash operation still ends committed or on the old image.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scenarios, runScenario, checkOutcome, Lab, type Scenario } from "../../host-sim/lab/scenarios";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import type { SimChip } from "../../host-sim/chip/chip";

let lab: Lab;
const engine = createNodeEngine();
const geometry = { slots: 3, slotSize: 512 * 1024, nvsSize: 12 * 1024 };
beforeAll(async () => { lab = await Lab.create(); });
afterAll(async () => { await lab.close(); });

const pick = (name: string) => scenarios.find((s) => s.name === name)!;

describe("three 512 KB slots, 12 KB NVS", () => {
  it.each(["happy", "rollback-fail-diagnostics", "rollback-crash", "cuts", "ignore-range", "tampered-image"])("%s", async (name) => {
    const s = pick(name);
    const o = await runScenario(s, engine, lab, { geometry });
    expect(checkOutcome(s, o, o.factoryApp0)).toEqual([]);
  });

  it("updates rotate through the slots with a growing seq", async () => {
    const s: Scenario = { ...pick("second-update"), name: "three-updates", releases: [{ image: { version: "1.1.0" } }, { image: { version: "1.2.0" } }, { image: { version: "1.3.0" } }], expect: { version: "1.3.0", final: "committed" } };
    const o = await runScenario(s, engine, lab, { geometry });
    expect(checkOutcome(s, o)).toEqual([]);
    expect(o.bootVersions).toEqual(["1.0.0", "1.1.0", "1.1.0", "1.2.0", "1.2.0", "1.3.0"]);
    expect(o.running).toEqual({ version: "1.3.0", slot: 0 });
    expect(Math.max(...o.otadata.map((e) => e.seq))).toBe(4);
  });

  it("an image larger than a 512 KB slot is refused", async () => {
    const s: Scenario = { ...pick("happy"), name: "too-big-for-slot", releases: [{ image: { version: "1.1.0", size: 600 * 1024 } }], expect: { version: "1.0.0", final: "refused", code: "IMAGE_TOO_LARGE", app0Untouched: true } };
    const o = await runScenario(s, engine, lab, { geometry });
    expect(checkOutcome(s, o, o.factoryApp0)).toEqual([]);
  });

  it("power cut at every flash operation (small NVS: its compaction inside the sweep)", async () => {
    const s: Scenario = { ...pick("happy"), name: "geo-sweep", releases: [{ image: { version: "1.1.0", size: 24 * 1024 } }], config: { download: { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 5000, journalEveryBytes: 8192 } } };
    // The application's own 4.5 KB of preferences: the update's records overflow the log and compact it.
    const prepare = (chip: SimChip) => { for (let i = 0; i < 3; i++) chip.store().set("app", `blob${i}`, "x".repeat(1500)); };
    const clean = await runScenario(s, engine, lab, { geometry, prepare });
    expect(clean.final).toBe("committed");
    expect(clean.nvsCompactions).toBeGreaterThan(0);
    for (let n = 1; n <= clean.flashOps; n++) {
      const o = await runScenario(s, engine, lab, { geometry, prepare, powerCutAt: n });
      const where = `cut at op ${n}/${clean.flashOps}: boots ${o.bootVersions.join(",")}`;
      expect(o.bricked, where).toBe(false);
      expect(o.cutHappened, where).toBe(true);
      if (o.running!.version === "1.1.0") expect(o.final, where).toBe("committed");
      else {
        expect(o.running!.version, where).toBe("1.0.0");
        expect(o.sha256.app0, where).toBe(o.factoryApp0);
      }
    }
  });
});
