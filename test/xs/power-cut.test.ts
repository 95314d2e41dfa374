/*
 * The power-cut sweep in both engines: a cut at every flash operation of an update (download
 * writes, journal and outbox NVS writes, install, the bootloader's otadata writes, self-test,
 * commit), each run in Node and in XS, with the whole Outcome equal; and during a rollback.
 */
import { describe, expect, it } from "vitest";
import { scenarios, type Scenario } from "../../host-sim/lab/scenarios";
import { inBothEngines } from "./helpers";

const { both } = inBothEngines();

/** Which fields of two outcomes differ (for a readable failure). */
function differences(a: object, b: object): string {
  const out: string[] = [];
  for (const k of Object.keys(a) as (keyof typeof a)[]) {
    const x = JSON.stringify(a[k]), y = JSON.stringify(b[k]);
    if (x !== y) out.push(`${String(k)}: node ${x} / xs ${y}`);
  }
  return out.join("; ");
}

// Long sweeps (about 13 s, 5 s and 10 s on a quiet machine): generous bounds, as a loaded run is
// several times slower and a timed-out sweep leaves its engine busy for the next test.
describe("power cut at every flash operation, in both engines", { timeout: 300_000 }, () => {
  const base = scenarios.find((s) => s.name === "happy")!;
  const sweep: Scenario = {
    ...base,
    name: "xs-sweep",
    releases: [{ image: { version: "1.1.0", secureVersion: 1, size: 24 * 1024 } }],
    config: { download: { stallMs: 10_000, minBytesPerSec: 256, rateWindowMs: 5000, journalEveryBytes: 8192 } },
  };
  it("each cut ends the same way in XS as in Node", async () => {
    const { n: clean, x: cleanXs } = await both(sweep);
    expect(cleanXs).toEqual(clean);
    const total = clean.flashOps;
    expect(total).toBeGreaterThan(20);
    for (let at = 1; at <= total; at++) {
      const { n, x } = await both(sweep, at);
      expect(n.cutHappened, `cut at ${at}`).toBe(true);
      expect(x, `cut at op ${at}/${total}: ${differences(n, x)}`).toEqual(n);
    }
  });

  // The rollback sweep has more operations; test/agent sweeps every one of them in Node. Here every
  // third (a different residue each run would be flaky to debug, so a fixed stride starting at 1).
  it("during a rollback too (every third operation)", async () => {
    const failing: Scenario = { ...sweep, name: "xs-sweep-rollback", releases: [{ image: { version: "1.1.0", secureVersion: 1, size: 24 * 1024, behavior: "fail-diagnostics" } }] };
    const { n: clean, x: cleanXs } = await both(failing);
    expect(clean.final).toBe("rolled-back");
    expect(cleanXs).toEqual(clean);
    for (let at = 1; at <= clean.flashOps; at += 3) {
      const { n, x } = await both(failing, at);
      expect(x, `cut at op ${at}/${clean.flashOps}: ${differences(n, x)}`).toEqual(n);
    }
  });

  // A delta update, cut at every one of its flash operations in both engines (about 0.6 s a cut
  // for the pair on a quiet machine; test/agent/power-cut.test.ts sweeps Node alone too).
  it("of a delta update: each cut ends the same way in XS as in Node", async () => {
    const delta: Scenario = { ...sweep, name: "xs-sweep-delta", factory: { version: "1.0.0", secureVersion: 1, size: 24 * 1024 }, delta: {} };
    const { n: clean, x: cleanXs } = await both(delta);
    expect(clean.final).toBe("committed");
    expect(cleanXs).toEqual(clean);
    for (let at = 1; at <= clean.flashOps; at++) {
      const { n, x } = await both(delta, at);
      expect(n.cutHappened, `cut at ${at}`).toBe(true);
      expect(n.bricked || x.bricked, `cut at ${at}`).toBe(false);
      expect(x, `cut at op ${at}/${clean.flashOps}: ${differences(n, x)}`).toEqual(n);
    }
  });
});
