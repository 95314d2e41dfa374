/*
 * The controller's ingest against a real mosquitto: under the shipped ACL (the controller with its
 * own credentials, each device with its own), malformed device messages are parked (counted, in
 * `fleet status`, never retried) while the real failures behind them still halt the release
 * before its stage timer runs out; on a broker without the ACL, a forged seq arriving first does
 * not make the real event vanish as a duplicate: it is kept as a conflict, counted and shown.
 */
import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { VirtualClock } from "../../backend/clock";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController, parsePlan, type ReleaseFields } from "../../backend/fleet/controller";
import { fleetStatus } from "../../backend/fleet/web";
import { generateKey } from "../../backend/release/keys";
import { realWait } from "./helpers";
import { main } from "../../cli/main";
import { aclBroker, hasMosquitto, peer, type Peer } from "./acl-broker";

const key = generateKey("ecdsa-p256");
const release: ReleaseFields = { product: "thermo", channel: "stable", version: "1.1.0", secureVersion: 1, url: "https://127.0.0.1:1/thermo-1.1.0.bin", size: 65536, sha256: "ab".repeat(32) };
const ev = (seq: number, state: string, extra: object = {}) => JSON.stringify({ seq, time: 1000 + seq, uptime: seq, state, from: "1.0.0", to: "1.1.0", rollout: "r-ingest", ...extra });

describe.skipIf(!hasMosquitto)("the controller's ingest on a real mosquitto", () => {
  let broker: Broker | undefined, dir = "", work = "";
  const cleanup: (() => void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) c();
    await broker?.close();
    broker = undefined;
    for (const d of [dir, work]) if (d) rmSync(d, { recursive: true, force: true });
  });

  async function controllerOn(b: Broker, credentials?: { username: string; password: string }) {
    work = mkdtempSync(join(tmpdir(), "xsota-ingest-"));
    const clock = new VirtualClock();
    const log = new AuditLog(join(work, "audit.db"));
    const controller = await FleetController.start({ broker: b, log, clock, virtualClock: clock, signingKey: key, fanoutHoldMs: 50,
      thresholds: { minFailures: 3, maxFailureRate: 0.2 }, ...(credentials ? { credentials } : {}) });
    cleanup.push(() => controller.close(), () => log.close());
    return { clock, log, controller };
  }
  const device = (b: Broker, id: string, password?: string) => {
    const p = peer(b, id, password === undefined ? undefined : id, password);
    cleanup.push(() => p.client.close());
    return p;
  };

  it("parks malformed messages (counted, shown by fleet status, not retried) and still halts on the failures behind them", async () => {
    const users: Record<string, string> = { "xsota-controller": "ctl" };
    for (const id of ["bad", "d1", "d2", "d3", "d4"]) users[id] = `pw-${id}`;
    ({ broker, dir } = await aclBroker(users));
    const { clock, log, controller } = await controllerOn(broker, { username: "xsota-controller", password: "ctl" });
    const r = await controller.startRelease(release, parsePlan("25:10m,100:10m"), "r-ingest");
    const bad = device(broker, "bad", "pw-bad");
    await bad.ready;
    // valid JSON of the wrong shape (the one that used to fail every batch it was in), retained,
    // then an event whose seq is no number, a payload that is not JSON, an online that is neither 1 nor 0
    bad.client.publish("devices/bad/state", "null", { qos: 1, retain: true });
    bad.client.publish("devices/bad/events", JSON.stringify({ seq: "7", state: "committed" }), { qos: 1 });
    bad.client.publish("devices/bad/events", "{not json", { qos: 1 });
    bad.client.publish("devices/bad/version", "1.0.0\u0000", { qos: 1 });
    bad.client.publish("devices/bad/online", "maybe", { qos: 1 });
    const ds: Peer[] = [];
    for (const id of ["d1", "d2", "d3", "d4"]) ds.push(device(broker, id, `pw-${id}`));
    await Promise.all(ds.map((d) => d.ready));
    ds.forEach((d, i) => {
      d.client.publish(`devices/d${i + 1}/events`, ev(1, "downloading"), { qos: 1 });
      if (i < 3) d.client.publish(`devices/d${i + 1}/events`, ev(2, "rolled-back", { code: "DOWNLOAD_HASH" }), { qos: 1 });
    });
    // No virtual time passes: the halt comes from ingesting the failures, not from a stage timer.
    await realWait(() => log.release(r.id)?.status === "halted", 10_000);
    expect(clock.now()).toBe(0);
    expect(log.stages(r.id).map((s) => s.percent)).toEqual([25]);
    await realWait(() => controller.parked === 5 && log.ingestIssues().parked === 5);
    await controller.settled();
    const s = await fleetStatus(controller);
    expect(s.ingest.parked).toBe(5);
    expect(s.ingest.recentParked.map((p) => `${p.topic}: ${p.reason}`.replace(/not JSON \(.*\)$/, "not JSON")).sort()).toEqual([
      "devices/bad/events: not JSON",
      "devices/bad/events: seq: expected an integer >= 0",
      "devices/bad/online: online: expected 1 or 0",
      "devices/bad/state: state: expected a JSON object",
      "devices/bad/version: version: expected a short line of text",
    ]);
    expect(log.eventCount()).toBe(7);
    expect(log.device("bad")).toBeUndefined();
    // `xsota fleet status` shows them, from the log alone
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((t: string) => (out.push(String(t)), true)) as typeof process.stdout.write;
    try {
      expect(await main(["fleet", "status", "--db", join(work, "audit.db")])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(out.join("")).toContain("0 conflicting events (same device and seq, other content), 5 messages parked");
    expect(out.join("")).toContain("parked devices/bad/state: state: expected a JSON object (\"null\")");
    // Halted before its watch ran out: time passing now widens nothing.
    clock.advance(600_000);
    await new Promise((res) => setTimeout(res, 50));
    expect(log.release(r.id)!.status).toBe("halted");
    expect(log.stages(r.id).map((s) => s.percent)).toEqual([25]);
  });

  it("a forged seq arriving first does not make the real event a duplicate: it is kept as a conflict, counted and shown (broker without the ACL)", async () => {
    broker = await startBroker({ kind: "mosquitto" });
    const { log, controller } = await controllerOn(broker);
    const forger = device(broker, "forger");
    const real = device(broker, "d1-real");
    await Promise.all([forger.ready, real.ready]);
    forger.client.publish("devices/d1/events", ev(1, "committed"), { qos: 1 });
    await realWait(() => log.eventCount("d1") === 1);
    real.client.publish("devices/d1/events", ev(1, "rolled-back", { code: "DOWNLOAD_HASH" }), { qos: 1 });
    real.client.publish("devices/d1/events", ev(1, "rolled-back", { code: "DOWNLOAD_HASH" }), { qos: 1 }); // the outbox resends it
    real.client.publish("devices/d1/events", ev(2, "idle"), { qos: 1 });
    await realWait(() => log.eventCount("d1") === 2);
    await controller.settled();
    expect(controller.conflicts).toBe(1);
    expect(controller.duplicates).toBe(1);
    const s = await fleetStatus(controller);
    expect(s.ingest.conflicts).toBe(1);
    expect(s.ingest.recentConflicts[0]).toMatchObject({ device: "d1", seq: 1 });
    expect(s.ingest.recentConflicts[0]!.content).toContain("DOWNLOAD_HASH");
  });
});

