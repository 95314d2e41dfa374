import { describe, expect, it } from "vitest";
import { runDiagnostics, type DiagnosticCheck, type DiagnosticResult } from "../../modules/diagnostics";
import { VirtualClock } from "../../host-sim/clock";

async function run(checks: DiagnosticCheck[], windowMs = 30_000, timeoutMs = 10_000): Promise<{ r: DiagnosticResult; t: number }> {
  const clock = new VirtualClock();
  let r: DiagnosticResult | undefined;
  void runDiagnostics(checks, clock, windowMs, timeoutMs).then((x) => { r = x; });
  for (let i = 0; i < 100 && !r; i++) {
    await new Promise((res) => setImmediate(res));
    if (!r) clock.step();
  }
  return { r: r!, t: clock.now() };
}

const never = () => new Promise<boolean>(() => {});

describe("self-diagnostics", () => {
  it("passes when every check passes (sync, async, void)", async () => {
    const { r } = await run([{ name: "a", run: () => true }, { name: "b", run: async () => true }, { name: "c", run: () => {} }]);
    expect(r).toEqual({ ok: true });
  });
  it("fails on false, naming the check", async () => {
    const { r } = await run([{ name: "a", run: () => true }, { name: "heap", run: () => false }]);
    expect(r).toMatchObject({ ok: false, code: "CONFIRM_DIAGNOSTICS", check: "heap" });
  });
  it("fails on a throw or a rejection", async () => {
    expect((await run([{ name: "x", run: () => { throw new Error("boom"); } }])).r).toMatchObject({ ok: false, code: "CONFIRM_DIAGNOSTICS", check: "x" });
    expect((await run([{ name: "y", run: () => Promise.reject(new Error("no")) }])).r).toMatchObject({ ok: false, code: "CONFIRM_DIAGNOSTICS", check: "y" });
  });
  it("a check that never settles times out after its own timeout, in virtual time", async () => {
    const { r, t } = await run([{ name: "slow", timeoutMs: 2000, run: never }]);
    expect(r).toMatchObject({ ok: false, code: "CONFIRM_TIMEOUT", check: "slow" });
    expect(t).toBe(2000);
  });
  it("the whole run is bounded by the window", async () => {
    const wait = (ms: number, clock: VirtualClock) => new Promise<void>((res) => clock.setTimeout(res, ms));
    const clock = new VirtualClock();
    let r: DiagnosticResult | undefined;
    const checks: DiagnosticCheck[] = [1, 2, 3, 4].map((i) => ({ name: `c${i}`, run: () => wait(9000, clock) }));
    void runDiagnostics(checks, clock, 30_000, 10_000).then((x) => { r = x; });
    for (let i = 0; i < 100 && !r; i++) { await new Promise((res) => setImmediate(res)); if (!r) clock.step(); }
    expect(r).toMatchObject({ ok: false, code: "CONFIRM_TIMEOUT", check: "c4" });
    expect(clock.now()).toBe(30_000);
  });
});
