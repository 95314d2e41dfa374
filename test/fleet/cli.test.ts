import { describe, it, expect, afterAll, beforeAll } from "vitest";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { VirtualClock } from "../../backend/clock";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController, parsePlan } from "../../backend/fleet/controller";
import { startFleetView, type FleetView } from "../../backend/fleet/web";
import { generateKey } from "../../backend/release/keys";

const BIN = join(__dirname, "../../bin/xsota.js");
function xsota(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: "1" } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("xsota fleet status | history | halt | resume | force", () => {
  let dir: string;
  let db: string;
  let broker: Broker;
  let log: AuditLog;
  let controller: FleetController;
  let view: FleetView;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "xsota-fleetcli-"));
    db = join(dir, "fleet.db");
    broker = await startBroker();
    const clock = new VirtualClock();
    log = new AuditLog(db);
    controller = await FleetController.start({ broker, log, clock, virtualClock: clock, signingKey: generateKey("ecdsa-p256") });
    view = await startFleetView(controller);
    log.setMeta("api", view.url);
    log.setMeta("api-token", view.token);
    const state = (version: string, groups: string[]) => ({ version, slot: 0, secure_version: 1, hardware: "esp32-rev3", region: "eu", groups, last: null, online: true as const });
    log.setState("aa01", state("1.0.0", ["lab"]), 1);
    log.setState("aa02", state("1.1.0", ["lab"]), 1);
    log.setState("aa03", state("1.1.0", ["field"]), 1);
    log.addEvent("aa02", { seq: 1, time: 1000, uptime: 5, state: "checking", from: "1.0.0" }, 1);
    log.addEvent("aa02", { seq: 2, time: 2000, uptime: 9, state: "downloading", from: "1.0.0", to: "1.1.0", progress: 50 }, 2);
    log.addEvent("aa02", { seq: 3, time: 3000, uptime: 20, state: "committed", from: "1.0.0", to: "1.1.0" }, 3);
    await controller.startRelease({ product: "thermo", channel: "stable", version: "1.1.0", secureVersion: 1, url: "https://127.0.0.1:1/x.bin", size: 1024, sha256: "ef".repeat(32) },
      parsePlan("5:10m,100"), "thermo-1.1.0-cli");
  }, 30_000);

  afterAll(async () => {
    await view?.close();
    controller?.close();
    log?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("status shows versions per group (text and --json)", async () => {
    const json = await xsota(["fleet", "status", "--db", db, "--json"]);
    expect(json.code).toBe(0);
    const s = JSON.parse(json.stdout);
    expect(s.byGroup).toEqual({ lab: { "1.0.0": 1, "1.1.0": 1 }, field: { "1.1.0": 1 } });
    expect(s.release).toMatchObject({ id: "thermo-1.1.0-cli", status: "running", percent: 5 });
    const text = await xsota(["fleet", "status", "--db", db]);
    expect(text.stdout).toMatch(/release thermo-1\.1\.0-cli \(1\.1\.0\): running, stage 1\/2 at 5 %/);
    expect(text.stdout).toMatch(/lab\s+1\s+1\s+2/);
  }, 30_000);

  it("history lists every step; unknown device and missing db are errors with codes", async () => {
    const h = await xsota(["fleet", "history", "aa02", "--db", db, "--json"]);
    expect(JSON.parse(h.stdout).events.map((e: { state: string }) => e.state)).toEqual(["checking", "downloading", "committed"]);
    const unknown = await xsota(["fleet", "history", "zz99", "--db", db]);
    expect(unknown.code).toBe(2);
    const missing = await xsota(["fleet", "status", "--db", join(dir, "nope.db")]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/FILE_NOT_FOUND/);
  }, 30_000);

  it("halt, resume and force reach the running controller", async () => {
    const halt = await xsota(["fleet", "halt", "--db", db]);
    expect(halt.code).toBe(0);
    expect(log.release("thermo-1.1.0-cli")!.status).toBe("halted");
    const resume = await xsota(["fleet", "resume", "--db", db]);
    expect(resume.code).toBe(0);
    expect(log.release("thermo-1.1.0-cli")!.status).toBe("running");
    const force = await xsota(["fleet", "force", "--group", "lab", "--db", db, "--json"]);
    expect(JSON.parse(force.stdout).devices.sort()).toEqual(["aa01", "aa02"]);
    const noGroup = await xsota(["fleet", "force", "--db", db]);
    expect(noGroup.code).toBe(2);
  }, 30_000);
});
