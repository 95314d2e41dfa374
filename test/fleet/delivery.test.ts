/*
 * End to end: device outbox -> reporter -> real broker -> controller -> SQLite, through power
 * cuts (the device's sockets die without DISCONNECT, unacked events are resent from NVS) and a
 * broker restart while the device keeps producing events. Every event lands exactly once.
 */
import { describe, it, expect, afterEach } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBroker, findMosquitto, type Broker, type BrokerKind } from "../../backend/mqtt/broker";
import { TcpMqttPort } from "../../backend/mqtt/client";
import { VirtualClock, driveUntil } from "../../backend/clock";
import { AuditLog } from "../../backend/fleet/audit-log";
import { FleetController } from "../../backend/fleet/controller";
import { startReporter, type Reporter } from "../../modules/reporter";
import { Outbox } from "../../modules/outbox";
import { parseConfig } from "../../modules/config";
import { generateKey, keyConfigOf } from "../../backend/release/keys";
import { MemStore, devicePorts } from "./helpers";

const hasMosquitto = findMosquitto() !== undefined;
const key = generateKey("ecdsa-p256");

describe.each(["aedes", "mosquitto"] as BrokerKind[])("audit delivery into SQLite (%s)", (kind) => {
  let broker: Broker | undefined;
  let dir = "";
  afterEach(async () => {
    await broker?.close();
    broker = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(kind === "mosquitto" && !hasMosquitto)("no loss and no duplicates across power cuts and a broker restart (install: apt-get install -y mosquitto)", async () => {
    broker = await startBroker({ kind });
    dir = mkdtempSync(join(tmpdir(), "xsota-delivery-"));
    const clock = new VirtualClock();
    const log = new AuditLog(join(dir, "audit.db"));
    const controller = await FleetController.start({ broker, log, clock, virtualClock: clock, signingKey: key });
    const config = parseConfig({
      product: "thermo", manifestUrl: "https://127.0.0.1:1/m.json", trustedKeys: [keyConfigOf(key)], checkIntervalMs: 0,
      mqtt: { host: broker.host, port: broker.port },
    });
    const ids = ["e1", "e2", "e3"];
    const stores = ids.map(() => new MemStore());
    const boots = ids.map(() => ({ mqtt: new TcpMqttPort({ clock }), outbox: undefined as unknown as Outbox, reporter: undefined as unknown as Reporter }));
    const agent = { running: { version: "1.0.0", secureVersion: 1, slot: 0 }, check: async () => ({}) };
    const boot = (i: number) => {
      const b = boots[i]!;
      b.mqtt = new TcpMqttPort({ clock });
      b.outbox = new Outbox(stores[i]!, { capacity: 200 });
      b.reporter = startReporter(devicePorts(ids[i]!, clock, stores[i]!, b.mqtt), config, agent, b.outbox, { reconnect: { baseMs: 300, maxMs: 2000 } });
    };
    const powerCut = (i: number) => {
      boots[i]!.mqtt.powerOff();
      boots[i]!.reporter.close();
    };
    const produce = (i: number, n: number) => {
      for (let k = 0; k < n; k++) {
        const b = boots[i]!;
        b.reporter.onEvent(b.outbox.append({ time: clock.wallTime(), uptime: clock.now(), state: "checking", from: "1.0.0", detail: `#${k}` }));
      }
    };
    ids.forEach((_, i) => boot(i));
    await driveUntil(clock, () => boots.every((b) => b.reporter.connected), { maxRealMs: 5000 });
    let expected = 0;
    for (let round = 0; round < 4; round++) {
      ids.forEach((_, i) => produce(i, 10));
      expected += 10;
      // Power cut while QoS 1 publishes are in flight on device e1 (and on e2 every other round).
      powerCut(0);
      if (round % 2) powerCut(1);
      boot(0);
      if (round % 2) boot(1);
      await driveUntil(clock, () => boots.every((b) => b.reporter.connected && b.outbox.pending().length === 0), { maxRealMs: 10_000 });
    }
    // Power cut after the broker had the events but before the acks reached NVS: the outbox
    // still holds them after the reboot, they are sent again, and the log drops the copies.
    produce(1, 10);
    expected += 10;
    ids.forEach((_, i) => i !== 1 && produce(i, 10));
    await driveUntil(clock, () => boots.every((b) => b.outbox.pending().length === 0) && log.eventCount("e2") === expected, { maxRealMs: 10_000 });
    powerCut(1);
    for (let k = expected - 9; k <= expected; k++) {
      const e = log.history("e2").find((x) => x.seq === k)!;
      stores[1]!.data.set(`outbox/e${k}`, JSON.stringify({ seq: e.seq, time: e.time, uptime: e.uptime, state: e.state, from: e.from, detail: e.detail }));
    }
    boot(1);
    expect(boots[1]!.outbox.pending().length).toBe(10);
    await driveUntil(clock, () => boots[1]!.outbox.pending().length === 0, { maxRealMs: 10_000 });
    await driveUntil(clock, () => controller.duplicates >= 10, { maxRealMs: 10_000 });

    // Broker outage: devices keep producing, the controller is cut off too.
    await broker.stop();
    await driveUntil(clock, () => boots.every((b) => !b.reporter.connected) && !controller.isConnected, { maxRealMs: 5000 });
    for (let k = 0; k < 3; k++) {
      ids.forEach((_, i) => produce(i, 5));
      clock.advance(1500);
    }
    expected += 15;
    powerCut(2); // and a power cut during the outage
    boot(2);
    await broker.start();
    await driveUntil(clock, () => boots.every((b) => b.reporter.connected && b.outbox.pending().length === 0) && controller.isConnected, { maxRealMs: 10_000 });
    await driveUntil(clock, () => ids.every((id) => log.eventCount(id) === expected), { maxRealMs: 10_000 });
    for (const id of ids) {
      const seqs = log.history(id).map((e) => e.seq);
      expect(seqs).toEqual(Array.from({ length: expected }, (_, k) => k + 1));
    }
    expect(controller.received).toBeGreaterThanOrEqual(expected * ids.length);
    boots.forEach((b) => b.reporter.close());
    controller.close();
    log.close();
  });
});
