/*
 * One fleet-scale run in its own process (so peak memory belongs to this size alone), started
 * by bench/fleet.ts: `node --import tsx bench/fleet-child.ts <devices> <seed> <maxRealMs> [plan] [aedes|mosquitto] [db]`
 * (plan default "100:30m": the whole fleet at once, the stage held 30 virtual minutes; db: a
 * postgres:// URL, default a SQLite file in the sim's temp dir).
 * Prints one line `@result <json>` (FleetScaleRun). On the time bound it reports what it got.
 */
import { FleetSim } from "../host-sim/lab/fleet-sim";
import { treeCpuSeconds, treePeakRssMb } from "./proc";

export interface FleetScaleRun {
  devices: number;
  /** Real seconds to boot the fleet (every device reported its version). */
  bootSeconds: number;
  /** Real seconds of the rollout (release start -> every device settled), or until the bound. */
  rolloutSeconds: number;
  updated: number;
  /** Devices whose update for this release failed / rolled back (no faults are injected: these are the harness's). */
  failed: number;
  rolledBack: number;
  /** The failures' codes and counts. */
  failureCodes: Record<string, number>;
  /** Devices not on the new version at the end, by their last event ("state code"). */
  notUpdated: Record<string, number>;
  completed: boolean;
  devicesUpdatedPerSecond: number;
  baselineRssMb: number;
  peakRssMb: number;
  /** CPU seconds (user + system) of this process for boot + rollout. */
  cpuSeconds: number;
  eventsLost: number | null;
  /** Distinct events in the audit log at the end, and event messages the controller received (duplicates included). */
  eventsLogged: number;
  eventsReceived: number;
  broker: "aedes" | "mosquitto";
  db: "sqlite" | "postgres";
  /** The broker's own process (mosquitto): CPU seconds and peak RSS; 0 when it runs in this process. */
  brokerCpuSeconds: number;
  brokerPeakRssMb: number;
  /** The most HTTPS requests that waited at once for one of the simulator's connections (FleetSimSetup.maxHttpConnections). */
  httpWaitPeak: number;
  httpMaxConnections: number;
  error?: string;
}

const [devices, seed, maxRealMs] = process.argv.slice(2).map(Number) as [number, number, number];
const plan = process.argv[5] ?? "100:30m";
const brokerKind = process.argv[6] === "mosquitto" ? "mosquitto" : "aedes";
const db = process.argv[7] || undefined;
const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
const baseline = process.memoryUsage().rss;
const out: FleetScaleRun = { devices, bootSeconds: 0, rolloutSeconds: 0, updated: 0, failed: 0, rolledBack: 0, failureCodes: {}, notUpdated: {}, completed: false, devicesUpdatedPerSecond: 0, baselineRssMb: mb(baseline), peakRssMb: 0, cpuSeconds: 0, eventsLost: null,
  eventsLogged: 0, eventsReceived: 0, broker: brokerKind, db: db ? "postgres" : "sqlite", brokerCpuSeconds: 0, brokerPeakRssMb: 0, httpWaitPeak: 0, httpMaxConnections: 0 };
const cpu0 = process.cpuUsage();
const sim = await FleetSim.create({ devices, seed, brokerKind, badHardwareShare: 0, flakyShare: 0, powerCutShare: 0, maxRealMs, ...(db ? { dbPath: db } : {}) });
try {
  const t0 = performance.now();
  await sim.boot();
  out.bootSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  try {
    const r = await sim.rollout("1.1.0", plan, { rolloutId: `bench-${devices}-${seed}` });
    out.rolloutSeconds = (performance.now() - t1) / 1000;
    const report = await sim.report(r, 0, out.rolloutSeconds);
    out.updated = report.updated;
    out.eventsLost = report.events.lost;
    out.failed = report.failed;
    out.rolledBack = report.rolledBack;
    out.eventsLogged = report.events.logged;
    out.completed = true;
  } catch (e) {
    out.rolloutSeconds = (performance.now() - t1) / 1000;
    out.updated = sim.devices.filter((d) => d.running?.version === "1.1.0").length;
    out.error = (e as Error).message;
  }
} catch (e) {
  out.error = (e as Error).message;
} finally {
  for (const d of sim.devices) {
    if (d.running?.version !== "1.1.0") {
      const l = d.events[d.events.length - 1];
      const k = l ? `${l.state} ${l.code ?? ""}`.trim() : "no event";
      out.notUpdated[k] = (out.notUpdated[k] ?? 0) + 1;
    }
    for (const e of d.events) {
      if ((e.state !== "failed" && e.state !== "rolled-back") || e.to !== "1.1.0") continue;
      const k = `${e.state} ${e.code ?? ""}${e.detail ? ` (${e.detail.slice(0, 80)})` : ""}`;
      out.failureCodes[k] = (out.failureCodes[k] ?? 0) + 1;
    }
  }
  out.eventsReceived = sim.controller.received;
  out.httpWaitPeak = sim.gate.peakWaiting;
  out.httpMaxConnections = sim.gate.max;
  out.brokerCpuSeconds = treeCpuSeconds(sim.broker.pid);
  out.brokerPeakRssMb = Math.round(treePeakRssMb(sim.broker.pid));
  const cpu = process.cpuUsage(cpu0);
  out.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  out.peakRssMb = mb(Math.max(sim.peakRss, process.memoryUsage().rss));
  out.devicesUpdatedPerSecond = out.rolloutSeconds > 0 ? out.updated / out.rolloutSeconds : 0;
  await sim.close().catch(() => {});
}
process.stdout.write(`@result ${JSON.stringify(out)}\n`);
process.exit(0);
