/*
 * Every end-to-end scenario of host-sim/lab/scenarios.ts on the Node engine: real HTTPS on
 * loopback (one update host for the file), SIM's chip and bootloader, virtual time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scenarios, runScenario, checkOutcome, Lab, type Outcome } from "../../host-sim/lab/scenarios";
import { createNodeEngine } from "../../host-sim/engines/engine-node";

let lab: Lab;
const engine = createNodeEngine();
const outcomes = new Map<string, Outcome & { factoryApp0: string }>();

beforeAll(async () => { lab = await Lab.create(); });
afterAll(async () => { await lab.close(); });

async function run(name: string) {
  const s = scenarios.find((x) => x.name === name);
  if (!s) throw new Error(`no scenario ${name}`);
  const o = await runScenario(s, engine, lab);
  outcomes.set(name, o);
  return { s, o };
}

const imageRequests = (name: string) => lab.host.stats.log.filter((r) => r.path.startsWith(`/${name}/`) && r.path.includes("/fw-"));

describe("scenarios (node engine)", () => {
  for (const s of scenarios) {
    it(`${s.name}: ${s.summary}`, async () => {
      const { o } = await run(s.name);
      expect(checkOutcome(s, o, o.factoryApp0)).toEqual([]);
    });
  }
});

describe("what the scenarios show beyond the final state", () => {
  it("happy path: every transition in order, otadata VALID for the new slot", () => {
    const o = outcomes.get("happy")!;
    const states = o.events.map((e) => (e[4] !== null && e[0] === "downloading" ? `${e[0]}:${e[4]}` : e[0]));
    expect(states.slice(0, 11)).toEqual(["checking", "downloading:0", "downloading:25", "downloading:50", "downloading:75", "downloading:100", "verifying", "installing", "rebooting", "confirming", "committed"]);
    expect(o.running).toEqual({ version: "1.1.0", slot: 1 });
    expect(o.otadata.find((e) => e.state === "VALID")).toBeDefined();
    expect(o.boots).toBe(2);
  });

  it("second update: slots alternate and seq grows; the floor follows secure_version", () => {
    const o = outcomes.get("second-update")!;
    expect(o.running).toEqual({ version: "1.2.0", slot: 0 });
    const seqs = o.otadata.map((e) => e.seq).sort((a, b) => a - b);
    expect(seqs[1]).toBeGreaterThan(seqs[0]!);
    expect(o.otadata.find((e) => e.seq === seqs[1])!.state).toBe("VALID");
    expect(o.floor).toBe(2);
  });

  it("rollbacks are reported by the old image with from/to", () => {
    for (const name of ["rollback-fail-diagnostics", "rollback-crash", "rollback-hang", "reboot-loop"]) {
      const o = outcomes.get(name)!;
      const rb = o.events.find((e) => e[0] === "rolled-back");
      expect(rb, name).toBeDefined();
      expect(rb![2]).toBe("1.0.0");
      expect(rb![3]).toBe("1.1.0");
      expect(o.running!.slot).toBe(0);
    }
  });

  it("the network: a network-caused rollback downloads the release again, the image's own failure never does", () => {
    expect(imageRequests("network-late-app").length).toBe(1);
    expect(imageRequests("network-never-retry").length).toBe(2);
    expect(imageRequests("network-down-default").length).toBe(2);
    expect(imageRequests("network-retry-cap").length).toBe(2);
    expect(imageRequests("app-check-fails-no-network").length).toBe(1);
    const cap = outcomes.get("network-retry-cap")!;
    expect(cap.bootVersions).toEqual(["1.0.0", "1.1.0", "1.0.0", "1.1.0", "1.0.0"]);
    expect(cap.events.filter((e) => e[0] === "refused").map((e) => e[1])).toEqual(["POLICY_ROLLBACK_CAP"]);
  });

  it("a refusal is reported once per release, not on every check", () => {
    const o = outcomes.get("refused-once")!;
    expect(o.boots).toBe(2);
    expect(o.events.filter((e) => e[0] === "refused").length).toBe(1);
  });

  it("the attempt cap survives a reboot: two requests in all, then a refusal", () => {
    expect(imageRequests("retry-cap-persists").length).toBe(2);
    expect(outcomes.get("retry-cap-persists")!.boots).toBe(2);
  });

  it("an endless 404 is asked once, not in a loop", () => {
    expect(imageRequests("endless-404").length).toBe(1);
  });

  it("a drip host ends each attempt and stops at the cap", () => {
    expect(imageRequests("drip").length).toBe(3);
  });

  it("a 200 to a Range request is never appended: the next request starts from 0", () => {
    const log = imageRequests("ignore-range");
    const i = log.findIndex((r) => r.range && r.status === 200);
    expect(i).toBeGreaterThan(0);
    expect(log[i + 1]!.range).toBeUndefined();
  });

  it("cuts are resumed with Range + If-Range", () => {
    const ranged = imageRequests("cuts").filter((r) => r.range);
    expect(ranged.length).toBeGreaterThanOrEqual(3);
    for (const r of ranged) {
      expect(r.status).toBe(206);
      expect(r.ifRange).toMatch(/^"/);
      expect(Number(/bytes=(\d+)-/.exec(r.range!)![1]) % 4096).toBe(0);
    }
  });

  it("500 and 503 (with Retry-After) are retried, then the download succeeds", () => {
    const o = outcomes.get("500-then-ok")!;
    expect(o.final).toBe("committed");
    expect(imageRequests("500-then-ok").map((r) => r.status).slice(0, 3)).toEqual([500, 503, 200]);
  });

  it("redirect-resume: every attempt starts at the original URL, and the target still gets Range and If-Range", () => {
    expect(outcomes.get("redirect-resume")!.final).toBe("committed");
    const original = lab.wire.log.filter((r) => r.path.startsWith("/redirect-resume/") && r.path.includes("/fw-"));
    expect(original.map((r) => r.headers["range"] ?? null)).toEqual([null, "bytes=16384-"]);
    const target = imageRequests("redirect-resume");
    expect(target.map((r) => r.range ?? null)).toEqual([null, "bytes=16384-"]);
    expect(target[1]!.ifRange).toMatch(/^".+"$/);
    expect(target.map((r) => r.status)).toEqual([200, 206]);
  });

  it("wire-extra-same-write: the honest image with bytes after its body commits in one request", () => {
    expect(outcomes.get("wire-extra-same-write")!.final).toBe("committed");
    expect(lab.wire.log.filter((r) => r.path.startsWith("/wire-extra-same-write/") && r.path.includes("/fw-")).length).toBe(1);
  });

  const patchRequests = (name: string) => lab.host.stats.log.filter((r) => r.path.startsWith(`/${name}/`) && r.path.includes("/patch-"));

  it("a delta update: the patch is the only body on the wire, far smaller than the image, and every step still runs", () => {
    const o = outcomes.get("delta")!;
    expect(imageRequests("delta")).toEqual([]);
    const patch = patchRequests("delta");
    expect(patch.length).toBe(1);
    expect(patch[0]!.bytes).toBeLessThan(64 * 1024 / 10);
    const states = o.events.map((e) => e[0]);
    for (const st of ["checking", "downloading", "verifying", "installing", "rebooting", "confirming", "committed"]) expect(states).toContain(st);
    expect(o.running).toEqual({ version: "1.1.0", slot: 1 });
  });

  it("a delta is taken only from its base: another base or deltas off fetch the full image, never the patch", () => {
    for (const name of ["delta-not-my-base", "delta-off"]) {
      expect(patchRequests(name), name).toEqual([]);
      expect(imageRequests(name).map((r) => [r.status, r.bytes]), name).toEqual([[200, 64 * 1024]]);
    }
  });

  it("a cut patch restarts from its byte 0 (no Range): at most the patch again, never the image", () => {
    const log = patchRequests("delta-cuts");
    expect(log.map((r) => r.range)).toEqual([undefined, undefined, undefined, undefined]);
    expect(log.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const total = log.reduce((n, r) => n + r.bytes, 0);
    expect(total).toBeLessThanOrEqual(4 * log[3]!.bytes);
    expect(imageRequests("delta-cuts")).toEqual([]);
  });

  it("a bad or missing patch is asked for once, reported with its code, and the full image is installed instead", () => {
    for (const name of ["delta-patch-404", "delta-corrupt-wire", "delta-truncated-wire", "delta-truncated-build", "delta-other-base", "delta-overrun", "delta-past-end"]) {
      const o = outcomes.get(name)!;
      const s = scenarios.find((x) => x.name === name)!;
      const at = o.events.findIndex((e) => e[1] === s.expect.saw![0]);
      expect(o.events[at]![0], name).toBe("downloading");
      expect(o.events.slice(0, at).map((e) => e[0]), name).not.toContain("installing");
      expect(patchRequests(name).length, name).toBe(1);
      expect(imageRequests(name).map((r) => [r.status, r.bytes]), name).toEqual([[200, 64 * 1024]]);
      expect(o.running, name).toEqual({ version: "1.1.0", slot: 1 });
    }
  });
});
