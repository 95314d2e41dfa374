/* The fleet simulator with every device's firmware in the real XS engine (one engine, one worker per boot). */
import { describe, it, expect } from "vitest";
import { runFleetSim } from "../../host-sim/lab/fleet-sim";
import { createXsEngine } from "../../host-sim/engines/xs/engine";

describe("fleet simulator in the XS engine", () => {
  it("rolls a release out to 8 XS devices; the bad revision rolls back; no event lost", async () => {
    const engine = createXsEngine();
    try {
      const r = await runFleetSim({ devices: 8, seed: 5, engine, plan: "50:10m,100:10m", quietMs: 500 });
      expect(r.release.status).toBe("done");
      expect(r.events.lost).toBe(0);
      expect(r.rolledBack).toBeGreaterThan(0);
      expect(r.updated + r.rolledBack).toBe(8);
      expect(r.final.totals["1.1.0"]).toBe(r.updated);
    } finally {
      await engine.close();
    }
  }, 120_000);
});
