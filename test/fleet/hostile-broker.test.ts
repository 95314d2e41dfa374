/*
 * The broker as hostile (issue 29, "the broker"): a server that speaks MQTT well enough to be
 * connected to, then sends what a compromised or buggy broker could. The device's reporter must
 * never allocate a claimed packet size (Moddable's mqtt.js allocates the remaining length before
 * reading it: a PUBLISH claiming 200 MB aborts XS, which restarts the chip), never recurse into
 * deep JSON, and a flood of junk must cost a bounded number of NVS writes, not one per message.
 * The device's binding on Moddable's runtime is tested against the same server in
 * test/moddable/hostile-broker.test.ts.
 */
import { describe, it, expect, afterEach } from "vitest";
import * as mqttPacket from "mqtt-packet";
import { TcpMqttPort } from "../../backend/mqtt/client";
import { VirtualClock, driveUntil } from "../../backend/clock";
import { startReporter, MAX_MQTT_PACKET, type ReporterAgent } from "../../modules/reporter";
import { Outbox } from "../../modules/outbox";
import { parseConfig, type AppConfig } from "../../modules/config";
import { startBroker, type Broker } from "../../backend/mqtt/broker";
import { MemStore, devicePorts, simSystem, subscribe, realWait } from "./helpers";
import { generateKey, keyConfigOf } from "../../backend/release/keys";
import { hostileServer, claimedPublish } from "./hostile-server";
import type { StoreValue } from "../../modules/ports";

const key = generateKey("ecdsa-p256");

function config(host: string, port: number): AppConfig {
  return parseConfig({
    product: "thermo", channel: "stable", manifestUrl: "https://127.0.0.1:1/m.json", trustedKeys: [keyConfigOf(key)],
    hardware: "esp32-rev3", checkIntervalMs: 0, mqtt: { host, port, keepaliveMs: 30_000 },
  });
}

class IdleAgent implements ReporterAgent {
  running = { version: "1.0.0", secureVersion: 1, slot: 0, project: "thermo" };
  checks = 0;
  async check() {
    this.checks++;
    return { state: "idle" };
  }
}

/** A store that counts its writes (NVS wear). */
class CountingStore extends MemStore {
  writes = 0;
  override set(d: string, k: string, v: StoreValue) {
    this.writes++;
    super.set(d, k, v);
  }
}

