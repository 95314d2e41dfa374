/*
 * Fleet scale: FLEET's simulator (broker, controller, SQLite audit log, N simulated devices with
 * the Node engine, one release to 100% of the fleet, no injected faults), one size per child
 * process so peak memory belongs to that size alone. Per-device figures and their ratio to the
 * smallest size say whether cost grows linearly (ratio ~1) or worse.
 */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FleetScaleRun } from "./fleet-child";

export type { FleetScaleRun };

export interface FleetScaleRow extends FleetScaleRun {
  /** Real ms of rollout per device updated, CPU ms per device (boot + rollout), MB of RSS above the baseline per 1,000 devices. */
  msPerDevice: number;
  cpuMsPerDevice: number;
  mbPer1000: number;
  /** MB of peak RSS per 1,000 devices added since the smallest size (the marginal memory cost). */
  marginalMbPer1000: number;
  /** Per-device CPU and memory relative to the smallest size (1 = linear). */
  cpuRatio: number;
  memRatio: number;
  /** Per-device CPU and memory relative to the next smaller size (1 = linear). */
  cpuStep: number;
  memStep: number;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Run one size in a child process. */
export function runFleetChild(devices: number, seed: number, maxRealMs: number): Promise<FleetScaleRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bench", "fleet-child.ts"), String(devices), String(seed), String(maxRealMs)], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), maxRealMs + 120_000);
    child.on("close", (code) => {
      clearTimeout(killer);
      const line = out.split("\n").find((l) => l.startsWith("@result "));
      if (!line) return reject(new Error(`fleet child (${devices} devices) exited ${code} without a result: ${err.slice(-500)}`));
      resolve(JSON.parse(line.slice(8)) as FleetScaleRun);
    });
  });
}

export async function fleetScale(options: { sizes?: number[]; seed?: number; maxRealMs?: number; progress?: (s: string) => void } = {}): Promise<FleetScaleRow[]> {
  const sizes = options.sizes ?? [100, 1000, 5000];
  const rows: FleetScaleRow[] = [];
  for (const n of sizes) {
    options.progress?.(`fleet: ${n} devices...`);
    const r = await runFleetChild(n, options.seed ?? 1, options.maxRealMs ?? 600_000);
    const row: FleetScaleRow = {
      ...r,
      msPerDevice: r.updated ? (r.rolloutSeconds * 1000) / r.updated : 0,
      cpuMsPerDevice: (r.cpuSeconds * 1000) / n,
      mbPer1000: ((r.peakRssMb - r.baselineRssMb) * 1000) / n,
      marginalMbPer1000: 0,
      cpuRatio: 1,
      memRatio: 1,
      cpuStep: 1,
      memStep: 1,
    };
    const prev = rows[rows.length - 1];
    if (prev) {
      row.cpuStep = row.cpuMsPerDevice / prev.cpuMsPerDevice;
      row.memStep = row.mbPer1000 / prev.mbPer1000;
    }
    if (rows[0]) {
      row.cpuRatio = row.cpuMsPerDevice / rows[0].cpuMsPerDevice;
      row.memRatio = row.mbPer1000 / rows[0].mbPer1000;
      if (n > rows[0].devices) row.marginalMbPer1000 = ((r.peakRssMb - rows[0].peakRssMb) * 1000) / (n - rows[0].devices);
    }
    rows.push(row);
    options.progress?.(`fleet: ${n} devices: ${r.updated} updated in ${r.rolloutSeconds.toFixed(1)} s${r.completed ? "" : ` (bound: ${r.error})`}, peak RSS ${r.peakRssMb} MB`);
  }
  return rows;
}
