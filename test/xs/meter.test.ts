/*
 * Cost in XS from the engine's own meter, and memory that does not grow with the image: a
 * 1.5 MB update ends with the same machine footprint and (after a full GC) the same live
 * slots as a 256 KB update, within a small constant. A deliberately leaky firmware shows the
 * measure sees per-chunk retention.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { Lab } from "../../host-sim/lab/scenarios";
import { xsCostReport, formatCostReport } from "../../host-sim/engines/xs/meter";

/** Live slots a 1.5 MB update may keep beyond a 256 KB one (a leak of one slot per 4 KB chunk is ~300). */
const SLOT_SLACK = 64;

let lab: Lab;
beforeAll(async () => { lab = await Lab.create(); });
afterAll(async () => { await lab?.close(); });

describe("XS cost of an update", () => {
  it("a 1.5 MB update allocates within a small constant of a 256 KB update; compute is reported per MB and per chunk", async () => {
    const r = await xsCostReport({}, lab);
    console.log(formatCostReport(r));
    expect(r.small.final).toBe("committed");
    expect(r.large.final).toBe("committed");
    expect(r.large.imageSize).toBe(1536 * 1024);
    expect(r.allocateGrowth).toBe(0);
    expect(Math.abs(r.liveSlotGrowth)).toBeLessThanOrEqual(SLOT_SLACK);
    expect(r.large.compute).toBeGreaterThan(r.small.compute);
    expect(r.computePerChunk).toBeGreaterThan(0);
  });

  it("the measure sees a firmware that keeps something per chunk", async () => {
    const r = await xsCostReport({ small: 64 * 1024, large: 512 * 1024, firmware: join(import.meta.dirname, "fixtures/leaky-firmware.ts") }, lab);
    expect(r.large.final).toBe("committed");
    console.log(`leaky control: live slots ${r.small.liveSlots} (64 KB) -> ${r.large.liveSlots} (512 KB), growth ${r.liveSlotGrowth}`);
    expect(r.liveSlotGrowth).toBeGreaterThan(SLOT_SLACK);
  });
});
