/*
 * Pre-encrypted releases (issue 31) on a simulated device, Node engine: real HTTPS on loopback,
 * SIM's chip and bootloader, virtual time; the scenarios are in encrypted-scenarios.ts (also run
 * in XS by test/xs/encrypted.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runScenario, checkOutcome, Lab, type Outcome } from "../../host-sim/lab/scenarios";
import { createNodeEngine } from "../../host-sim/engines/engine-node";
import { encScenarios } from "./encrypted-scenarios";

let lab: Lab;
const engine = createNodeEngine();
const outcomes = new Map<string, Outcome>();
beforeAll(async () => { lab = await Lab.create(); });
afterAll(async () => { await lab.close(); });

describe("encrypted releases (node engine)", () => {
  for (const s of encScenarios) {
    it(`${s.name}: ${s.summary}`, async () => {
      const o = await runScenario(s, engine, lab);
      outcomes.set(s.name, o);
      expect(checkOutcome(s, o, o.factoryApp0)).toEqual([]);
    });
  }
});

describe("what they show beyond the final state", () => {
  const requests = (name: string) => lab.host.stats.log.filter((r) => r.path.startsWith(`/${name}/`) && r.path.includes("/fw-"));

  it("Espressif's RSA file: the new image runs from the other slot, the old one was never touched", () => {
    expect(outcomes.get("enc-esp-rsa")!.running).toEqual({ version: "2.0.0", slot: 1 });
  });

  it("a cut restarts the file from byte 0: two requests, no Range", () => {
    const r = requests("enc-ours-cut");
    expect(r.length).toBe(2);
    expect(r.every((x) => x.range === undefined)).toBe(true);
  });

  it("no device key: nothing fetched; a wrong key, a bad tag, a bad size: one request each, not retried", () => {
    expect(requests("enc-no-key").length).toBe(0);
    for (const name of ["enc-wrong-rsa", "enc-wrong-ecc", "enc-bad-tag", "enc-truncated", "enc-oversized", "enc-bad-magic"]) expect([name, requests(name).length]).toEqual([name, 1]);
  });
});

describe("power cut at every flash operation of an encrypted update (24 KB image)", () => {
  it("completes or stays on the old image, never bricked; a cut during the download or verification ends committed after the reboot", async () => {
    const base = encScenarios.find((s) => s.name === "enc-ours-rsa")!;
    const sweep = { ...base, name: "enc-sweep", releases: [{ ...base.releases[0]!, image: { version: "1.1.0", secureVersion: 1, size: 24 * 1024 } }] };
    const clean = await runScenario(sweep, engine, lab);
    expect(clean.final).toBe("committed");
    const total = clean.flashOps;
    const ends = { updated: 0, stayed: 0 };
    for (let n = 1; n <= total; n++) {
      const o = await runScenario(sweep, engine, lab, { powerCutAt: n });
      const where = `cut at op ${n}/${total}: ${o.events.filter((e) => e[0] !== "downloading").map((e) => `${e[0]}${e[1] ? ` ${e[1]}` : ""}`).join(", ")}`;
      expect(o.bricked, where).toBe(false);
      expect(o.cutHappened, where).toBe(true);
      if (o.running!.version === "1.1.0") {
        ends.updated++;
        expect(o.final, where).toBe("committed");
      } else {
        ends.stayed++;
        expect(o.sha256.app0, where).toBe(o.factoryApp0);
        // only a cut during the new image's trial boot (after the boot slot changed) rolls back, as for a plain image
        expect([o.final, o.code, o.events.some((e) => e[0] === "rebooting")], where).toEqual(["rolled-back", "ROLLBACK_BOOT", true]);
      }
    }
    // every cut before the boot slot changes (download, decryption, verification) ends committed
    expect(ends.updated).toBeGreaterThan(total * 0.7);
  });
});
