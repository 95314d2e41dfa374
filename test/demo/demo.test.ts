/*
 * `npm start` end to end: the demo as a child process (`node bin/xsota.js demo`), as a newcomer
 * runs it, and what it must have shown: 1.1.0 rolled out in stages, 1.2.0 halted after
 * rollbacks on the bad board revision only, 1.2.1 forced onto every device, the audit table,
 * and the files a build server leaves (key, CA, signed firmware, the published tree, audit.db).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { runNode } from "../child";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { verifySignedImage } from "../../backend/release/espsecure";
import { loadPublicKey, trustedKeyOf } from "../../backend/release/keys";
import type { DemoResult } from "../../cli/demo/story";

const ROOT = join(import.meta.dirname, "../..");
const BIN = join(ROOT, "bin/xsota.js");

/** xsota in a child process, awaited (test/child.ts). */
const xsota = (args: string[], env: Record<string, string> = {}) => runNode([BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000 });

type Result = Omit<DemoResult, "out" | "www" | "viewUrl"> & { ok: boolean; mismatches: string[] };

describe("xsota demo in the XS engine (12 devices, --quick)", () => {
  let dir: string;
  let run: Awaited<ReturnType<typeof xsota>>;
  let r: Result;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "xsota-demo-test-"));
    run = await xsota(["demo", "--devices", "12", "--quick", "--json", "--out", dir]);
    r = JSON.parse(run.stdout) as Result;
  }, 150_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("exits 0 and says the story ran as told", () => {
    expect(run.stderr).not.toMatch(/INTERNAL|at .*\.ts:\d+/);
    expect(run.status).toBe(0);
    expect(r.ok).toBe(true);
    expect(r.mismatches).toEqual([]);
    expect(r.engine).toBe("xs");
  });

  it("rolled 1.1.0 out through 5 %, 25 %, 100 % to every device", () => {
    const rel = r.releases.find((x) => x.version === "1.1.0")!;
    expect(rel).toMatchObject({ status: "done", flagged: false, plan: "5%,25%,100%", stage: 2 });
    for (const d of r.devices) expect(d.path.slice(0, 2)).toEqual(["1.0.0", "1.1.0"]);
  });

  it("1.1.0 went by delta: every stage the controller re-signed carried the patch, each device fetched only it", () => {
    const by = r.deltas.filter((x) => x.to === "1.1.0");
    expect(by.map((x) => x.id).sort()).toEqual(r.devices.map((d) => d.id).sort());
    for (const x of by) {
      expect(x.patchBytes).toBeGreaterThan(0);
      expect(x.patchBytes).toBeLessThan(x.imageBytes / 2);
    }
    expect(r.deltas.filter((x) => x.to !== "1.1.0")).toEqual([]);
  });

  it("halted and flagged 1.2.0 before 100 %, after rollbacks on esp32-rev1 only", () => {
    const rel = r.releases.find((x) => x.version === "1.2.0")!;
    expect(rel.status).toBe("halted");
    expect(rel.flagged).toBe(true);
    expect(rel.stage).toBeLessThan(2);
    expect(rel.reason).toMatch(/failed or rolled back/);
    expect(r.rolledBack.length).toBeGreaterThanOrEqual(2);
    for (const x of r.rolledBack) {
      expect(x.hardware).toBe("esp32-rev1");
      expect(x.code).toBe("CONFIRM_DIAGNOSTICS");
    }
    // The same image passed its self-test on the other revision.
    expect(r.keptBad.length).toBeGreaterThanOrEqual(1);
    for (const id of r.keptBad) expect(r.devices.find((d) => d.id === id)!.hardware).toBe("esp32-rev3");
    // A rolled-back device booted 1.2.0 and went back to 1.1.0; a device outside the stages never booted 1.2.0.
    const back = r.devices.find((d) => d.id === r.rolledBack[0]!.id)!;
    expect(back.path).toEqual(["1.0.0", "1.1.0", "1.2.0", "1.1.0", "1.2.1"]);
    expect(r.devices.filter((d) => !d.path.includes("1.2.0")).length).toBeGreaterThan(0);
  });

  it("forced 1.2.1 onto every device: the audit table per group shows only 1.2.1", () => {
    expect(new Set(r.forced)).toEqual(new Set(r.devices.map((d) => d.id)));
    for (const d of r.devices) expect(d.version).toBe("1.2.1");
    expect(r.byGroup["esp32-rev1"]).toEqual({ "1.2.1": 4 });
    expect(r.byGroup["esp32-rev3"]).toEqual({ "1.2.1": 8 });
    expect(r.byGroup["eu"]).toEqual({ "1.2.1": 6 });
    expect(r.byGroup["us"]).toEqual({ "1.2.1": 6 });
  });

  it("left the build server's files: key, CA, espsecure-signed firmware, the published tree, the audit log", async () => {
    const pub = loadPublicKey(join(dir, "keys/release.pub.pem"));
    for (const v of ["1.0.0", "1.1.0", "1.2.0", "1.2.1"]) {
      const file = new Uint8Array(readFileSync(join(dir, `firmware/thermo-${v}.bin`)));
      expect(verifySignedImage(file, [trustedKeyOf(pub)]).scheme).toBe("v1");
    }
    expect(readFileSync(join(dir, "tls/ca.pem"), "utf8")).toMatch(/BEGIN CERTIFICATE/);
    const index = JSON.parse(readFileSync(join(dir, "www/products/thermo/stable/index.json"), "utf8")) as { releases: { version: string }[] };
    expect(index.releases.map((x) => x.version)).toEqual(["1.0.0", "1.1.0", "1.2.0", "1.2.1"]);
    expect(readdirSync(join(dir, "www/images"))).toHaveLength(4);
    expect(readdirSync(join(dir, "www/deltas"))).toHaveLength(1);
    const status = await xsota(["fleet", "status", "--db", join(dir, "audit.db"), "--json"]);
    expect(status.status).toBe(0);
    expect(status.stdout).toContain("1.2.1");
  });
});

describe("xsota demo's text output", () => {
  it("tells the story without colour codes when NO_COLOR is set and output is a pipe", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xsota-demo-text-"));
    try {
      const run = await xsota(["demo", "--engine", "node", "--quick", "--devices", "6", "--out", dir], { NO_COLOR: "1" });
      expect(run.status).toBe(0);
      expect(run.stdout + run.stderr).not.toMatch(/\x1b\[/);
      for (const s of ["Build server", "Staged rollout of 1.1.0", "HALTED", "forced to every group", "Audit log", "fleet view"]) expect(run.stdout).toContain(s);
      expect(run.stdout).toMatch(/esp32-rev1\s+2\b/);
      expect(existsSync(join(dir, "audit.db"))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
