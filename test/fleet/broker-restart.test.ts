/*
 * The deployment shape: mosquitto as a process of its own and the audit log in PostgreSQL, a
 * simulated fleet (SimDevices, real HTTPS host, seeded faults) through a staged rollout, and the
 * broker restarted in the middle of it. The controller's persistent session (clean=false, fixed
 * client id, QoS 1 subscriptions) gets what devices published while it was reconnecting; the
 * retained version topics come back from mosquitto's persistence file; no audit event is lost.
 * Skipped with the reason when mosquitto or PostgreSQL is not installed.
 */
import { describe, it, expect } from "vitest";
import { FleetSim } from "../../host-sim/lab/fleet-sim";
import { findMosquitto, type Broker } from "../../backend/mqtt/broker";
import { subscribe, realWait } from "./helpers";
import { noPostgres, usePg, waitFor } from "./pg";

const pg = usePg();
const N = 40;
const why = findMosquitto() === undefined ? "mosquitto is not installed (apt-get install -y mosquitto)" : noPostgres;

/** What a fresh subscriber to devices/+/version gets: the retained version of each device. */
async function retainedVersions(broker: Broker, name: string, n: number): Promise<Map<string, string>> {
  const s = subscribe(broker, name, ["devices/+/version"]);
  await s.ready;
  try {
    await realWait(() => new Set(s.messages.map((m) => m.topic)).size >= n, 10_000);
  } finally {
    s.client.close();
  }
  return new Map(s.messages.map((m) => [m.topic.split("/")[1]!, m.payload]));
}

describe.skipIf(why !== undefined)(`fleet on mosquitto and PostgreSQL${why ? ` (skipped: ${why})` : ""}`, () => {
  it(`a broker restart mid-rollout loses no audit event; retained versions survive it (${N} devices)`, async () => {
    const sim = await FleetSim.create({ devices: N, seed: 5, brokerKind: "mosquitto", dbPath: await pg.fresh(), badHardwareShare: 0.1, flakyShare: 0.05, powerCutShare: 0.05, maxRealMs: 200_000,
      thresholds: { minFailures: N }, // the rolled-back bad revision must not halt it: this test is about the broker
    });
    try {
      expect(sim.log.kind).toBe("postgres");
      await sim.boot();
      const v0 = sim.clock.wallTime();
      const t0 = performance.now();
      const id = "thermo-1.1.0-brokerrestart";
      const rollout = sim.rollout("1.1.0", "10:10m,50:10m,100:10m", { rolloutId: id });
      // In stage 2, while devices download, install and report: the broker goes away.
      await waitFor(async () => ((await sim.log.release(id))?.stage ?? 0) >= 1, 60_000);
      const receivedBefore = sim.controller.received;
      await sim.broker.stop();
      await realWait(() => !sim.controller.isConnected, 5000);
      await new Promise((r) => setTimeout(r, 300));
      await sim.broker.start();
      const retained = await retainedVersions(sim.broker, "check-1", N);
      expect([...retained.keys()].sort()).toEqual([...sim.ids].sort());
      for (const v of retained.values()) expect(["1.0.0", "1.1.0"]).toContain(v);
      const done = await rollout;
      const report = await sim.report(done, v0, (performance.now() - t0) / 1000);
      expect(sim.controller.received).toBeGreaterThan(receivedBefore);
      expect(report.release.status).toBe("done");
      expect(report.events.lost).toBe(0);
      expect(report.events.gaps).toBe(0);
      expect(report.events.logged).toBeGreaterThanOrEqual(report.events.emitted);
      expect(report.updated + report.rolledBack + report.failed).toBeGreaterThanOrEqual(N - 2);
      // Settled: a second restart, and what the broker kept for each device is what it runs.
      await sim.broker.stop();
      await sim.broker.start();
      const after = await retainedVersions(sim.broker, "check-2", N);
      sim.ids.forEach((d, i) => expect(after.get(d), d).toBe(sim.devices[i]!.running?.version));
      const logged = new Map((await sim.log.devices()).map((d) => [d.id, d.version]));
      sim.ids.forEach((d) => expect(logged.get(d), d).toBe(after.get(d)));
    } finally {
      await sim.close();
    }
  }, 240_000); // about 10 s on a quiet machine; a loaded one stretches the real I/O waits
});
