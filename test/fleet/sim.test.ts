/*
 * The fleet simulator end to end: SimDevices (Node engine) on one virtual clock with the
 * controller, a real broker and the real HTTPS update host, seeded faults.
 * N is FLEET_SIM_DEVICES (default 1,000, the figure: about 30 s on a quiet 2-core
 * machine; FLEET_SIM_DEVICES=100 for a quick run). Scale figures (100 / 1,000 / 5,000) are
 * the bench's: `npm run bench -- --only fleet`.
 */
import { describe, it, expect } from "vitest";
import { runFleetSim } from "../../host-sim/lab/fleet-sim";
import { findMosquitto } from "../../backend/mqtt/broker";

const N = Number(process.env.FLEET_SIM_DEVICES ?? 1000);
const hasMosquitto = findMosquitto() !== undefined;

describe("fleet simulator", () => {
  it(`rolls a release out to ${N} devices through 5 % / 25 % / 100 % with seeded faults, losing no event`, async () => {
    const r = await runFleetSim({ devices: N, seed: 1, badHardwareShare: 0.1, flakyShare: 0.1, powerCutShare: 0.05 });
    console.log(`fleet sim ${N}: ${r.updated} updated, ${r.rolledBack} rolled back, ${r.realSeconds} s, ${r.devicesUpdatedPerSecond} devices/s, peak RSS ${r.peakRssMb} MB`);
    expect(r.release.status).toBe("done");
    expect(r.release.flagged).toBe(false);
    expect(r.events.lost).toBe(0);
    expect(r.events.gaps).toBe(0);
    // An event stored in the outbox just before a power cut reaches the log after the reboot
    // without the simulator having seen it: logged may exceed emitted, never fall short.
    expect(r.events.logged).toBeGreaterThanOrEqual(r.events.emitted);
    // A restart after an update waits (bounded) for its events' PUBACKs: only links cut by the
    // seeded faults make a device send an event twice (was ~7 per updated device).
    expect(r.events.duplicatesDropped).toBeLessThan(r.events.emitted * 0.05);
    // The outbox's redeliveries carry the same content: none is taken for a conflict, nothing parked.
    expect([r.events.conflicts, r.events.parked]).toEqual([0, 0]);
    // Every device on the good revision ends on the new version; the bad revision rolled back.
    expect(r.rolledBack).toBeGreaterThan(0);
    expect(r.updated + r.rolledBack).toBeGreaterThanOrEqual(N - r.failed);
    expect(r.final.totals["1.1.0"]).toBe(r.updated);
    expect(r.powerCuts).toBeGreaterThan(0);
    expect(r.linkDrops).toBeGreaterThan(0);
    // Staged: 5 % first, then 25 %, then everyone. A bad-revision device reports the new version
    // during its trial boot and the old one after the rollback, so the curve may dip by those.
    const series = r.timeline.map((t) => t.versions["1.1.0"] ?? 0);
    for (let i = 1; i < series.length; i++) expect(series[i]!).toBeGreaterThanOrEqual(series[i - 1]! - r.rolledBack);
    expect(series[series.length - 1]).toBe(r.updated);
    const at = (m: number) => Math.max(0, ...r.timeline.filter((t) => t.minute <= m).map((t) => t.versions["1.1.0"] ?? 0));
    expect(at(9)).toBeGreaterThan(0);
    expect(at(9)).toBeLessThan(N * 0.1);
    expect(at(19)).toBeGreaterThan(at(9));
    expect(at(19)).toBeLessThan(N * 0.35);
  }, 300_000);

  it("with 4 HTTPS connections for 60 devices, the others wait to connect without a timeout: the same outcome as ungated", async () => {
    const setup = { devices: 60, seed: 4, badHardwareShare: 0, flakyShare: 0.3, powerCutShare: 0, plan: "100:10m" };
    const gated = await runFleetSim({ ...setup, maxHttpConnections: 4 });
    const free = await runFleetSim(setup);
    expect(gated.httpWaitPeak).toBeGreaterThan(10); // they did queue
    expect(free.httpWaitPeak).toBe(0);
    expect(gated.linkDrops).toBeGreaterThan(0); // a dropped link gives its connection back too
    expect(gated.release.status).toBe("done");
    expect(gated.updated).toBeGreaterThan(55);
    // Waiting is the network's: no timeout, no extra failure (the seeded flaky links decide).
    expect([gated.updated, gated.failed, gated.linkDrops]).toEqual([free.updated, free.failed, free.linkDrops]);
    expect(gated.events.lost).toBe(0);
  }, 120_000);

  it("halts and flags a release whose failures pass the threshold", async () => {
    const r = await runFleetSim({ devices: 60, seed: 2, badHardwareShare: 0.5, flakyShare: 0, powerCutShare: 0, plan: "10:10m,50:10m,100:10m" });
    expect(r.release.status).toBe("halted");
    expect(r.release.flagged).toBe(true);
    expect(r.release.reason).toMatch(/failed or rolled back/);
    expect(r.updated).toBeLessThan(30);
    expect(r.events.lost).toBe(0);
  }, 120_000);

  it.skipIf(!hasMosquitto)("runs over mosquitto too (install: apt-get install -y mosquitto)", async () => {
    const r = await runFleetSim({ devices: 40, seed: 3, brokerKind: "mosquitto", plan: "20:10m,100:10m" });
    expect(r.release.status).toBe("done");
    expect(r.events.lost).toBe(0);
  }, 120_000);
});
