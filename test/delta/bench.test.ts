/* The delta bench's deterministic goals as tests: exact output, and the one-module share under 10 %. */
import { beforeAll, describe, expect, it } from "vitest";
import { deltaBench, DELTA_GOAL_SHARE } from "../../bench/delta";
import { benchRows, type BenchReport } from "../../bench/run";

describe("delta bench", () => {
  let d: Awaited<ReturnType<typeof deltaBench>>;
  beforeAll(async () => {
    d = await deltaBench({ compressions: ["heatshrink"], large: false });
  }, 60_000);

  it("reproduces every image exactly and keeps a one-module change under the goal", () => {
    expect(d.rows.length).toBeGreaterThanOrEqual(2);
    for (const r of d.rows) {
      expect(r.exact).toBe(true);
      expect(r.deltaSeconds).toBeLessThan(r.fullSeconds);
      if (r.change === "one module") expect(r.share).toBeLessThan(DELTA_GOAL_SHARE);
    }
  });

  it("applies the one-module patch inside xsnap-worker to the exact image and meters it", () => {
    expect(d.xs!.exact).toBe(true);
    expect(d.xs!.compute).toBeGreaterThan(0);
  });

  it("prints a row per pair with the goal and esp_delta_ota's shares", () => {
    const rows = benchRows({ date: "", quick: true, machine: { node: "", cpus: 1, cpu: "" }, seconds: {}, delta: d } as BenchReport);
    const goals = rows.filter((r) => r.status !== "");
    expect(goals.length).toBe(d.rows.filter((r) => r.change === "one module").length);
    expect(goals.every((r) => r.status === "ok" && /esp_delta_ota: 7-25 %/.test(r.goal))).toBe(true);
  });
});
