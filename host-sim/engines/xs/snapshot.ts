/*
 * One prepared machine per firmware: a worker that has evaluated SES lockdown
 * (@agoric/xsnap-lockdown's bundle: the bare xsnap-worker only has XS's native harden) and
 * then the firmware bundle, written to a snapshot file. Each boot starts a fresh worker from
 * that snapshot (~20 ms) instead of re-evaluating 600 KB of SES and the bundle (~70 ms).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleFirmware, DEFAULT_FIRMWARE, type Bundle } from "./bundle";
import { XsWorker, type MeterUsage } from "./worker";

export interface Prepared {
  firmware: string;
  bundle: Bundle;
  /** Snapshot file: lockdown + bundle evaluated. */
  snapshot: string;
  snapshotBytes: number;
  /** Meter of the two evaluations (lockdown, bundle). */
  lockdownMeter: MeterUsage;
  bundleMeter: MeterUsage;
  /** Real ms to prepare (bundle, lockdown, evaluate, snapshot). */
  prepareMs: number;
}

let lockdownSource: string | undefined;
function lockdownScript(): string {
  if (!lockdownSource) {
    const require = createRequire(import.meta.url);
    const path = require.resolve("@agoric/xsnap-lockdown/dist/lockdown.bundle");
    const bundle = JSON.parse(readFileSync(path, "utf8")) as { source: string };
    lockdownSource = `(${bundle.source}\n)()`;
  }
  return lockdownSource;
}

let dir: string | undefined;
function snapshotDir(): string {
  if (!dir) {
    const d = mkdtempSync(join(tmpdir(), "xsota-xs-"));
    dir = d;
    process.once("exit", () => rmSync(d, { recursive: true, force: true }));
  }
  return dir;
}

const cache = new Map<string, Promise<Prepared>>();
let counter = 0;

/** Bundle `firmware`, evaluate it under lockdown in a worker, snapshot it. Cached per firmware path. */
export function prepare(firmware = DEFAULT_FIRMWARE): Promise<Prepared> {
  let p = cache.get(firmware);
  if (!p) {
    p = doPrepare(firmware);
    cache.set(firmware, p);
    p.catch(() => cache.delete(firmware));
  }
  return p;
}

async function doPrepare(firmware: string): Promise<Prepared> {
  const t0 = performance.now();
  const bundle = await bundleFirmware(firmware);
  const worker = new XsWorker({ name: "xsota-prepare" });
  try {
    const lockdown = await worker.evaluate(lockdownScript());
    const evaluated = await worker.evaluate(bundle.code);
    const snapshot = join(snapshotDir(), `firmware-${++counter}.xss`);
    const snapshotBytes = await worker.snapshot(snapshot);
    return { firmware, bundle, snapshot, snapshotBytes, lockdownMeter: lockdown.meter, bundleMeter: evaluated.meter, prepareMs: performance.now() - t0 };
  } finally {
    await worker.close();
  }
}