describe.skipIf(!hasMosquitto)("a message the log itself refuses (real mosquitto, SQLite with a trigger)", () => {
  let broker: Broker | undefined, work = "";
  const cleanup: (() => void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) c();
    await broker?.close();
    broker = undefined;
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("is parked with the log's reason; the rest of its batch is written and the failures still halt the release", async () => {
    broker = await startBroker({ kind: "mosquitto" });
    work = mkdtempSync(join(tmpdir(), "xsota-ingest-refused-"));
    const clock = new VirtualClock();
    const log = new AuditLog(join(work, "audit.db"));
    // a well-formed report the database refuses (a constraint of the operator's, a full disk for one table...)
    log.db.exec("CREATE TRIGGER refuse_poison BEFORE INSERT ON devices WHEN NEW.id = 'poison' BEGIN SELECT RAISE(ABORT, 'poison refused'); END");
    const controller = await FleetController.start({ broker, log, clock, virtualClock: clock, signingKey: key, fanoutHoldMs: 50, thresholds: { minFailures: 3, maxFailureRate: 0.2 } });
    cleanup.push(() => controller.close(), () => log.close());
    const r = await controller.startRelease(release, parsePlan("25:10m,100:10m"), "r-ingest");
    const p = peer(broker, "pub");
    cleanup.push(() => p.client.close());
    await p.ready;
    p.client.publish("devices/poison/version", "1.0.0", { qos: 1 });
    for (let i = 1; i <= 3; i++) {
      p.client.publish(`devices/d${i}/events`, ev(1, "downloading"), { qos: 1 });
      p.client.publish(`devices/d${i}/events`, ev(2, "rolled-back", { code: "DOWNLOAD_HASH" }), { qos: 1 });
    }
    await realWait(() => log.release(r.id)?.status === "halted", 10_000);
    await realWait(() => log.ingestIssues().parked === 1);
    await controller.settled();
    expect(controller.parked).toBe(1);
    expect(log.ingestIssues().recentParked[0]).toMatchObject({ device: "poison", topic: "devices/poison/version", reason: "refused by the log: poison refused" });
    expect(log.eventCount()).toBe(6);
    expect(clock.now()).toBe(0);
  });
});
