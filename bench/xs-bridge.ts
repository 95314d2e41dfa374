/*
 * What one bridge crossing costs in the XS engine, measured here, so the XS update's time can
 * be split into bridge round trips, bytes carried, and XS compute: each mode of
 * bench/xs-bridge-fw.ts is booted with n = 0 and n = N iterations; the difference of the real
 * boot times (and of the XS meter's compute) divided by N is the cost of one iteration. On a
 * shared machine noise only adds time: each figure is the smallest of `repeats` tries.
 */
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createXsEngine } from "../host-sim/engines/xs/engine";
import { SimChip } from "../host-sim/chip/chip";
import { SimSystem } from "../host-sim/engines/ports/system";
import { nodeCrypto } from "../backend/crypto";
import type { Ports } from "../modules/ports";

const FIRMWARE = join(dirname(fileURLToPath(import.meta.url)), "xs-bridge-fw.ts");
export const BRIDGE_MODES = ["call", "read", "write", "sha", "xor", "copy"] as const;
export type BridgeMode = (typeof BRIDGE_MODES)[number];

export interface BridgeCost {
  /** Real µs per iteration (min over `repeats` of full - empty), and XS compute per iteration. */
  us: Record<BridgeMode, number>;
  compute: Record<BridgeMode, number>;
  n: number;
}

export async function bridgeCost(options: { n?: number; repeats?: number } = {}): Promise<BridgeCost> {
  const n = options.n ?? 2000;
  const repeats = options.repeats ?? 3;
  let compute = 0;
  const engine = createXsEngine({ firmware: FIRMWARE, onMeter: (m) => (compute += m.compute) });
  const chip = SimChip.create({});
  for (let b = 0; b < 256; b++) chip.slot(1).eraseBlock(b);
  const ports = (): Ports => ({
    flash: chip.flashPort(0),
    store: chip.store(),
    crypto: nodeCrypto,
    http: { request() { throw new Error("no http in the bridge bench"); } },
    clock: { now: () => 0, wallTime: () => 0, setTimeout: () => 0, clearTimeout: () => {} },
    system: new SimSystem({ deviceId: "bench", hardware: "esp32-rev3", resetReason: "power-on", onRestart() {}, onLog() {} }),
  });
  const once = async (mode: BridgeMode, k: number): Promise<{ ms: number; compute: number }> => {
    compute = 0;
    const t = performance.now();
    const fw = await engine.boot(ports(), { config: { mode, n: k }, behavior: "healthy" });
    const ms = performance.now() - t;
    await fw.stop();
    return { ms, compute };
  };
  const us = {} as Record<BridgeMode, number>;
  const comp = {} as Record<BridgeMode, number>;
  try {
    await once("call", 10); // snapshot ready, warm
    for (const mode of BRIDGE_MODES) {
      let zeroMs = Infinity;
      let fullMs = Infinity;
      let c = 0;
      for (let r = 0; r < repeats; r++) {
        const zero = await once(mode, 0);
        const full = await once(mode, n);
        zeroMs = Math.min(zeroMs, zero.ms);
        fullMs = Math.min(fullMs, full.ms);
        c = full.compute - zero.compute;
      }
      us[mode] = (Math.max(0, fullMs - zeroMs) * 1000) / n;
      comp[mode] = c / n;
    }
  } finally {
    // The engine's unref'd spare worker may still be starting: keep the loop alive until it is gone.
    const keep = setInterval(() => {}, 1000);
    try {
      await engine.close();
    } finally {
      clearInterval(keep);
    }
  }
  return { us, compute: comp, n };
}