describe("the broker as hostile", () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it("a PUBLISH claiming 200 MB ends the connection from its header (MQTT_PROTOCOL), nothing allocated; the reporter reconnects", async () => {
    const hostile = await hostileServer((socket) => {
      socket.write(claimedPublish(200 * 1024 * 1024));
      // then a trickle of body that must never be read: the socket is gone by then
      const t = setInterval(() => socket.writable && socket.write(Buffer.alloc(1024, 0x41)), 5);
      socket.on("close", () => clearInterval(t));
    });
    cleanup.push(() => hostile.server.close());
    const clock = new VirtualClock();
    const logs: string[] = [];
    const ports = { ...devicePorts("hb01", clock, new MemStore(), new TcpMqttPort({ clock })), system: simSystem("hb01", "esp32-rev3", logs) };
    const r = startReporter(ports, config("127.0.0.1", hostile.port), new IdleAgent(), new Outbox(new MemStore(), { capacity: 8 }), { reconnect: { baseMs: 1000, maxMs: 1000 } });
    cleanup.push(() => r.close());
    await driveUntil(clock, () => logs.some((l) => l.includes("MQTT_PROTOCOL")), { maxRealMs: 10_000 });
    expect(logs.find((l) => l.includes("MQTT_PROTOCOL"))).toMatch(new RegExp(`reporter: MQTT_PROTOCOL: packet of ${200 * 1024 * 1024} bytes \\(at most ${MAX_MQTT_PACKET}\\); reconnecting`));
    await driveUntil(clock, () => hostile.connections() >= 2, { maxRealMs: 10_000 });
  });

  it("a packet at the bound is taken; one byte over it is refused", async () => {
    const clock = new VirtualClock();
    for (const [size, refused] of [[1000, false], [1001, true]] as const) {
      const topic = "devices/hb02/cmd";
      const hostile = await hostileServer((socket) => {
        socket.write(mqttPacket.generate({ cmd: "publish", topic, payload: Buffer.alloc(size - 2 - topic.length, 0x20), qos: 0, retain: false, dup: false }));
      });
      cleanup.push(() => hostile.server.close());
      const port = new TcpMqttPort({ clock });
      const seen: string[] = [];
      let closed = "";
      const c = port.connect({ host: "127.0.0.1", port: hostile.port, id: "hb02", maxPacketBytes: 1000 }, {
        onReady: () => {
          c.subscribe("devices/hb02/cmd");
          c.subscribe("releases/#");
        },
        onMessage: (t) => void seen.push(t),
        onClose: (reason) => void (closed = reason),
      });
      cleanup.push(() => c.close());
      await realWait(() => seen.length > 0 || closed !== "", 5000);
      if (refused) expect(closed).toBe("MQTT_PROTOCOL: packet of 1001 bytes (at most 1000)");
      else expect(seen).toEqual([topic]);
    }
  });

  it("a flood of junk commands and announcements costs a bounded number of NVS writes; deep JSON is refused unparsed", async () => {
    const broker: Broker = await startBroker();
    cleanup.push(() => broker.close());
    const watch = subscribe(broker, "watch", ["devices/#"]);
    await watch.ready;
    cleanup.push(() => watch.client.close());
    const clock = new VirtualClock();
    const store = new CountingStore();
    const agent = new IdleAgent();
    const port = new TcpMqttPort({ clock });
    const r = startReporter(devicePorts("hb03", clock, store, port), config(broker.host, broker.port), agent, new Outbox(store, { capacity: 32 }));
    cleanup.push(() => r.close());
    await driveUntil(clock, () => r.connected, { maxRealMs: 5000 });
    await port.subscribed();
    await realWait(() => watch.messages.some((m) => m.topic === "devices/hb03/state"), 5000);
    const before = store.writes;

    const junk = [
      JSON.stringify({ cmd: "check", x: JSON.parse("[".repeat(40) + "]".repeat(40)) as unknown }), // 41 deep
      ...Array.from({ length: 24 }, (_, i) => `{"cmd": "nonsense-${i}"}`),
      ...Array.from({ length: 25 }, (_, i) => `not json ${i}`),
    ];
    for (const j of junk) watch.client.publish("devices/hb03/cmd", j, { qos: 1 });
    for (let i = 0; i < 50; i++) watch.client.publish("releases/thermo/stable", `{"payload": "junk ${i}", "signatures": []}`, { qos: 1 });
    const refusals = () => watch.messages.filter((m) => m.topic === "devices/hb03/events").map((m) => JSON.parse(m.payload) as { code: string; detail: string });
    await realWait(() => refusals().length >= 8, 10_000);
    await new Promise((res) => setTimeout(res, 300)); // the rest of the flood arrives and is counted
    const kept = refusals();
    expect(kept.length).toBe(8);
    expect(kept.every((e) => e.code === "ANNOUNCE_INVALID")).toBe(true);
    expect(kept[0]!.detail).toBe("cmd: nested deeper than 8");
    // 8 events (each its record and the next seq) and the state message's result, whatever the flood's size
    expect(store.writes - before).toBeLessThanOrEqual(8 * 2 + 8);
    expect(store.data.has("xsota.rep/ann")).toBe(false); // junk announcements are remembered in RAM only
    expect(agent.checks).toBe(0);

    // ten minutes on, the next refusal kept carries the count of those not kept
    clock.advance(10 * 60_000);
    watch.client.publish("devices/hb03/cmd", "one more", { qos: 1 });
    await realWait(() => refusals().length === 9, 5000);
    expect(refusals()[8]!.detail).toBe("cmd: not JSON (and 92 more refused since the last one kept)");
  });
});
