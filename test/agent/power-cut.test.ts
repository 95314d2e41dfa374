/*
 * Power cut at EVERY flash operation of a whole update, from the first download write through
 * install, reboot, the bootloader's otadata writes, the self-test and the commit (NVS writes
 * of the journal and the outbox included): a sweep over op 1..N, not a sample.
 * Invariants after power returns: the device boots a valid image (never bricked), and it
 * either completes the update (1.1.0 running, its otadata entry VALID, committed reported) or
 * stays on the old image (1.0.0 running from an untouched app0).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scenarios, runScenario, Lab, type Scenario } from "../../host-sim/lab/scenarios";
import { createNodeEngine } from "../../host-sim/engines/engine-node";

let lab: Lab;
const engine = createNodeEngine();
beforeAll(async () => { lab = await Lab.create(); });
afterAll(async () => { await lab.close(); });

// A small image keeps the sweep short; the journal checkpoint every 8 KB puts several resume points in it.
const base = scenarios.find((s) => s.name === "happy")!;
const sweep: Scenario = {
  ...base,
  name: "sweep",
  releases: [{ image: { version: "1.1.0", secureVersion: 1, size: 24 * 1024 } }],
  config: { download: { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 5000, journalEveryBytes: 8192 } },
};

describe("power cut at every flash operation", () => {
  it("completes or stays on the old image, never bricked", async () => {
    const clean = await runScenario(sweep, engine, lab);
    expect(clean.final).toBe("committed");
    const total = clean.flashOps;
    expect(total).toBeGreaterThan(20);
    const ends = { updated: 0, stayed: 0 };
    for (let n = 1; n <= total; n++) {
      const o = await runScenario(sweep, engine, lab, { powerCutAt: n });
      const where = `cut at op ${n}/${total}: boots ${o.bootVersions.join(",")}; ${o.events.filter((e) => e[0] !== "downloading").map((e) => `${e[0]}${e[1] ? ` ${e[1]}` : ""}`).join(", ")}`;
      expect(o.bricked, where).toBe(false);
      expect(o.cutHappened, where).toBe(true);
      if (o.running!.version === "1.1.0") {
        ends.updated++;
        expect(o.final, where).toBe("committed");
        expect(o.otadata.some((e) => e.state === "VALID"), where).toBe(true);
      } else {
        ends.stayed++;
        expect(o.running!.version, where).toBe("1.0.0");
        expect(o.sha256.app0, where).toBe(o.factoryApp0);
      }
      for (const v of o.bootVersions) expect(["1.0.0", "1.1.0"], where).toContain(v);
    }
    expect(ends.updated + ends.stayed).toBe(total);
    // Both ends occur: a cut before the switch resumes and completes; a cut during the self-test
    // counts as a failed boot (as on ESP-IDF: PENDING_VERIFY -> ABORTED) and the old image stays.
    expect(ends.updated).toBeGreaterThan(0);
    expect(ends.stayed).toBeGreaterThan(0);
    console.log(`power-cut sweep: ${total} flash operations, ${ends.updated} completed the update, ${ends.stayed} stayed on 1.0.0`);
  });

  it("during a rollback too: a failing image always ends with the old image running and the rollback reported", async () => {
    const failing: Scenario = { ...sweep, name: "sweep-rollback", releases: [{ image: { version: "1.1.0", secureVersion: 1, size: 24 * 1024, behavior: "fail-diagnostics" } }] };
    const clean = await runScenario(failing, engine, lab);
    expect(clean.final).toBe("rolled-back");
    const total = clean.flashOps;
    for (let n = 1; n <= total; n++) {
      const o = await runScenario(failing, engine, lab, { powerCutAt: n });
      const where = `cut at op ${n}/${total}: boots ${o.bootVersions.join(",")}; ${o.events.filter((e) => e[0] !== "downloading").map((e) => `${e[0]}${e[1] ? ` ${e[1]}` : ""}`).join(", ")}`;
      expect(o.bricked, where).toBe(false);
      expect(o.cutHappened, where).toBe(true);
      expect(o.running!.version, where).toBe("1.0.0");
      expect(o.sha256.app0, where).toBe(o.factoryApp0);
      expect(o.final, where).toBe("rolled-back");
    }
  });

  it("of a delta update: completes or stays, and a cut costs at most the patch again, never the full image", async () => {
    const delta: Scenario = {
      ...sweep, name: "sweep-delta", factory: { version: "1.0.0", secureVersion: 1, size: 24 * 1024 }, delta: {},
    };
    const clean = await runScenario(delta, engine, lab);
    expect(clean.final).toBe("committed");
    const total = clean.flashOps;
    const patchBytes = (run: number) => lab.host.stats.log.filter((r) => r.path.startsWith(`/sweep-delta/${run}/`) && r.path.includes("/patch-"));
    const runs = () => Number(/\/sweep-delta\/(\d+)\//.exec(lab.host.stats.log.filter((r) => r.path.startsWith("/sweep-delta/")).at(-1)!.path)![1]);
    const patchSize = patchBytes(runs()).reduce((n, r) => n + r.bytes, 0);
    expect(patchSize).toBeGreaterThan(0);
    const ends = { updated: 0, stayed: 0 };
    for (let n = 1; n <= total; n++) {
      const o = await runScenario(delta, engine, lab, { powerCutAt: n });
      const where = `cut at op ${n}/${total}: boots ${o.bootVersions.join(",")}; ${o.events.filter((e) => e[0] !== "downloading").map((e) => `${e[0]}${e[1] ? ` ${e[1]}` : ""}`).join(", ")}`;
      expect(o.bricked, where).toBe(false);
      expect(o.cutHappened, where).toBe(true);
      if (o.running!.version === "1.1.0") {
        ends.updated++;
        expect(o.final, where).toBe("committed");
      } else {
        ends.stayed++;
        expect(o.running!.version, where).toBe("1.0.0");
        expect(o.sha256.app0, where).toBe(o.factoryApp0);
      }
      const log = lab.host.stats.log.filter((r) => r.path.startsWith(`/sweep-delta/${runs()}/`));
      expect(log.filter((r) => r.path.includes("/fw-")), where).toEqual([]);
      expect(log.filter((r) => r.path.includes("/patch-")).reduce((k, r) => k + r.bytes, 0), where).toBeLessThanOrEqual(2 * patchSize);
    }
    expect(ends.updated).toBeGreaterThan(0);
    expect(ends.stayed).toBeGreaterThan(0);
    console.log(`power-cut sweep (delta): ${total} flash operations, ${ends.updated} completed the update, ${ends.stayed} stayed on 1.0.0; patch ${patchSize} bytes`);
  });

  it("of a bad patch and the full image after it: completes or stays, the patch asked for at most twice", async () => {
    const bad: Scenario = {
      ...sweep, name: "sweep-delta-fallback", factory: { version: "1.0.0", secureVersion: 1, size: 24 * 1024 }, delta: { transform: (p) => p.subarray(0, p.length - 100) },
    };
    const clean = await runScenario(bad, engine, lab);
    expect(clean.final).toBe("committed");
    expect(clean.events.some((e) => e[1] === "DELTA_TRUNCATED")).toBe(true);
    const total = clean.flashOps;
    for (let n = 1; n <= total; n++) {
      const o = await runScenario(bad, engine, lab, { powerCutAt: n });
      const where = `cut at op ${n}/${total}: boots ${o.bootVersions.join(",")}; ${o.events.filter((e) => e[0] !== "downloading" || e[1]).map((e) => `${e[0]}${e[1] ? ` ${e[1]}` : ""}`).join(", ")}`;
      expect(o.bricked, where).toBe(false);
      if (o.running!.version === "1.1.0") expect(o.final, where).toBe("committed");
      else expect(o.sha256.app0, where).toBe(o.factoryApp0);
      const run = /\/sweep-delta-fallback\/(\d+)\//.exec(lab.host.stats.log.filter((r) => r.path.startsWith("/sweep-delta-fallback/")).at(-1)!.path)![1];
      expect(lab.host.stats.log.filter((r) => r.path.startsWith(`/sweep-delta-fallback/${run}/`) && r.path.includes("/patch-")).length, where).toBeLessThanOrEqual(2);
    }
  });
});
