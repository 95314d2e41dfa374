/*
 * One fleet-scale run in its own process (so peak memory belongs to this size alone), started
 * by bench/fleet.ts: `node --import tsx bench/fleet-child.ts <devices> <seed> <maxRealMs>`.
 * Prints one line `@result <json>` (FleetScaleRun). On the time bound it reports what it got.
 */
import { FleetSim } from "../host-sim/fleet/sim";

export interface FleetScaleRun {
  devices: number;
  /** Real seconds to boot the fleet (every device reported its version). */
  bootSeconds: number;
  /** Real seconds of the rollout (release start -> every device settled), or until the bound. */
  rolloutSeconds: number;
  updated: number;
  completed: boolean;
  devicesUpdatedPerSecond: number;
  baselineRssMb: number;
  peakRssMb: number;
  /** CPU seconds (user + system) of this process for boot + rollout. */
  cpuSeconds: number;
  eventsLost: number | null;
  error?: string;
}

const [devices, seed, maxRealMs] = process.argv.slice(2).map(Number) as [number, number, number];
const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
const baseline = process.memoryUsage().rss;
const out: FleetScaleRun = { devices, bootSeconds: 0, rolloutSeconds: 0, updated: 0, completed: false, devicesUpdatedPerSecond: 0, baselineRssMb: mb(baseline), peakRssMb: 0, cpuSeconds: 0, eventsLost: null };
const cpu0 = process.cpuUsage();
const sim = await FleetSim.create({ devices, seed, badHardwareShare: 0, flakyShare: 0, powerCutShare: 0, maxRealMs });
try {
  const t0 = performance.now();
  await sim.boot();
  out.bootSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  try {
    const r = await sim.rollout("1.1.0", "100", { rolloutId: `bench-${devices}-${seed}` });
    out.rolloutSeconds = (performance.now() - t1) / 1000;
    const report = sim.report(r, 0, out.rolloutSeconds);
    out.updated = report.updated;
    out.eventsLost = report.events.lost;
    out.completed = true;
  } catch (e) {
    out.rolloutSeconds = (performance.now() - t1) / 1000;
    out.updated = sim.devices.filter((d) => d.running?.version === "1.1.0").length;
    out.error = (e as Error).message;
  }
} catch (e) {
  out.error = (e as Error).message;
} finally {
  const cpu = process.cpuUsage(cpu0);
  out.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  out.peakRssMb = mb(Math.max(sim.peakRss, process.memoryUsage().rss));
  out.devicesUpdatedPerSecond = out.rolloutSeconds > 0 ? out.updated / out.rolloutSeconds : 0;
  await sim.close().catch(() => {});
}
process.stdout.write(`@result ${JSON.stringify(out)}\n`);
process.exit(0);
