import { describe, it, expect, afterEach } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBroker, findMosquitto, type Broker, type BrokerKind } from "../../backend/mqtt/broker";
import { VirtualClock, driveUntil } from "../../backend/clock";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController, parsePlan, type ReleaseFields } from "../../backend/fleet/controller";
import { generateKey, keyConfigOf } from "../../backend/release/keys";
import { verifyManifest } from "../../modules/manifest";
import { keyFromConfig } from "../../modules/keys";
import { nodeCrypto } from "../../backend/crypto";
import { ScriptedDevice } from "./scripted-device";
import { subscribe, realWait } from "./helpers";

const hasMosquitto = findMosquitto() !== undefined;
const key = generateKey("ecdsa-p256");
const release: ReleaseFields = { product: "thermo", channel: "stable", version: "1.1.0", secureVersion: 1, url: "https://127.0.0.1:1/thermo-1.1.0.bin", size: 65536, sha256: "ab".repeat(32) };

describe.each(["aedes", "mosquitto"] as BrokerKind[])("fleet controller (%s)", (kind) => {
  let broker: Broker | undefined;
  let dir = "";
  const cleanup: (() => void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) c();
    await broker?.close();
    broker = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const skip = kind === "mosquitto" && !hasMosquitto;

  async function setup(n: number, bad: (i: number) => boolean, fieldWindow?: { startMinute: number; endMinute: number }) {
    broker = await startBroker({ kind });
    dir = mkdtempSync(join(tmpdir(), "xsota-fleet-"));
    const clock = new VirtualClock();
    const log = new AuditLog(join(dir, "audit.db"));
    const controller = await FleetController.start({ broker, log, clock, virtualClock: clock, signingKey: key, fanoutHoldMs: 150, thresholds: { minFailures: 3, maxFailureRate: 0.2 } });
    const devices = Array.from({ length: n }, (_, i) => new ScriptedDevice({
      id: `d${String(i).padStart(3, "0")}`, hardware: bad(i) ? "esp32-rev1" : "esp32-rev3", bad: bad(i), groups: [i % 2 ? "field" : "lab"], region: "eu",
      ...(fieldWindow && i % 2 ? { window: fieldWindow } : {}),
    }, clock, broker!, keyConfigOf(key)));
    cleanup.push(() => devices.forEach((d) => d.close()), () => controller.close(), () => log.close());
    await driveUntil(clock, () => log.devices().filter((d) => d.version === "1.0.0").length === n, { maxRealMs: 10_000 });
    return { clock, log, controller, devices };
  }

  it.skipIf(skip)("rolls a good release out in stages to every device, logging each step once", async () => {
    const { clock, log, controller, devices } = await setup(40, () => false);
    const r = await controller.startRelease(release, parsePlan("10:10m,50:10m,100:10m"), "thermo-1.1.0-r1");
    await driveUntil(clock, () => log.release(r.id)?.status === "done" && log.devices().every((d) => d.version === "1.1.0"), { maxRealMs: 20_000 });
    const stages = log.stages(r.id);
    expect(stages.map((s) => s.percent)).toEqual([10, 50, 100]);
    expect(stages[1]!.started - stages[0]!.started).toBe(600_000);
    // Staged: the first stage updated roughly 10 % and no more.
    const early = log.db.prepare("SELECT COUNT(DISTINCT device) AS n FROM events WHERE state = 'committed' AND received < ?").get(stages[1]!.started) as { n: number };
    expect(early.n).toBeGreaterThan(0);
    expect(early.n).toBeLessThan(15);
    expect(log.versionsByGroup()).toEqual({ lab: { "1.1.0": 20 }, field: { "1.1.0": 20 } });
    const h = log.history("d007").map((e) => e.state);
    expect(h).toEqual(expect.arrayContaining(["downloading", "installing", "committed"]));
    const seqs = log.history("d007").map((e) => e.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(devices.every((d) => d.outbox.pending().length === 0)).toBe(true);
  });

  it.skipIf(skip)("halts and flags a bad release, re-signs it at 0 %, resumes on command, forces a group", async () => {
    // Every third device is the hardware revision whose diagnostics fail; the "field" group only
    // installs between 20:00 and 21:00 UTC (the virtual day starts at 00:00).
    const { clock, log, controller, devices } = await setup(30, (i) => i % 3 === 0, { startMinute: 20 * 60, endMinute: 21 * 60 });
    const watch = subscribe(broker!, "watch", ["releases/thermo/stable"]);
    await watch.ready;
    cleanup.push(() => watch.client.close());
    const r = await controller.startRelease(release, parsePlan("20:10m,50:10m,100:10m"), "thermo-1.1.0-bad");
    await driveUntil(clock, () => log.release(r.id)?.status === "halted", { maxRealMs: 20_000 });
    const halted = log.release(r.id)!;
    expect(halted.flagged).toBe(true);
    expect(halted.reason).toMatch(/failed or rolled back/);
    expect(log.failures(r.id, r.version).length).toBeGreaterThanOrEqual(3);
    await realWait(() => watch.messages.length > 0 && (() => {
      const m = verifyManifest(Buffer.from(watch.messages.at(-1)!.payload), [keyFromConfig(keyConfigOf(key), nodeCrypto)], nodeCrypto).manifest;
      return m.rollout?.percent === 0 && m.rollout.id === r.id;
    })());
    const updatedAtHalt = log.devices().filter((d) => d.version === "1.1.0").length;
    expect(updatedAtHalt).toBeLessThan(30);
    // Nothing more updates while halted, however long we wait.
    clock.advance(3600_000);
    await new Promise((res) => setTimeout(res, 100));
    expect(log.devices().filter((d) => d.version === "1.1.0").length).toBe(updatedAtHalt);

    await expect(controller.halt()).rejects.toThrow(/no running release/);
    await controller.resume();
    expect(log.release(r.id)!.status).toBe("running");
    const field = devices.filter((d) => d.o.groups[0] === "field");
    await driveUntil(clock, () => log.release(r.id)?.status === "done", { maxRealMs: 20_000 });
    expect(field.every((d) => d.running.version === "1.0.0")).toBe(true); // outside their window
    expect(log.history(field[0]!.o.id).some((e) => e.code === "POLICY_WINDOW")).toBe(true);
    const t0 = clock.now();
    const forced = await controller.force("field");
    expect(forced.sort()).toEqual(field.map((d) => d.o.id).sort());
    await driveUntil(clock, () => field.filter((d) => !d.o.bad).every((d) => d.running.version === "1.1.0"), { maxRealMs: 20_000 });
    expect(clock.now() - t0).toBeLessThan(600_000);
    expect(clock.wallTime() % 86400_000).toBeLessThan(20 * 3600_000); // still outside the window
    expect(field.filter((d) => d.o.bad).every((d) => d.running.version === "1.0.0")).toBe(true); // forced, still rolled back
  });

  it.skipIf(skip)("a restarted controller picks the running release up at its stage", async () => {
    broker = await startBroker({ kind });
    dir = mkdtempSync(join(tmpdir(), "xsota-fleet-"));
    const clock = new VirtualClock();
    const path = join(dir, "audit.db");
    let log = new AuditLog(path);
    let controller = await FleetController.start({ broker, log, clock, virtualClock: clock, signingKey: key, fanoutHoldMs: 150 });
    await controller.startRelease(release, parsePlan("10:10m,100:10m"), "thermo-1.1.0-restart");
    clock.advance(5 * 60_000);
    controller.close();
    log.close();
    const watch = subscribe(broker, "watch3", ["releases/thermo/stable"]);
    await watch.ready;
    cleanup.push(() => watch.client.close());
    const before = watch.messages.length;
    log = new AuditLog(path);
    controller = await FleetController.start({ broker, log, clock, virtualClock: clock, signingKey: key, fanoutHoldMs: 150 });
    cleanup.push(() => controller.close(), () => log.close());
    expect(log.release("thermo-1.1.0-restart")).toMatchObject({ status: "running", stage: 0 });
    await realWait(() => watch.messages.length > before); // re-announced
    clock.advance(10 * 60_000);
    await realWait(() => log.release("thermo-1.1.0-restart")!.stage === 1);
    expect(log.stages("thermo-1.1.0-restart").map((s) => s.idx)).toEqual([0, 1]); // picked up, not restarted
    clock.advance(10 * 60_000);
    await realWait(() => log.release("thermo-1.1.0-restart")!.status === "done");
  });
});
