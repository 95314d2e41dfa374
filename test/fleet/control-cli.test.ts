/*
 * xsota fleet pause | resume | cancel | download-only | install against a running controller
 * (its command API): each sends a command signed for each target device on devices/<id>/cmd,
 * which the device-side check (modules/control.ts verifyControl) accepts.
 */
import { describe, it, expect, afterAll, beforeAll } from "vitest";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { VirtualClock } from "../../backend/clock";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController } from "../../backend/fleet/controller";
import { startFleetView, type FleetView } from "../../backend/fleet/web";
import { generateKey, trustedKeyOf } from "../../backend/release/keys";
import { verifyControl } from "../../modules/control";
import { fromBase64 } from "../../modules/bytes";
import { nodeCrypto } from "../../backend/crypto";
import { memoryStore } from "../xs/helpers";
import { subscribe, realWait, type Subscriber } from "./helpers";

const BIN = join(__dirname, "../../bin/xsota.js");
function xsota(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: "1" } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("xsota fleet pause | resume | cancel | download-only | install", () => {
  const key = generateKey("ecdsa-p256");
  let dir: string;
  let db: string;
  let broker: Broker;
  let log: AuditLog;
  let controller: FleetController;
  let view: FleetView;
  let cmds: Subscriber;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "xsota-ctlcli-"));
    db = join(dir, "fleet.db");
    broker = await startBroker();
    log = new AuditLog(db);
    controller = await FleetController.start({ broker, log, clock: new VirtualClock(), signingKey: key });
    view = await startFleetView(controller);
    log.setMeta("api", view.url);
    log.setMeta("api-token", view.token);
    const state = (groups: string[]) => ({ version: "1.0.0", slot: 0, secure_version: 1, hardware: "esp32-rev3", groups, last: null, online: true as const });
    log.setState("aa01", state(["lab"]), 1);
    log.setState("aa02", state(["lab"]), 1);
    log.setState("bb01", state(["field"]), 1);
    cmds = subscribe(broker, "cmd-watch", ["devices/+/cmd"]);
    await cmds.ready;
  }, 30_000);
  afterAll(async () => {
    cmds?.client.close();
    controller?.close();
    await view?.close();
    log?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("sends each device a command signed for it alone, that the device accepts once", async () => {
    const r = await xsota(["fleet", "pause", "--device", "aa01", "--device", "bb01", "--db", db]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("pause sent to 2 devices\n");
    await realWait(() => cmds.messages.length >= 2);
    const store = memoryStore();
    const keys = [trustedKeyOf(key)];
    for (const m of cmds.messages.splice(0)) {
      const id = m.topic.split("/")[1]!;
      const msg = JSON.parse(m.payload) as { cmd: string; envelope: string };
      expect(msg.cmd).toBe("pause");
      const c = verifyControl(fromBase64(msg.envelope), keys, nodeCrypto, id, store);
      expect(c).toMatchObject({ cmd: "pause", device: id });
      expect(() => verifyControl(fromBase64(msg.envelope), keys, nodeCrypto, id, memoryStore())).not.toThrow();
    }
  });

  it("--group targets the group's known devices; --json prints them", async () => {
    const r = await xsota(["fleet", "cancel", "--group", "lab", "--db", db, "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ cmd: "cancel", devices: ["aa01", "aa02"] });
    await realWait(() => cmds.messages.length >= 2);
    expect(cmds.messages.splice(0).map((m) => m.topic).sort()).toEqual(["devices/aa01/cmd", "devices/aa02/cmd"]);
  });

  it("a control command without a target is a usage error; resume without one is the release's", async () => {
    expect((await xsota(["fleet", "install", "--db", db])).code).toBe(2);
    const r = await xsota(["fleet", "resume", "--db", db]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no halted release/);
  });

  it("--help shows runnable examples of each", async () => {
    const r = await xsota(["fleet", "--help"]);
    for (const sub of ["pause --device", "resume --device", "download-only --group", "install --group", "cancel --group"]) expect(r.stdout).toContain(`xsota fleet ${sub}`);
  });
});
