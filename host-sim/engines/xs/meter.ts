/*
 * The cost of an update inside XS, from the engine's own meter (xsnap-worker reports, per
 * crank, `compute`: XS's metering index, deterministic for the same code and inputs; and
 * `allocate`: bytes the machine obtained from the OS; plus the live slots after a full GC,
 * which we ask for at the end of the update boot).
 *
 * measureXsUpdate runs one real update end to end (HTTPS on loopback, SIM's chip, the real
 * agent in XS) and reads the meter of the boot that downloads, verifies and installs.
 * xsCostReport compares two sizes: the difference gives the marginal cost per MB and per 4 KB
 * chunk, free of the fixed cost (manifest, signature, boot).
 */
import { Lab, FACTORY } from "../../lab/lab";
import { createXsEngine, type MeterTotals } from "./engine";
import type { BridgeStats } from "./bridge";

export interface XsUpdateCost {
  imageSize: number;
  /** 4 KB blocks of the image. */
  chunks: number;
  /** Compute (XS metering index) of the update boot: check, download, hash, write, verify, install. */
  compute: number;
  /** Machine footprint at the end of the update boot (bytes obtained from the OS). */
  allocate: number;
  /** Slots live after a full GC at the end of the update boot. */
  liveSlots: number;
  /** Cranks (boot + events) of the update boot. */
  cranks: number;
  /** Synchronous port calls XS -> Node in the update boot, and bytes each way. */
  portCalls: number;
  bytesToNode: number;
  bytesFromNode: number;
  /** Compute of the next boot (self-test and confirmation). */
  confirmCompute: number;
  /** Final state of the update (expected "committed"). */
  final: string | null;
  /** Real ms for the whole run. */
  realMs: number;
}

export interface MeasureOptions {
  imageSize: number;
  /** Reuse a lab (its update host and keys); a new one is made and closed otherwise. */
  lab?: Lab;
  /** Firmware module to run (default host-sim/engines/firmware.ts). */
  firmware?: string;
}

let runs = 0;

/** Run one full update of an image of `imageSize` bytes in XS and read the meter. */
export async function measureXsUpdate(options: MeasureOptions): Promise<XsUpdateCost> {
  const lab = options.lab ?? (await Lab.create());
  const boots: Array<{ meter: MeterTotals; bridge: BridgeStats }> = [];
  const engine = createXsEngine({ ...(options.firmware ? { firmware: options.firmware } : {}), onStop: (meter, bridge) => boots.push({ meter: { ...meter }, bridge: { ...bridge } }) });
  const t0 = performance.now();
  try {
    const dir = `xs-meter-${options.imageSize}-${++runs}`;
    const release = lab.publish(dir, { image: { version: "1.1.0", secureVersion: 1, size: options.imageSize } });
    const chip = lab.chip(FACTORY);
    const device = lab.device(engine, chip, lab.config(release.manifestUrl));
    try {
      await device.run((d) => d.idle, { maxVirtualMs: 6 * 3600_000, maxRealMs: 60_000 });
    } finally {
      await device.stop();
    }
    const update = boots[0];
    if (!update) throw new Error("measureXsUpdate: no boot was measured");
    const result = [...device.events].reverse().find((e) => ["committed", "rolled-back", "failed", "refused"].includes(e.state));
    return {
      imageSize: options.imageSize,
      chunks: Math.ceil(options.imageSize / 4096),
      compute: update.meter.compute,
      allocate: update.meter.allocate,
      liveSlots: update.meter.liveSlots ?? update.meter.currentHeapCount,
      cranks: update.meter.cranks,
      portCalls: update.bridge.requests,
      bytesToNode: update.bridge.bytesIn,
      bytesFromNode: update.bridge.bytesOut,
      confirmCompute: boots[1]?.meter.compute ?? 0,
      final: result?.state ?? null,
      realMs: performance.now() - t0,
    };
  } finally {
    await engine.close();
    if (!options.lab) await lab.close();
  }
}

export interface XsCostReport {
  small: XsUpdateCost;
  large: XsUpdateCost;
  /** Marginal compute per MB and per 4 KB chunk (difference of the two runs). */
  computePerMB: number;
  computePerChunk: number;
  /** Fixed compute of an update (the part that does not scale with the image). */
  computeFixed: number;
  /** Footprint and live-slot growth from the small to the large image. */
  allocateGrowth: number;
  liveSlotGrowth: number;
}

/** Measure a small and a large update (default 256 KB and 1.5 MB) in one lab. */
export async function xsCostReport(sizes: { small?: number; large?: number; firmware?: string } = {}, lab?: Lab): Promise<XsCostReport> {
  const own = lab ?? (await Lab.create());
  const fw = sizes.firmware ? { firmware: sizes.firmware } : {};
  try {
    const small = await measureXsUpdate({ imageSize: sizes.small ?? 256 * 1024, lab: own, ...fw });
    const large = await measureXsUpdate({ imageSize: sizes.large ?? LARGE, lab: own, ...fw });
    const mb = (large.imageSize - small.imageSize) / (1024 * 1024);
    const perMB = (large.compute - small.compute) / mb;
    return {
      small,
      large,
      computePerMB: Math.round(perMB),
      computePerChunk: Math.round(perMB / 256),
      computeFixed: Math.round(small.compute - (perMB * small.imageSize) / (1024 * 1024)),
      allocateGrowth: large.allocate - small.allocate,
      liveSlotGrowth: large.liveSlots - small.liveSlots,
    };
  } finally {
    if (!lab) await own.close();
  }
}

/** The largest image the 1.5 MB slot of partitions.csv takes in the lab (a full-slot update). */
export const LARGE = 1536 * 1024;

export function formatCostReport(r: XsCostReport): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const row = (c: XsUpdateCost) =>
    `  ${(c.imageSize / 1024).toFixed(0).padStart(5)} KB  compute ${n(c.compute).padStart(13)}  allocate ${n(c.allocate).padStart(11)} B  live slots ${n(c.liveSlots).padStart(7)}  port calls ${n(c.portCalls).padStart(6)}  (${c.final}, ${c.realMs.toFixed(0)} ms)`;
  return [
    "XS cost of an update (xsnap meter; compute = XS metering index)",
    row(r.small),
    row(r.large),
    `  per MB: ${n(r.computePerMB)} compute; per 4 KB chunk: ${n(r.computePerChunk)}; fixed: ${n(r.computeFixed)}`,
    `  growth small -> large: allocate ${n(r.allocateGrowth)} B, live slots ${n(r.liveSlotGrowth)}`,
  ].join("\n");
}
