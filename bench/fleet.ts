/*
 * Fleet scale: FLEET's simulator (broker, controller, audit log, N simulated devices with the
 * Node engine, one release to 100% of the fleet, no injected faults), one size per child
 * process so peak memory belongs to that size alone. Per-device figures and their ratio to the
 * smallest size say whether cost grows linearly (ratio ~1) or worse.
 *
 * Two deployments: embedded aedes + SQLite (in the simulator's process), and mosquitto +
 * PostgreSQL (processes of their own: one PostgreSQL server for the series, a fresh database per
 * size). CPU per device counts all of it: the simulator's process, mosquitto's, and the
 * PostgreSQL server's process tree (its CPU during that size's run).
 */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FleetScaleRun } from "./fleet-child";
import { findPostgres, startPgServer, type PgServer } from "../host-sim/lab/pg-server";
import { findMosquitto } from "../backend/mqtt/broker";
import { treeCpuSeconds } from "./proc";

export type { FleetScaleRun };

export interface FleetScaleRow extends FleetScaleRun {
  /** Real ms of rollout per device updated, CPU ms per device (boot + rollout), MB of RSS above the baseline per 1,000 devices. */
  msPerDevice: number;
  /** Simulator + broker process + database server, per device. */
  cpuMsPerDevice: number;
  /** The PostgreSQL server's CPU seconds during this run (0 for SQLite: it is in the simulator's process). */
  dbCpuSeconds: number;
  /** Audit-event messages the controller ingested per real second of the rollout (duplicates included). */
  eventsPerSecond: number;
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

export type FleetDeployment = "aedes+sqlite" | "mosquitto+postgres";

/** Why a deployment cannot run here, or undefined. */
export function fleetUnavailable(d: FleetDeployment): string | undefined {
  if (d === "aedes+sqlite") return undefined;
  if (!findMosquitto()) return "mosquitto is not installed (apt-get install -y mosquitto)";
  const pg = findPostgres();
  return typeof pg === "string" ? pg : undefined;
}

/** Run one size in a child process. */
export function runFleetChild(devices: number, seed: number, maxRealMs: number, broker = "aedes", db = ""): Promise<FleetScaleRun> {
  return new Promise((resolve, reject) => {
    // 10,000 devices take about 3 GB: above Node's default heap limit.
    const args = ["--max-old-space-size=8192", "--import", "tsx", join(ROOT, "bench", "fleet-child.ts"), String(devices), String(seed), String(maxRealMs), "100:30m", broker, db];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
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

export async function fleetScale(options: { sizes?: number[]; seed?: number; maxRealMs?: number; deployment?: FleetDeployment; progress?: (s: string) => void } = {}): Promise<FleetScaleRow[]> {
  const sizes = options.sizes ?? [100, 1000, 5000];
  const deployment = options.deployment ?? "aedes+sqlite";
  const external = deployment === "mosquitto+postgres";
  const rows: FleetScaleRow[] = [];
  let pg: PgServer | undefined;
  try {
    if (external) pg = await startPgServer();
    for (const n of sizes) {
      options.progress?.(`fleet (${deployment}): ${n} devices...`);
      const url = pg ? await pg.createDatabase(`fleet_${n}_${rows.length}`) : "";
      const db0 = treeCpuSeconds(pg?.pid);
      // The bound is per boot and per rollout; beyond 5,000 devices it grows with the fleet.
      const bound = (options.maxRealMs ?? 600_000) * Math.max(1, n / 5000);
      const r = await runFleetChild(n, options.seed ?? 1, bound, external ? "mosquitto" : "aedes", url);
      const dbCpuSeconds = pg ? treeCpuSeconds(pg.pid) - db0 : 0;
      const f = row(r, n, dbCpuSeconds, rows);
      rows.push(f);
      options.progress?.(`fleet (${deployment}): ${n} devices: ${r.updated} updated in ${r.rolloutSeconds.toFixed(1)} s${r.completed ? "" : ` (bound: ${r.error})`}, ` +
        `CPU ${f.cpuMsPerDevice.toFixed(1)} ms/dev, peak RSS ${r.peakRssMb} MB, ${Math.round(f.eventsPerSecond)} events/s, lost ${r.eventsLost ?? "?"}`);
    }
  } finally {
    await pg?.close();
  }
  return rows;
}

function row(r: FleetScaleRun, n: number, dbCpuSeconds: number, rows: FleetScaleRow[]): FleetScaleRow {
  const row: FleetScaleRow = {
    ...r,
    dbCpuSeconds,
    eventsPerSecond: r.rolloutSeconds > 0 ? r.eventsReceived / r.rolloutSeconds : 0,
    msPerDevice: r.updated ? (r.rolloutSeconds * 1000) / r.updated : 0,
    cpuMsPerDevice: ((r.cpuSeconds + r.brokerCpuSeconds + dbCpuSeconds) * 1000) / n,
    mbPer1000: ((r.peakRssMb + r.brokerPeakRssMb - r.baselineRssMb) * 1000) / n,
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
    if (n > rows[0].devices) row.marginalMbPer1000 = ((r.peakRssMb + r.brokerPeakRssMb - rows[0].peakRssMb - rows[0].brokerPeakRssMb) * 1000) / (n - rows[0].devices);
  }
  return row;
}
